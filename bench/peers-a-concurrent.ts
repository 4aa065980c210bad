/**
 * Issue 11, workload A: 64 concurrent clients in one process.
 *
 * Each client loops addTurn + await flush() for a fixed time, with realistic
 * turns (about 540 B of prompt and response). session-journal
 * (SessionStore, fsync on) against SQLite FULL doing the same mutation as one
 * committed transaction each (bench/peers/sqlite.ts). better-sqlite3 is
 * synchronous, so its 64 clients take turns: that is what a user of it gets
 * without batching by hand.
 *
 * Ratio: acknowledged turns/s, session-journal ÷ SQLite. Goal >= 5x.
 */
import { fmtMs, fmtRate, fmtRatio, measured, runWhenMain, type BenchArgs, type BenchResult, type Measurement } from './common.js';
import { closedLoop, pooled } from './peers/closed-loop.js';
import { realisticTurns } from './peers/dataset.js';
import { alternate, ratioList } from './peers/rounds.js';

const CLIENTS = 64;
const TARGET = 5;

export function run(args: BenchArgs): Promise<BenchResult> {
  return measured(args, 'peers-a', async (root) => {
    const rounds = args.quick ? 3 : 6;
    const ms = args.quick ? 500 : 1500;
    const turns = realisticTurns(512);
    await closedLoop(root, 'session-journal', CLIENTS, 200, turns); // warm-up
    await closedLoop(root, 'sqlite', CLIENTS, 200, turns);
    const r = await alternate(
      'peers-a',
      rounds,
      () => closedLoop(root, 'session-journal', CLIENTS, ms, turns),
      () => closedLoop(root, 'sqlite', CLIENTS, ms, turns),
      (x) => x.rate,
    );
    const o = pooled(r.ours);
    const p = pooled(r.peer);
    const lines = [
      `${CLIENTS} clients in one process, addTurn + await flush(), ~540 B turns, ${rounds} rounds x ${ms / 1000} s per side`,
      `session-journal (fsync on): ${fmtRate(o.rate)} turns  (ack p50 ${fmtMs(o.p50)}, p99 ${fmtMs(o.p99)}; cpu ${o.cpuUsPerOp.toFixed(0)} µs/turn)`,
      `SQLite WAL + synchronous=FULL, 1 transaction per turn: ${fmtRate(p.rate)} turns  (ack p50 ${fmtMs(p.p50)}, p99 ${fmtMs(p.p99)}; cpu ${p.cpuUsPerOp.toFixed(0)} µs/turn)`,
      `per-round ratios: ${ratioList(r.ratios)}; headline = their median (pooled rates give ${fmtRatio(o.rate / p.rate)})`,
    ];
    const result: Measurement = {
      name: 'peers-a',
      title: `A: ${CLIENTS} concurrent clients, session-journal vs SQLite FULL`,
      ratio: r.ratio,
      target: TARGET,
      goal: `acknowledged turns/s, session-journal / SQLite FULL >= ${TARGET}x`,
      pass: r.ratio >= TARGET,
      figures: { oursPerSec: Math.round(o.rate), sqlitePerSec: Math.round(p.rate), oursP50Ms: o.p50, oursP99Ms: o.p99, sqliteP50Ms: p.p50, sqliteP99Ms: p.p99, clients: CLIENTS, rounds, secondsPerSide: ms / 1000 },
    };
    return { result, lines };
  });
}

runWhenMain(import.meta.url, run);
