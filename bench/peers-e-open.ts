/**
 * Issue 11, workload E: time to open a store into a ready, readable state.
 *
 * Each open is a fresh child process (bench/peers/open-child.ts): import
 * the peer, then time open + reading one session (import excluded), and
 * report the child's peak RSS. Peers interleaved run by run.
 *
 * - 100 sessions x 20 realistic turns. session-journal holds them as a user's
 *   store would after writing them (a journal, one record per turn); lowdb
 *   reads and JSON.parses its whole file; SQLite opens its file (lazily: it
 *   reads pages on demand, so it is shown for context, not as the goal).
 *   Goal: lowdb ÷ session-journal >= 1.0x.
 * - 10,000 sessions x 50 turns (1,000 x 50 with --quick), session-journal
 *   compacted into one snapshot first, lowdb on the same data. Goal >= 2x.
 *   Preparing this store (import + compaction, about 270 MB of turns) takes
 *   most of this benchmark's time; the opens themselves are a few seconds.
 */
import { fileURLToPath } from 'node:url';
import type { PortableSession } from '../src/index.js';
import { fmtMs, fmtRatio, log, measured, median, now, runWhenMain, type BenchArgs, type BenchResult, type Measurement } from './common.js';
import { timedRun } from './peers/child-process.js';
import { preparedId, preparedSessions, realisticTurns } from './peers/dataset.js';
import { peerBytes, peerModule, peerPath, removePeer, type PeerKind } from './peers/peer.js';
import { compactAll, loadAsJournal } from './peers/session-journal.js';

const CHILD = fileURLToPath(new URL('./peers/open-child.js', import.meta.url));
const FLOOR_CHILD = fileURLToPath(new URL('./peers/parse-floor-child.js', import.meta.url));
const SMALL_KINDS: readonly PeerKind[] = ['session-journal', 'lowdb', 'sqlite'];
/** SQLite's lazy open says nothing at this size, and loading it would add seconds of preparation. */
const BIG_KINDS: readonly PeerKind[] = ['session-journal', 'lowdb'];
const SMALL_TARGET = 1;
const BIG_TARGET = 2;

interface OpenRun {
  openMs: number;
  maxRssKb: number;
  turns: number;
}

interface Case {
  label: string;
  sessions: number;
  turnsEach: number;
  kinds: readonly PeerKind[];
  bytes: Map<PeerKind, number>;
  /** Untimed preparation, for the record: loading each peer (and compacting ours). */
  prepMs: Map<string, number>;
  runs: Map<PeerKind, OpenRun[]>;
  /** Journal form only: cold runs of parse-floor-child on our store (JSON.parse of each line, nothing else). */
  floorMs: number[];
}

async function openCase(root: string, label: string, kinds: readonly PeerKind[], sessions: readonly PortableSession[], form: 'journal' | 'snapshot', runs: number): Promise<Case> {
  const paths = new Map<PeerKind, string>();
  log(`peers-e: preparing ${label}`);
  const prepMs = new Map<string, number>();
  for (const kind of kinds) {
    const path = peerPath(root, kind, label);
    let t0 = now();
    if (kind === 'session-journal' && form === 'journal') await loadAsJournal(path, sessions);
    else await (await peerModule(kind)).load(path, sessions);
    prepMs.set(`${kind} load`, now() - t0);
    if (kind === 'session-journal' && form === 'snapshot') {
      t0 = now();
      await compactAll(path);
      prepMs.set(`${kind} compaction`, now() - t0);
    }
    paths.set(kind, path);
  }
  const c: Case = { label, sessions: sessions.length, turnsEach: sessions[0]!.turns.length, kinds, bytes: new Map(), prepMs, runs: new Map(kinds.map((k) => [k, []])), floorMs: [] };
  for (const [kind, path] of paths) c.bytes.set(kind, peerBytes(path));
  const id = preparedId(sessions.length >> 1);
  // Warm-up (compiled code cache); the big files are still in the page cache from being written, and one more open of them costs seconds.
  if (form === 'journal') for (const kind of kinds) await timedRun([CHILD, kind, paths.get(kind)!, 'read', id]);
  for (let i = 0; i < runs; i++) {
    log(`peers-e: ${label} run ${i + 1}/${runs}`);
    for (let k = 0; k < kinds.length; k++) {
      const kind = kinds[(i + k) % kinds.length]!;
      const out = JSON.parse((await timedRun([CHILD, kind, paths.get(kind)!, 'read', id])).stdout) as OpenRun;
      if (out.turns !== c.turnsEach) throw new Error(`${kind} read ${out.turns} turns, expected ${c.turnsEach}`);
      c.runs.get(kind)!.push(out);
    }
    if (form === 'journal') c.floorMs.push((JSON.parse((await timedRun([FLOOR_CHILD, paths.get('session-journal')!])).stdout) as { openMs: number }).openMs);
  }
  for (const path of paths.values()) removePeer(path);
  return c;
}

