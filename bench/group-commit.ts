/**
 * (a) Durable group-commit throughput.
 *
 * Baseline: the naive durable append, one mutation at a time: proper-lockfile's
 * async lock (with retries), one write on an O_APPEND handle, fdatasync,
 * unlock. Same envelope and record size as the journal writes.
 *
 * Candidate: SessionStore (fsync: true) with 64 concurrent logical clients in
 * one process, each looping addTurn + await flush(). A mutation counts once
 * its flush() resolved (it is durable).
 *
 * Goal: candidate acknowledged mutations/s >= 25x baseline.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { SessionStore } from '../src/index.js';
import type { ConversationTurn } from '../src/index.js';
import type { JournalWarning } from '../src/index.js';
import { Samples, addTurnLoop, cpuMsSince, fmtMs, fmtRate, fmtRatio, runWhenMain, journalBytes, log, median, now, rng, text, type BenchArgs, type BenchResult, measured, type Measurement } from './common.js';

const CLIENTS = 64;
const TARGET = 25;

interface SideRun {
  ops: number;
  ms: number;
  bytes: number;
  lat: Samples;
  /** Process CPU time (user + system) spent during the run, ms. */
  cpuMs: number;
}

/** Stands in for the journal's 64-hex hash-chain field, so baseline lines are as long as the journal's. */
const HASH_PLACEHOLDER = 'c0ffee'.repeat(11).slice(0, 64);

/** Short turns: the whole journal line is ~260-330 B (envelope + UUID id + ISO dates + hash). */
function makeTurns(n: number): ConversationTurn[] {
  const random = rng(42);
  const at = new Date();
  return Array.from({ length: n }, () => ({ prompt: text(random, 16), response: text(random, 32), timestamp: at }));
}

export async function naiveAppendRun(dir: string, durationMs: number, turns: readonly ConversationTurn[]): Promise<SideRun> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, 'journal.ndjson');
  const fh = await fs.promises.open(file, 'a', 0o600);
  const lockfilePath = path.join(dir, 'journal.lock');
  const writer = `${process.pid}@${os.hostname()}`;
  const id = '0f8fad5b-d9cb-469f-a165-70867728950e';
  const lat = new Samples();
  let seq = 0;
  let bytes = 0;
  try {
    const cpu0 = process.cpuUsage();
    const start = now();
    const end = start + durationMs;
    while (now() < end) {
      const t0 = now();
      const release = await lockfile.lock(dir, { lockfilePath, realpath: false, stale: 10_000, retries: { retries: 1000, factor: 2, minTimeout: 1, maxTimeout: 25 } });
      const turn = turns[seq % turns.length]!;
      const line = `${JSON.stringify({ v: 1, seq: ++seq, ts: new Date().toISOString(), w: writer, t: 'session.turn', p: { id, turn }, h: HASH_PLACEHOLDER })}\n`;
      await fh.write(line);
      await fh.datasync();
      await release();
      lat.push(now() - t0);
      bytes += Buffer.byteLength(line);
    }
    return { ops: seq, ms: now() - start, bytes, lat, cpuMs: cpuMsSince(cpu0) };
  } finally {
    await fh.close();
  }
}

/** `clients` async loops of addTurn + await flush() on one SessionStore. */
export async function groupCommitRun(dir: string, durationMs: number, clients: number, turns: readonly ConversationTurn[], onWarning: (w: JournalWarning) => void): Promise<SideRun> {
  // Auto-compaction off: at these rates it would fire every few seconds and measure the compactor instead.
  const store = SessionStore.openSync({ dir, fsync: true, maxSessions: Math.max(100, clients), onWarning, autoCompact: false });
  const ids = Array.from({ length: clients }, () => store.createSession());
  await store.flush();
  const sizeBefore = journalBytes(dir);
  const lat = new Samples();
  const { ops, ms, cpuMs } = await addTurnLoop(store, ids, turns, durationMs, lat);
  await store.close();
  return { ops, ms, bytes: journalBytes(dir) - sizeBefore, lat, cpuMs };
}

export function run(args: BenchArgs): Promise<BenchResult> {
  return measured(args, 'group-commit', (root) => measureIn(args, root));
}

