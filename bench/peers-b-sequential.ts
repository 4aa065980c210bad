/**
 * Issue 11, workload B: one client, sequential.
 *
 * addTurn then await flush(), repeat, for a fixed time: session-journal
 * (fsync on) against SQLite FULL with one insert per transaction. Every
 * turn pays a whole durable commit on both sides; nothing can be grouped.
 *
 * The per-commit breakdown, measured in the same rounds: session-journal
 * with fsync off (everything but the sync: lock, write, bookkeeping) and a
 * bare loop of one O_APPEND write of a journal-sized line + fdatasync on
 * the same disk (the floor of any durable append).
 *
 * Ratio: acknowledged turns/s, session-journal ÷ SQLite. Goal >= 1.0x.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fmtRate, fmtRatio, fmtUs, measured, median, now, runWhenMain, type BenchArgs, type BenchResult, type Measurement } from './common.js';
import { closedLoop, pooled, type LoopRun } from './peers/closed-loop.js';
import { realisticTurns } from './peers/dataset.js';
import { alternate, ratioList } from './peers/rounds.js';

const TARGET = 1;
/** About one journal line of a 540 B turn (envelope, ids, dates, hash). */
const LINE_BYTES = 900;

/** write + fdatasync, one at a time, as a LoopRun (no latencies kept). */
async function bareFdatasync(root: string, durationMs: number): Promise<number> {
  const file = path.join(root, 'bare.ndjson');
  const fh = await fs.promises.open(file, 'a', 0o600);
  const line = Buffer.from(`${'x'.repeat(LINE_BYTES - 1)}\n`);
  let ops = 0;
  const start = now();
  try {
    while (now() - start < durationMs) {
      await fh.write(line);
      await fh.datasync();
      ops++;
    }
  } finally {
    await fh.close();
    fs.rmSync(file, { force: true });
  }
  return (ops / (now() - start)) * 1000;
}

export function run(args: BenchArgs): Promise<BenchResult> {
  return measured(args, 'peers-b', async (root) => {
    const rounds = args.quick ? 3 : 6;
    const ms = args.quick ? 400 : 1500;
    const turns = realisticTurns(512);
    await closedLoop(root, 'session-journal', 1, 200, turns); // warm-up
    await closedLoop(root, 'sqlite', 1, 200, turns);
    const nosync: LoopRun[] = [];
    const bare: number[] = [];
    const r = await alternate(
      'peers-b',
      rounds,
      async () => {
        const durable = await closedLoop(root, 'session-journal', 1, ms, turns);
        nosync.push(await closedLoop(root, 'session-journal', 1, ms / 3, turns, { fsync: false }));
        bare.push(await bareFdatasync(root, ms / 3));
        return durable;
      },
      () => closedLoop(root, 'sqlite', 1, ms, turns),
      (x) => x.rate,
    );
    const o = pooled(r.ours);
    const p = pooled(r.peer);
    const n = pooled(nosync);
    const bareRate = median(bare);
    const us = (rate: number): string => fmtUs(1000 / rate);
    const lines = [
      `1 client, addTurn + await flush(), ~540 B turns, ${rounds} rounds x ${ms / 1000} s per side`,
      `session-journal (fsync on): ${fmtRate(o.rate)} turns, ${us(o.rate)} per commit (ack p99 ${fmtUs(o.p99)}; cpu ${o.cpuUsPerOp.toFixed(0)} µs/turn)`,
      `SQLite WAL + synchronous=FULL, 1 transaction per turn: ${fmtRate(p.rate)} turns, ${us(p.rate)} per commit (ack p99 ${fmtUs(p.p99)}; cpu ${p.cpuUsPerOp.toFixed(0)} µs/turn)`,
      `breakdown: session-journal fsync off ${us(n.rate)} per commit (${fmtRate(n.rate)}); bare ${LINE_BYTES} B write + fdatasync ${us(bareRate)} (${fmtRate(bareRate)}, median of rounds)`,
      `  so a durable commit here = ~${us(bareRate)} of sync floor + ~${us(n.rate)} of everything else; measured ${us(o.rate)}`,
      `per-round ratios: ${ratioList(r.ratios)}; headline = their median (pooled rates give ${fmtRatio(o.rate / p.rate)})`,
    ];
    const result: Measurement = {
      name: 'peers-b',
      title: 'B: one client, sequential, session-journal vs SQLite FULL',
      ratio: r.ratio,
      target: TARGET,
      goal: `acknowledged turns/s, session-journal / SQLite FULL >= ${TARGET}x`,
      pass: r.ratio >= TARGET,
      figures: { oursPerSec: Math.round(o.rate), sqlitePerSec: Math.round(p.rate), oursNoSyncPerSec: Math.round(n.rate), bareFdatasyncPerSec: Math.round(bareRate), rounds, secondsPerSide: ms / 1000 },
      extra: [
        { label: 'B floor: bare fdatasync / session-journal (1.0 = at the floor)', ratio: o.rate / bareRate },
        // The best any store that appends and syncs each commit can reach here: an append grows the file, so its
        // fdatasync also commits the size through the file system's journal, which SQLite's WAL, overwritten in place, avoids.
        { label: 'B ceiling: bare append + fdatasync / SQLite FULL (an appending commit cannot beat this)', ratio: bareRate / p.rate },
      ],
    };
    return { result, lines };
  });
}

runWhenMain(import.meta.url, run);