const openMs = (c: Case, kind: PeerKind): number => median(c.runs.get(kind)!.map((r) => r.openMs));
const rssMiB = (c: Case, kind: PeerKind): number => median(c.runs.get(kind)!.map((r) => r.maxRssKb)) / 1024;
const mib = (n: number): string => `${(n / 1048576).toFixed(n < 10 * 1048576 ? 2 : 0)} MiB`;

function caseLines(c: Case, form: string): string[] {
  const head = `${c.sessions.toLocaleString('en-US')} sessions x ${c.turnsEach} turns (median of ${c.runs.get('lowdb')!.length} cold opens; session-journal as ${form}):`;
  const prep = `  preparation (not timed): ${[...c.prepMs].map(([what, ms]) => `${what} ${fmtMs(ms)}`).join(', ')}`;
  return [head, ...c.kinds.map((k) => `  ${k.padEnd(15)} open + read one ${fmtMs(openMs(c, k)).padStart(8)}   peak RSS ${rssMiB(c, k).toFixed(0).padStart(5)} MiB   on disk ${mib(c.bytes.get(k)!)}`), prep];
}

export function run(args: BenchArgs): Promise<BenchResult> {
  return measured(args, 'peers-e', async (root) => {
    const pool = realisticTurns(1024);
    const bigCount = args.quick ? 1000 : 10_000;
    const small = await openCase(root, 'small', SMALL_KINDS, preparedSessions(100, 20, pool), 'journal', args.quick ? 3 : 10);
    const big = await openCase(root, 'big', BIG_KINDS, preparedSessions(bigCount, 50, pool), 'snapshot', args.quick ? 2 : 3);
    const ratio = openMs(small, 'lowdb') / openMs(small, 'session-journal');
    const bigRatio = openMs(big, 'lowdb') / openMs(big, 'session-journal');
    const lines = [
      ...caseLines(small, 'a journal, one record per turn'),
      ...caseLines(big, 'one snapshot after compaction'),
      `floor of the small case: JSON.parse of each journal line and nothing else, cold: ${fmtMs(median(small.floorMs))}, so lowdb ÷ floor = ${fmtRatio(openMs(small, 'lowdb') / median(small.floorMs))}: no replay that parses every line (as opening a journal must, to apply it and report bad lines) can reach ${SMALL_TARGET}x lowdb, whose one JSON.parse reads fewer bytes in one call`,
      `SQLite's open reads pages on demand (one session here), so its time is not comparable to a full load; shown for context (small case only)`,
      `ratios lowdb ÷ session-journal: small ${fmtRatio(ratio)}, big ${fmtRatio(bigRatio)}; SQLite ÷ session-journal, small: ${fmtRatio(openMs(small, 'sqlite') / openMs(small, 'session-journal'))}`,
    ];
    const result: Measurement = {
      name: 'peers-e',
      title: 'E: cold open into a readable store, session-journal vs lowdb (and SQLite)',
      ratio,
      target: SMALL_TARGET,
      goal: `100 x 20 open time, lowdb / session-journal >= ${SMALL_TARGET}x`,
      pass: ratio >= SMALL_TARGET,
      figures: {
        smallOursMs: openMs(small, 'session-journal'),
        smallLowdbMs: openMs(small, 'lowdb'),
        smallSqliteMs: openMs(small, 'sqlite'),
        bigOursMs: openMs(big, 'session-journal'),
        bigLowdbMs: openMs(big, 'lowdb'),
        bigOursRssMiB: Math.round(rssMiB(big, 'session-journal')),
        bigLowdbRssMiB: Math.round(rssMiB(big, 'lowdb')),
        bigSessions: bigCount,
      },
      extra: [
        { label: `E ${bigCount.toLocaleString('en-US')} x 50 from a snapshot, lowdb / session-journal`, ratio: bigRatio, target: BIG_TARGET, pass: bigRatio >= BIG_TARGET },
        { label: `E ${bigCount.toLocaleString('en-US')} x 50 peak RSS, lowdb / session-journal`, ratio: rssMiB(big, 'lowdb') / rssMiB(big, 'session-journal') },
        { label: 'E 100 x 20 floor: lowdb / JSON.parse of each journal line alone (a replay cannot beat this)', ratio: openMs(small, 'lowdb') / median(small.floorMs) },
      ],
    };
    return { result, lines };
  });
}

runWhenMain(import.meta.url, run);
