/**
 * Issue 11, workload F: bytes on disk per stored turn.
 *
 * 100 sessions x 20 realistic turns written as a user writes them
 * (ensureSession, then addTurn per turn), measured as the store holds them:
 * the journal only (between compactions), then compacted (one snapshot and
 * the new empty segment; archive off, as `compact --no-archive`). Compared
 * with the turn's own JSON (`JSON.stringify(turn)`). SQLite and lowdb files
 * holding the same sessions are shown for context.
 *
 * Goal: at most 1.25x the turn's JSON, expressed (bigger is better) as
 * ratio = turn JSON bytes ÷ our bytes per turn, target >= 0.8.
 */
import { mean, measured, runWhenMain, type BenchArgs, type BenchResult, type Measurement } from './common.js';
import { preparedSessions, realisticTurns, turnJsonBytes } from './peers/dataset.js';
import { peerBytes, peerModule, peerPath, removePeer } from './peers/peer.js';
import { compactAll, loadAsJournal } from './peers/session-journal.js';

const SESSIONS = 100;
const TURNS_EACH = 20;
const TARGET = 0.8;

export function run(args: BenchArgs): Promise<BenchResult> {
  return measured(args, 'peers-f', async (root) => {
    const pool = realisticTurns(SESSIONS * TURNS_EACH);
    const sessions = preparedSessions(SESSIONS, TURNS_EACH, pool);
    const turns = SESSIONS * TURNS_EACH;
    const turnJson = mean(pool.map(turnJsonBytes));
    const ours = peerPath(root, 'session-journal', 'bytes');
    await loadAsJournal(ours, sessions);
    const journalPerTurn = peerBytes(ours) / turns;
    await compactAll(ours);
    const compactedPerTurn = peerBytes(ours) / turns;
    removePeer(ours);
    const context: string[] = [];
    for (const kind of ['sqlite', 'lowdb', 'genie-file'] as const) {
      const path = peerPath(root, kind, 'bytes');
      await (await peerModule(kind)).load(path, sessions);
      context.push(`${kind} ${(peerBytes(path) / turns).toFixed(0)} B`);
      removePeer(path);
    }
    const ratio = turnJson / journalPerTurn;
    const compactedRatio = turnJson / compactedPerTurn;
    const lines = [
      `${SESSIONS} sessions x ${TURNS_EACH} turns; a turn's own JSON: ${turnJson.toFixed(0)} B on average (prompt ~180 B, response ~360 B, ISO timestamp)`,
      `session-journal, journal only (one record per turn, envelope, writer, hash): ${journalPerTurn.toFixed(0)} B per turn = ${(journalPerTurn / turnJson).toFixed(2)}x the turn's JSON`,
      `session-journal, compacted (snapshot + empty segment): ${compactedPerTurn.toFixed(0)} B per turn = ${(compactedPerTurn / turnJson).toFixed(2)}x`,
      `for context, the same sessions: ${context.join(', ')} per turn`,
      `ratio = turn JSON ÷ our bytes per turn, target >= ${TARGET} (= at most 1.25x the turn's JSON)`,
    ];
    const result: Measurement = {
      name: 'peers-f',
      title: 'F: bytes on disk per stored turn vs the turn’s own JSON',
      ratio,
      target: TARGET,
      goal: `turn JSON / journal bytes per turn >= ${TARGET} (at most 1.25x)`,
      pass: ratio >= TARGET,
      figures: { turnJsonBytes: Math.round(turnJson), journalBytesPerTurn: Math.round(journalPerTurn), compactedBytesPerTurn: Math.round(compactedPerTurn), turns },
      extra: [{ label: 'F compacted: turn JSON / snapshot bytes per turn', ratio: compactedRatio, target: TARGET, pass: compactedRatio >= TARGET }],
    };
    return { result, lines };
  });
}

runWhenMain(import.meta.url, run);
