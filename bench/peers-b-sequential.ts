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
 * the same disk (the floor of any durable append), and the same line
 * written over a preallocated, already synced file (what SQLite's WAL does
 * once it has grown: an fdatasync that has no file size to commit).
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

/** Bytes zero-filled and synced before the overwrite loop: more than it writes in its time. */
const PREALLOCATED_BYTES = 64 << 20;

/**
 * write + fdatasync, one at a time: syncs per second. `append` grows the
 * file with each line; `overwrite` writes the lines over a file zero-filled
 * and synced beforehand, so no sync has a size to commit.
 */
async function bareFdatasync(root: string, durationMs: number, mode: 'append' | 'overwrite' = 'append'): Promise<number> {
  const file = path.join(root, `bare-${mode}.ndjson`);
  const fh = await fs.promises.open(file, mode === 'append' ? 'a' : 'w+', 0o600);
  const line = Buffer.from(`${'x'.repeat(LINE_BYTES - 1)}\n`);
  let ops = 0;
  try {
    if (mode === 'overwrite') {
      await fh.write(Buffer.alloc(PREALLOCATED_BYTES), 0, PREALLOCATED_BYTES, 0);
      await fh.sync();
    }
    const start = now();
    while (now() - start < durationMs && (mode === 'append' || (ops + 1) * LINE_BYTES <= PREALLOCATED_BYTES)) {
      if (mode === 'append') await fh.write(line);
      else await fh.write(line, 0, LINE_BYTES, ops * LINE_BYTES);
      await fh.datasync();
      ops++;
    }
    return (ops / (now() - start)) * 1000;
  } finally {
    await fh.close();
    fs.rmSync(file, { force: true });
  }
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
    const overwrite: number[] = [];
    const r = await alternate(
      'peers-b',
      rounds,
      async () => {
        const durable = await closedLoop(root, 'session-journal', 1, ms, turns);
        nosync.push(await closedLoop(root, 'session-journal', 1, ms / 3, turns, { fsync: false }));
        bare.push(await bareFdatasync(root, ms / 3));
        overwrite.push(await bareFdatasync(root, ms / 3, 'overwrite'));
        return durable;
      },
      () => closedLoop(root, 'sqlite', 1, ms, turns),
      (x) => x.rate,
    );
    const o = pooled(r.ours);
    const p = pooled(r.peer);
    const n = pooled(nosync);
    const bareRate = median(bare);
    const overwriteRate = median(overwrite);
    const us = (rate: number): string => fmtUs(1000 / rate);
    const lines = [
      `1 client, addTurn + await flush(), ~540 B turns, ${rounds} rounds x ${ms / 1000} s per side`,
      `session-journal (fsync on): ${fmtRate(o.rate)} turns, ${us(o.rate)} per commit (ack p99 ${fmtUs(o.p99)}; cpu ${o.cpuUsPerOp.toFixed(0)} µs/turn)`,
      `SQLite WAL + synchronous=FULL, 1 transaction per turn: ${fmtRate(p.rate)} turns, ${us(p.rate)} per commit (ack p99 ${fmtUs(p.p99)}; cpu ${p.cpuUsPerOp.toFixed(0)} µs/turn)`,
      `breakdown: session-journal fsync off ${us(n.rate)} per commit (${fmtRate(n.rate)}); bare ${LINE_BYTES} B write + fdatasync ${us(bareRate)} (${fmtRate(bareRate)}, median of rounds)`,
      `  so a durable commit here = ~${us(bareRate)} of sync floor + ~${us(n.rate)} of everything else; measured ${us(o.rate)}`,
      `the same line over a preallocated, synced file + fdatasync: ${us(overwriteRate)} (${fmtRate(overwriteRate)}): a journal that preallocated its segments would sync in that, against SQLite's whole commit of ${us(p.rate)}`,
      `per-round ratios: ${ratioList(r.ratios)}; headline = their median (pooled rates give ${fmtRatio(o.rate / p.rate)})`,
    ];
    const result: Measurement = {
      name: 'peers-b',
      title: 'B: one client, sequential, session-journal vs SQLite FULL',
      ratio: r.ratio,
      target: TARGET,
      goal: `acknowledged turns/s, session-journal / SQLite FULL >= ${TARGET}x`,
      pass: r.ratio >= TARGET,
      figures: { oursPerSec: Math.round(o.rate), sqlitePerSec: Math.round(p.rate), oursNoSyncPerSec: Math.round(n.rate), bareFdatasyncPerSec: Math.round(bareRate), bareOverwritePerSec: Math.round(overwriteRate), rounds, secondsPerSide: ms / 1000 },
      extra: [
        { label: 'B floor: bare fdatasync / session-journal (1.0 = at the floor)', ratio: o.rate / bareRate },
        // The best any store that appends and syncs each commit can reach here: an append grows the file, so its
        // fdatasync also commits the size through the file system's journal, which SQLite's WAL, overwritten in place, avoids.
        { label: 'B ceiling: bare append + fdatasync / SQLite FULL (an appending commit cannot beat this)', ratio: bareRate / p.rate },
        { label: 'B ceiling if segments were preallocated: bare overwrite + fdatasync / SQLite FULL (with no lock and no other work)', ratio: overwriteRate / p.rate },
      ],
    };
    return { result, lines };
  });
}

runWhenMain(import.meta.url, run);
