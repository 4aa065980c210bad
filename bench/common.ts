/**
 * Shared pieces of the benchmarks: arguments, temp dirs, clocks, statistics,
 * deterministic text, and the result format that run-all.ts collects.
 * Results go to stdout; progress and warnings go to stderr.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import type { ConversationTurn, SessionStore } from '../src/index.js';

export interface BenchArgs {
  quick: boolean;
  /** run-all.ts passes this to collect the structured result. */
  resultFile: string | undefined;
}

export function parseArgs(argv: readonly string[] = process.argv.slice(2)): BenchArgs {
  let resultFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--result-file=')) resultFile = a.slice('--result-file='.length);
    else if (a === '--result-file') resultFile = argv[++i];
  }
  return { quick: argv.includes('--quick'), resultFile };
}

/** Runs a benchmark when its module is the script node was started with (and not when run-all imports it). */
export function runWhenMain(importMetaUrl: string, run: (args: BenchArgs) => Promise<unknown>): void {
  if (!isMain(importMetaUrl)) return;
  run(parseArgs()).catch((err) => {
    process.stderr.write(`${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
}

/** True when this module is the script node was started with. */
export function isMain(importMetaUrl: string): boolean {
  const script = process.argv[1];
  return script !== undefined && importMetaUrl === pathToFileURL(path.resolve(script)).href;
}

/** Milliseconds, monotonic, sub-microsecond resolution. */
export const now = (): number => performance.now();

export function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/** A private temp root (0700) removed by the returned cleanup, and on exit as a fallback. */
export function tempRoot(prefix: string): { root: string; cleanup: () => void } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `sj-bench-${prefix}-`));
  fs.chmodSync(root, 0o700);
  let done = false;
  const cleanup = (): void => {
    if (done) return;
    done = true;
    fs.rmSync(root, { recursive: true, force: true });
  };
  process.once('exit', cleanup);
  return { root, cleanup };
}

/** Total bytes of a store's journal segments (robust to rotation). */
export function journalBytes(dir: string): number {
  let total = 0;
  for (const name of fs.readdirSync(dir)) if (/^journal-\d+\.ndjson$/.test(name)) total += fs.statSync(path.join(dir, name)).size;
  return total;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---- statistics -------------------------------------------------------------

export function median(xs: readonly number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** Latency samples in ms, kept in a growable Float64Array. */
export class Samples {
  private data = new Float64Array(1 << 16);
  length = 0;
  push(x: number): void {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = x;
  }
  pushAll(xs: ArrayLike<number>): void {
    for (let i = 0; i < xs.length; i++) this.push(xs[i]!);
  }
  values(): Float64Array {
    return this.data.subarray(0, this.length);
  }
  sorted(): Float64Array {
    return Float64Array.from(this.values()).sort();
  }
  summary(): { p50: number; p99: number; max: number } {
    const s = this.sorted();
    return { p50: percentile(s, 50), p99: percentile(s, 99), max: s.length ? s[s.length - 1]! : NaN };
  }
}

// ---- formatting ---------------------------------------------------------------

export function fmtRate(perSecond: number): string {
  return `${Math.round(perSecond).toLocaleString('en-US')}/s`;
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

export function fmtUs(ms: number): string {
  const us = ms * 1000;
  return us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(1)} µs`;
}

export function fmtRatio(r: number): string {
  return r >= 100 ? `${r.toFixed(0)}x` : r >= 10 ? `${r.toFixed(1)}x` : `${r.toFixed(2)}x`;
}

export function loadAverage(): string {
  return os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
}

// ---- results -------------------------------------------------------------------

export interface BenchResult {
  name: string;
  title: string;
  /** The headline ratio (candidate vs baseline, oriented so bigger is better). */
  ratio: number;
  /** Goal: ratio >= target. */
  target: number;
  goal: string;
  pass: boolean;
  /** Extra named figures for the summary and RESULTS.md. */
  figures: Record<string, number | string>;
  /** Secondary ratios with their own goals (e.g. sequential vs concurrent). */
  extra?: Array<{ label: string; ratio: number; target?: number; pass?: boolean }>;
  loadBefore: string;
  loadAfter: string;
  seconds: number;
}

/** The part of a result a benchmark measures itself; measured() adds the rest. */
export type Measurement = Omit<BenchResult, 'loadBefore' | 'loadAfter' | 'seconds'>;

/**
 * What every benchmark does around its measurement: a private temp root,
 * the load average before and after, the time taken, and publishing the
 * result with its lines.
 */
export async function measured(args: BenchArgs, prefix: string, body: (root: string) => Promise<{ result: Measurement; lines: readonly string[] }>): Promise<BenchResult> {
  const started = now();
  const loadBefore = loadAverage();
  const { root, cleanup } = tempRoot(prefix);
  try {
    const { result, lines } = await body(root);
    const full: BenchResult = { ...result, loadBefore, loadAfter: loadAverage(), seconds: (now() - started) / 1000 };
    publish(args, full, lines);
    return full;
  } finally {
    cleanup();
  }
}

/** Prints the result block to stdout and hands it to run-all when asked. */
export function publish(args: BenchArgs, result: BenchResult, lines: readonly string[]): void {
  const out: string[] = [];
  out.push(`== ${result.name}: ${result.title} ==`);
  out.push(`   machine: nproc ${os.cpus().length}, node ${process.version}; load avg before ${result.loadBefore}, after ${result.loadAfter}; ${result.seconds.toFixed(1)} s${args.quick ? ' (--quick)' : ''}`);
  for (const l of lines) out.push(`   ${l}`);
  for (const e of result.extra ?? []) {
    const verdict = e.target === undefined ? '(informational)' : `goal >= ${e.target}x  ${e.pass ? 'PASS' : 'MISS'}`;
    out.push(`   ratio ${e.label}: ${fmtRatio(e.ratio)}  ${verdict}`);
  }
  out.push(`   RATIO ${fmtRatio(result.ratio)}   goal: ${result.goal}   ${result.pass ? 'PASS' : 'MISS'}`);
  process.stdout.write(`${out.join('\n')}\n\n`);
  if (args.resultFile) fs.writeFileSync(args.resultFile, JSON.stringify(result));
}

// ---- deterministic content -------------------------------------------------------

/** mulberry32: small, fast, seeded. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  'the a function returns value error file session journal commit lock fsync ' +
  'please fix this bug in my code and explain why the test fails when run with node ' +
  'const let await async import export class interface type string number ' +
  'refactor the handler so that it retries with backoff; "quoted" text, paths like src/x.ts ' +
  'here is the diff: { "ok": true } and a list of steps: 1. read 2. change 3. verify'
).split(/\s+/);

/** Prose-like text of about `bytes` ASCII characters, with the odd newline and quote (JSON escapes). */
export function text(random: () => number, bytes: number): string {
  let s = '';
  while (s.length < bytes) {
    const w = WORDS[Math.floor(random() * WORDS.length)]!;
    s += s.length === 0 ? w : random() < 0.04 ? `\n${w}` : ` ${w}`;
  }
  return s.slice(0, bytes);
}

export function between(random: () => number, lo: number, hi: number): number {
  return lo + Math.floor(random() * (hi - lo + 1));
}

/** Process CPU time (user + system) since `start`, ms. */
export function cpuMsSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
}

/**
 * The closed-loop workload of the throughput benchmarks: one async client
 * per id, each looping addTurn + await flush() until `durationMs` is over.
 * Per-operation latencies go to `lat` when given; `perClient` counts each
 * client's acknowledged turns. Any store with addTurn and flush will do
 * (the peer benchmarks pass SQLite and the others, bench/peers/peer.ts).
 */
export async function addTurnLoop(
  store: Pick<SessionStore, 'addTurn' | 'flush'>,
  ids: readonly string[],
  turns: readonly ConversationTurn[],
  durationMs: number,
  lat?: Samples,
): Promise<{ ops: number; ms: number; cpuMs: number; perClient: number[] }> {
  let ops = 0;
  const perClient = ids.map(() => 0);
  const cpu0 = process.cpuUsage();
  const start = now();
  const end = start + durationMs;
  await Promise.all(
    ids.map(async (id, c) => {
      let k = c;
      while (now() < end) {
        const t0 = lat ? now() : 0;
        store.addTurn(id, turns[k++ % turns.length]!);
        await store.flush();
        lat?.push(now() - t0);
        ops++;
        perClient[c]!++;
      }
    }),
  );
  return { ops, ms: now() - start, cpuMs: cpuMsSince(cpu0), perClient };
}
