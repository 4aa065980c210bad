/**
 * Issue 11, goal 6 (turn-cost): does a turn cost more in a long session?
 *
 * One store, one process, the same options (fsync OFF, to isolate the CPU
 * cost: a sync would cost the same on both sides and hide it). A session is
 * filled with 50,000 turns (20,000 with --quick) before timing; then rounds
 * alternate addTurn + await flush() on that session and on a fresh empty one.
 *
 * Ratio: process CPU time per turn, empty ÷ big (wall time is printed too).
 * Goal >= 0.83 (a turn in the big session within 1.2x of one in an empty one).
 */
import { SessionStore } from '../src/index.js';
import { addTurnLoop, fmtUs, log, measured, runWhenMain, type BenchArgs, type BenchResult, type Measurement } from './common.js';
import { realisticTurns } from './peers/dataset.js';
import { peerPath } from './peers/peer.js';
import { alternate, ratioList } from './peers/rounds.js';
import { MAX_SESSIONS } from './peers/session-journal.js';

const TARGET = 0.83;

export function run(args: BenchArgs): Promise<BenchResult> {
  return measured(args, 'peers-turn-cost', async (root) => {
    const bigTurns = args.quick ? 20_000 : 50_000;
    const rounds = args.quick ? 3 : 6;
    const ms = args.quick ? 300 : 1000;
    const turns = realisticTurns(512);
    const store = SessionStore.openSync({ dir: peerPath(root, 'session-journal', 'turn-cost'), fsync: false, maxSessions: MAX_SESSIONS, autoCompact: false });
    const big = store.createSession();
    log(`peers-turn-cost: filling a session with ${bigTurns.toLocaleString('en-US')} turns`);
    for (let i = 0; i < bigTurns; i++) {
      store.addTurn(big, turns[i % turns.length]!);
      if (i % 500 === 499) await store.flush();
    }
    await store.flush();
    /** Turns per CPU-second and per wall-second of one run on session `id`. */
    const rate = async (id: string): Promise<{ perCpuSec: number; perSec: number }> => {
      const r = await addTurnLoop(store, [id], turns, ms);
      return { perCpuSec: (r.ops / r.cpuMs) * 1000, perSec: (r.ops / r.ms) * 1000 };
    };
    await rate(store.createSession()); // warm-up
    const r = await alternate(
      'peers-turn-cost',
      rounds,
      () => rate(big),
      async () => {
        const empty = store.createSession();
        await store.flush();
        return rate(empty);
      },
      (x) => x.perCpuSec,
    );
    const turnsAtEnd = store.getSession(big)!.turns.length;
    await store.close();
    const cost = (xs: Array<{ perCpuSec: number; perSec: number }>, key: 'perCpuSec' | 'perSec'): number => 1000 / (xs.reduce((a, x) => a + x[key], 0) / xs.length);
    const costBig = cost(r.ours, 'perCpuSec');
    const costEmpty = cost(r.peer, 'perCpuSec');
    const lines = [
      `one store, fsync OFF (CPU cost only), addTurn + await flush(), one client, ${rounds} rounds x ${ms / 1000} s per side`,
      `session holding ${bigTurns.toLocaleString('en-US')} turns (${turnsAtEnd.toLocaleString('en-US')} at the end): ${fmtUs(costBig)} of process CPU per turn (wall ${fmtUs(cost(r.ours, 'perSec'))})`,
      `empty session (a fresh one per round): ${fmtUs(costEmpty)} of process CPU per turn (wall ${fmtUs(cost(r.peer, 'perSec'))})`,
      `per-round ratios of CPU cost (empty ÷ big): ${ratioList(r.ratios)}; headline = their median (CPU time, because wall time on this shared machine is mostly waiting for a core)`,
    ];
    const result: Measurement = {
      name: 'peers-turn-cost',
      title: `turn-cost: addTurn + flush in a ${bigTurns.toLocaleString('en-US')}-turn session vs an empty one (fsync off)`,
      ratio: r.ratio,
      target: TARGET,
      goal: `cost per turn, empty / big >= ${TARGET} (within 1.2x)`,
      pass: r.ratio >= TARGET,
      figures: { bigSessionTurns: bigTurns, cpuBigUs: costBig * 1000, cpuEmptyUs: costEmpty * 1000, wallBigUs: cost(r.ours, 'perSec') * 1000, wallEmptyUs: cost(r.peer, 'perSec') * 1000, rounds, secondsPerSide: ms / 1000 },
    };
    return { result, lines };
  });
}

runWhenMain(import.meta.url, run);