/** The measurement itself, in a temp root of its own (see measured()). */
async function measureIn(args: BenchArgs, root: string): Promise<{ result: Measurement; lines: readonly string[] }> {
  // Many short alternating rounds: on a shared machine load comes in bursts, and the
  // median of per-round ratios resists a burst that hits one side only.
  const rounds = args.quick ? 4 : 8;
  const seconds = args.quick ? 0.75 : 1.5;
  const warnings = new Map<string, number>();
  const onWarning = (w: JournalWarning): void => {
    warnings.set(w.code, (warnings.get(w.code) ?? 0) + 1);
  };
  const turns = makeTurns(512);
  let dirCount = 0;
  const freshDir = (): string => path.join(root, `s${++dirCount}`);
  const dropDir = (dir: string): void => fs.rmSync(dir, { recursive: true, force: true });

  log(`group-commit: warm-up`);
  for (const dir of [freshDir(), freshDir()]) dropDir(dir);
  {
    const d1 = freshDir();
    await naiveAppendRun(d1, 300, turns);
    dropDir(d1);
    const d2 = freshDir();
    await groupCommitRun(d2, 300, CLIENTS, turns, onWarning);
    dropDir(d2);
  }

  const base: SideRun[] = [];
  const ours: SideRun[] = [];
  for (let r = 0; r < rounds; r++) {
    // Alternate the order so drift in machine load hits both sides.
    const order = r % 2 === 0 ? (['base', 'ours'] as const) : (['ours', 'base'] as const);
    for (const side of order) {
      const dir = freshDir();
      log(`group-commit: round ${r + 1}/${rounds} ${side} (${seconds} s)`);
      if (side === 'base') base.push(await naiveAppendRun(dir, seconds * 1000, turns));
      else ours.push(await groupCommitRun(dir, seconds * 1000, CLIENTS, turns, onWarning));
      dropDir(dir);
    }
  }

  const rate = (s: SideRun): number => (s.ops / s.ms) * 1000;
  const total = (xs: SideRun[]): { rate: number; lat: Samples; lineBytes: number; cpuUsPerOp: number; cpuShare: number } => {
    const lat = new Samples();
    let ops = 0;
    let ms = 0;
    let bytes = 0;
    let cpuMs = 0;
    for (const s of xs) {
      lat.pushAll(s.lat.values());
      ops += s.ops;
      ms += s.ms;
      bytes += s.bytes;
      cpuMs += s.cpuMs;
    }
    return { rate: (ops / ms) * 1000, lat, lineBytes: bytes / ops, cpuUsPerOp: (cpuMs / ops) * 1000, cpuShare: cpuMs / ms };
  };
  const b = total(base);
  const o = total(ours);
  const perRound = ours.map((s, i) => rate(s) / rate(base[i]!));
  const ratio = median(perRound);
  const bl = b.lat.summary();
  const ol = o.lat.summary();
  const lines = [
    `baseline  naive lock+write+fdatasync+unlock, 1 at a time: ${fmtRate(b.rate)} mutations  (ack p50 ${fmtMs(bl.p50)}, p99 ${fmtMs(bl.p99)}; ${b.lineBytes.toFixed(0)} B/line; cpu ${b.cpuUsPerOp.toFixed(0)} µs/mutation, ${(b.cpuShare * 100).toFixed(0)}% of a core)`,
    `candidate SessionStore fsync:true, ${CLIENTS} clients addTurn+flush: ${fmtRate(o.rate)} mutations  (ack p50 ${fmtMs(ol.p50)}, p99 ${fmtMs(ol.p99)}; ${o.lineBytes.toFixed(0)} B/line; cpu ${o.cpuUsPerOp.toFixed(0)} µs/mutation, ${(o.cpuShare * 100).toFixed(0)}% of a core)`,
    `per-round rates: baseline ${base.map((s) => fmtRate(rate(s))).join(', ')}; candidate ${ours.map((s) => fmtRate(rate(s))).join(', ')}`,
    `per-round ratios: ${perRound.map(fmtRatio).join(', ')}; headline = their median (pooled rates give ${fmtRatio(o.rate / b.rate)})`,
  ];
  if (warnings.size > 0) lines.push(`warnings: ${[...warnings].map(([c, n]) => `${c} x${n}`).join(', ')}`);
  const result: Measurement = {
    name: 'group-commit',
    title: 'durable group commit vs naive lock+append+fsync+unlock per mutation',
    ratio,
    target: TARGET,
    goal: `candidate/baseline acknowledged mutations/s >= ${TARGET}x`,
    pass: ratio >= TARGET,
    figures: {
      baselinePerSec: Math.round(b.rate),
      candidatePerSec: Math.round(o.rate),
      baselineP50Ms: bl.p50,
      baselineP99Ms: bl.p99,
      candidateP50Ms: ol.p50,
      candidateP99Ms: ol.p99,
      baselineLineBytes: Math.round(b.lineBytes),
      candidateLineBytes: Math.round(o.lineBytes),
      baselineCpuUsPerOp: Math.round(b.cpuUsPerOp),
      candidateCpuUsPerOp: Math.round(o.cpuUsPerOp),
      candidateCpuShare: Number(o.cpuShare.toFixed(2)),
      clients: CLIENTS,
      rounds,
      secondsPerSide: seconds,
    },
  };
  return { result, lines };
}

runWhenMain(import.meta.url, run);
