/**
 * (e) What the hash chain costs on append throughput.
 *
 * The same workload as group-commit.ts (a SessionStore, 64 concurrent
 * logical clients each looping addTurn + await flush()), run with
 * hashChain: true (candidate) and hashChain: false (baseline), in
 * interleaved A/B rounds in one process. Two modes:
 *   - durable (fsync: true): what a server sees;
 *   - fsync: false: CPU-bound, so the sha256 per record is as visible as it gets.
 *
 * Headline: durable throughput with the chain / without it (median of the
 * per-round ratios). Goal: the chain costs at most 15 %, i.e. ratio >= 0.85.
 *
 *   node build/bench/hash-chain.js [--quick]
 */
import fs from 'node:fs';
import path from 'node:path';
import { SessionStore, type ConversationTurn, type JournalWarning } from '../src/index.js';
import { canonicalPayload, encodeRecord } from '../src/engine/record-codec.js';
import { addTurnLoop, fmtRate, runWhenMain, log, median, now, rng, text, type BenchArgs, type BenchResult, measured, type Measurement } from './common.js';

const CLIENTS = 64;
const MAX_COST = 0.15;

interface Side {
  ops: number;
  ms: number;
  cpuMs: number;
}

function makeTurns(n: number): ConversationTurn[] {
  const random = rng(7);
  const at = new Date();
  return Array.from({ length: n }, () => ({ prompt: text(random, 16), response: text(random, 32), timestamp: at }));
}

async function appendRun(dir: string, durationMs: number, hashChain: boolean, fsync: boolean, turns: readonly ConversationTurn[], onWarning: (w: JournalWarning) => void): Promise<Side> {
  const store = SessionStore.openSync({ dir, fsync, hashChain, maxSessions: CLIENTS * 2, onWarning, autoCompact: false });
  const ids = Array.from({ length: CLIENTS }, () => store.createSession());
  await store.flush();
  const side = await addTurnLoop(store, ids, turns, durationMs);
  await store.close();
  return side;
}

const rate = (s: Side): number => (s.ops / s.ms) * 1000;
const pooled = (xs: Side[]): { rate: number; cpuUsPerOp: number } => {
  const ops = xs.reduce((a, s) => a + s.ops, 0);
  const ms = xs.reduce((a, s) => a + s.ms, 0);
  const cpu = xs.reduce((a, s) => a + s.cpuMs, 0);
  return { rate: (ops / ms) * 1000, cpuUsPerOp: (cpu / ops) * 1000 };
};

interface ModeResult {
  ratio: number;
  perRound: number[];
  on: { rate: number; cpuUsPerOp: number };
  off: { rate: number; cpuUsPerOp: number };
}

async function measure(label: string, fsync: boolean, rounds: number, seconds: number, freshDir: () => string, turns: readonly ConversationTurn[], onWarning: (w: JournalWarning) => void): Promise<ModeResult> {
  const on: Side[] = [];
  const off: Side[] = [];
  // Warm-up of both sides (JIT, page cache), not counted.
  for (const chain of [true, false]) {
    const dir = freshDir();
    await appendRun(dir, 300, chain, fsync, turns, onWarning);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  for (let r = 0; r < rounds; r++) {
    // Alternate which side goes first, so drift in machine load hits both.
    const order = r % 2 === 0 ? [true, false] : [false, true];
    for (const chain of order) {
      const dir = freshDir();
      log(`hash-chain: ${label} round ${r + 1}/${rounds} hashChain:${chain} (${seconds} s)`);
      (chain ? on : off).push(await appendRun(dir, seconds * 1000, chain, fsync, turns, onWarning));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  const perRound = on.map((s, i) => rate(s) / rate(off[i]!));
  return { ratio: median(perRound), perRound, on: pooled(on), off: pooled(off) };
}

/** The encode step alone (no I/O, no lock): µs per record with and without the hash, interleaved. */
function encodeCost(turns: readonly ConversationTurn[], rounds: number): { withUs: number; withoutUs: number } {
  const payloads = turns.map((turn) => canonicalPayload({ id: '0f8fad5b-d9cb-469f-a165-70867728950e', turn })!);
  const writer = JSON.stringify(`${process.pid}@bench-host`);
  const n = 50_000;
  const withUs: number[] = [];
  const withoutUs: number[] = [];
  let sink = 0;
  for (let r = 0; r < rounds; r++) {
    for (const chained of r % 2 === 0 ? [true, false] : [false, true]) {
      let prev = '';
      const t0 = now();
      for (let i = 0; i < n; i++) {
        const e = encodeRecord(i + 1, 1_767_268_800_000 + i, writer, 'session.turn', payloads[i % payloads.length]!, chained ? prev : undefined);
        prev = e.hash;
        sink += e.line.length;
      }
      (chained ? withUs : withoutUs).push(((now() - t0) / n) * 1000);
    }
  }
  if (sink < 0) log('unreachable');
  return { withUs: median(withUs), withoutUs: median(withoutUs) };
}

const pct = (ratio: number): string => `${((1 - ratio) * 100).toFixed(1)} %`;

export function run(args: BenchArgs): Promise<BenchResult> {
  return measured(args, 'hash-chain', (root) => measureIn(args, root));
}

/** The measurement itself, in a temp root of its own (see measured()). */
async function measureIn(args: BenchArgs, root: string): Promise<{ result: Measurement; lines: readonly string[] }> {
  const rounds = args.quick ? 4 : 8;
  const seconds = args.quick ? 0.5 : 1.25;
  const warnings = new Map<string, number>();
  const onWarning = (w: JournalWarning): void => void warnings.set(w.code, (warnings.get(w.code) ?? 0) + 1);
  const turns = makeTurns(512);
  let n = 0;
  const freshDir = (): string => path.join(root, `s${++n}`);
  const durable = await measure('fsync:true', true, rounds, seconds, freshDir, turns, onWarning);
  const cpu = await measure('fsync:false', false, rounds, seconds, freshDir, turns, onWarning);
  const encode = encodeCost(turns, rounds);
  const lines = [
    `durable (fsync:true), ${CLIENTS} clients addTurn+flush: chain ${fmtRate(durable.on.rate)} vs no chain ${fmtRate(durable.off.rate)} acknowledged mutations; cost ${pct(durable.ratio)} (median of per-round ratios ${durable.perRound.map((r) => r.toFixed(3)).join(', ')})`,
    `   cpu per mutation: chain ${durable.on.cpuUsPerOp.toFixed(1)} µs, no chain ${durable.off.cpuUsPerOp.toFixed(1)} µs`,
    `cpu-bound (fsync:false): chain ${fmtRate(cpu.on.rate)} vs no chain ${fmtRate(cpu.off.rate)}; cost ${pct(cpu.ratio)} (per-round ratios ${cpu.perRound.map((r) => r.toFixed(3)).join(', ')})`,
    `   cpu per mutation: chain ${cpu.on.cpuUsPerOp.toFixed(1)} µs, no chain ${cpu.off.cpuUsPerOp.toFixed(1)} µs`,
    `encode alone (no I/O): ${encode.withUs.toFixed(2)} µs per record with the hash, ${encode.withoutUs.toFixed(2)} µs without (+${(encode.withUs - encode.withoutUs).toFixed(2)} µs of sha256)`,
    `HASH CHAIN COST: durable ${pct(durable.ratio)}, cpu-bound ${pct(cpu.ratio)}   goal: durable <= ${(MAX_COST * 100).toFixed(0)} %`,
  ];
  if (warnings.size > 0) lines.push(`warnings: ${[...warnings].map(([c, k]) => `${c} x${k}`).join(', ')}`);
  const target = 1 - MAX_COST;
  const result: Measurement = {
    name: 'hash-chain',
    title: 'append throughput with the sha256 hash chain vs without (SessionStore, group commit)',
    ratio: durable.ratio,
    target,
    goal: `chain/no-chain durable mutations/s >= ${target} (cost <= ${(MAX_COST * 100).toFixed(0)} %)`,
    pass: durable.ratio >= target,
    figures: {
      durableChainPerSec: Math.round(durable.on.rate),
      durableNoChainPerSec: Math.round(durable.off.rate),
      durableCostPct: Number(((1 - durable.ratio) * 100).toFixed(1)),
      cpuBoundChainPerSec: Math.round(cpu.on.rate),
      cpuBoundNoChainPerSec: Math.round(cpu.off.rate),
      cpuBoundCostPct: Number(((1 - cpu.ratio) * 100).toFixed(1)),
      durableCpuUsPerOpChain: Number(durable.on.cpuUsPerOp.toFixed(1)),
      durableCpuUsPerOpNoChain: Number(durable.off.cpuUsPerOp.toFixed(1)),
      encodeUsWithHash: Number(encode.withUs.toFixed(2)),
      encodeUsWithoutHash: Number(encode.withoutUs.toFixed(2)),
      clients: CLIENTS,
      rounds,
      secondsPerSide: seconds,
    },
    extra: [{ label: 'cpu-bound (fsync:false) chain/no-chain', ratio: cpu.ratio }],
  };
  return { result, lines };
}

runWhenMain(import.meta.url, run);
