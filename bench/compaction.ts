/**
 * Compaction, measured against replay in the same run:
 *
 *   throughput: records folded per second by a compaction (in a fresh child
 *   process, archive on and off) vs records replayed per second by
 *   SessionStore.openSync (also a fresh child) over the same journal.
 *   Goal: >= 0.5x.
 *   memory: the compaction child's peak RSS vs 2 x snapshot size + 100 MB.
 *   latency: p50/p99 time to acknowledgement of a writer (addTurn + flush,
 *   fsync on) with no compaction, then while compactions run back to back.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { SessionStore } from '../src/index.js';
import { COMPACTION_NODE_FLAGS } from '../src/compact/compaction-process.js';
import { fmtMs, fmtRate, fmtRatio, runWhenMain, log, median, now, percentile, type BenchArgs, type BenchResult, measured, type Measurement } from './common.js';
import { generate } from './replay.js';

const TARGET = 0.5;
const CHILD = new URL('./compaction-child.js', import.meta.url).pathname;
const CLI = new URL('../src/cli/main.js', import.meta.url).pathname;

interface ChildResult {
  ms: number;
  maxRssBytes: number;
  snapshotBytes?: number;
}

function runChild(args: string[]): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    // The same V8 flags a compaction runs with (src/compact/compaction-process.ts), for both sides.
    const child = spawn(process.execPath, [...COMPACTION_NODE_FLAGS, CHILD, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(stdout) as ChildResult) : reject(new Error(`child ${args.join(' ')} exited ${code}`))));
  });
}

function copyStore(from: string, to: string): void {
  fs.rmSync(to, { recursive: true, force: true });
  fs.cpSync(from, to, { recursive: true });
  fs.chmodSync(to, 0o700);
}

/** Ack latencies (ms) of `count` sequential durable addTurn + flush calls. */
async function ackLatencies(store: SessionStore, id: string, count: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = now();
    store.addTurn(id, { prompt: `p${i} ${'x'.repeat(200)}`, response: `r${i} ${'y'.repeat(200)}`, timestamp: new Date() });
    await store.flush();
    samples.push(now() - t0);
  }
  return samples.sort((a, b) => a - b);
}

export function run(args: BenchArgs): Promise<BenchResult> {
  return measured(args, 'compaction', (root) => measureIn(args, root));
}

/** The measurement itself, in a temp root of its own (see measured()). */
async function measureIn(args: BenchArgs, root: string): Promise<{ result: Measurement; lines: readonly string[] }> {
  const records = args.quick ? 200_000 : 1_000_000;
  const source = path.join(root, 'source');
  log(`compaction: generating ${records} records`);
  await generate(source, records);
  const written = fs.readdirSync(source).filter((n) => n.startsWith('journal-')).reduce((sum, n) => sum + fs.statSync(path.join(source, n)).size, 0);

  const work = path.join(root, 'work');
  const replayRates: number[] = [];
  const compactRates: number[] = [];
  const compactNoArchiveRates: number[] = [];
  let peakRss = 0;
  let snapshotBytes = 0;
  const rounds = args.quick ? 1 : 2;
  for (let round = 0; round < rounds; round++) {
    copyStore(source, work);
    const replay = await runChild(['replay', work]);
    replayRates.push(records / (replay.ms / 1000));
    const compact = await runChild(['compact', work, 'archive']);
    compactRates.push(records / (compact.ms / 1000));
    peakRss = Math.max(peakRss, compact.maxRssBytes);
    snapshotBytes = compact.snapshotBytes ?? 0;
    copyStore(source, work);
    const bare = await runChild(['compact', work, 'no-archive']);
    compactNoArchiveRates.push(records / (bare.ms / 1000));
    peakRss = Math.max(peakRss, bare.maxRssBytes);
    log(`compaction: round ${round + 1}: replay ${fmtRate(replayRates[round]!)}, compact ${fmtRate(compactRates[round]!)} (archive), ${fmtRate(compactNoArchiveRates[round]!)} (no archive)`);
  }
  const ratio = median(compactRates) / median(replayRates);
  const ratioNoArchive = median(compactNoArchiveRates) / median(replayRates);
  const rssLimit = 2 * snapshotBytes + 100 * 1024 * 1024;

  // Latency: a durable writer, first alone, then while compactions run back to back.
  copyStore(source, work);
  const store = SessionStore.openSync({ dir: work, autoCompact: false, onWarning: () => undefined, ttlMs: 1e12, maxSessions: 1_000_000 });
  const id = store.createSession();
  const n = args.quick ? 300 : 1000;
  const quiet = await ackLatencies(store, id, n);
  let compacting = true;
  let compactions = 0;
  const loop = (async () => {
    while (compacting) {
      await new Promise<void>((resolve) => spawn(process.execPath, [CLI, 'compact', '--dir', work, '--ttl', '3650d', '--max-sessions', '1000000'], { stdio: 'ignore' }).on('exit', () => resolve()));
      compactions++;
    }
  })();
  await new Promise((r) => setTimeout(r, 200));
  const busy = await ackLatencies(store, id, n);
  compacting = false;
  await loop;
  await store.close();

  const lines = [
    `journal: ${records} records, ${(written / 1048576).toFixed(0)} MiB`,
    `replay (SessionStore.openSync, own process): ${fmtRate(median(replayRates))} records/s`,
    `compaction with gzip archive: ${fmtRate(median(compactRates))} records/s -> ratio ${fmtRatio(ratio)}`,
    `compaction without archive:   ${fmtRate(median(compactNoArchiveRates))} records/s -> ratio ${fmtRatio(ratioNoArchive)}`,
    `peak RSS of the compaction: ${(peakRss / 1048576).toFixed(0)} MiB; snapshot ${(snapshotBytes / 1048576).toFixed(1)} MiB; limit 2 x snapshot + 100 MiB = ${(rssLimit / 1048576).toFixed(0)} MiB -> ${peakRss <= rssLimit ? 'PASS' : 'MISS'}`,
    `append ack latency, no compaction:      p50 ${fmtMs(percentile(quiet, 50))}, p99 ${fmtMs(percentile(quiet, 99))}`,
    `append ack latency, compaction running: p50 ${fmtMs(percentile(busy, 50))}, p99 ${fmtMs(percentile(busy, 99))} (${compactions} compactions ran)`,
  ];
  const result: Measurement = {
    name: 'compaction',
    title: 'compaction throughput vs replay, peak RSS, append p99 during compaction',
    ratio,
    target: TARGET,
    goal: `compaction records/s >= ${TARGET}x replay records/s (archive on)`,
    pass: ratio >= TARGET,
    figures: {
      records,
      journalMiB: Math.round(written / 1048576),
      replayPerSec: Math.round(median(replayRates)),
      compactPerSec: Math.round(median(compactRates)),
      compactNoArchivePerSec: Math.round(median(compactNoArchiveRates)),
      peakRssMiB: Math.round(peakRss / 1048576),
      snapshotMiB: Number((snapshotBytes / 1048576).toFixed(1)),
      rssLimitMiB: Math.round(rssLimit / 1048576),
      ackP50QuietMs: Number(percentile(quiet, 50).toFixed(2)),
      ackP99QuietMs: Number(percentile(quiet, 99).toFixed(2)),
      ackP50CompactingMs: Number(percentile(busy, 50).toFixed(2)),
      ackP99CompactingMs: Number(percentile(busy, 99).toFixed(2)),
      compactionsDuringLatency: compactions,
    },
    extra: [
      { label: 'compaction without archive vs replay', ratio: ratioNoArchive, target: TARGET, pass: ratioNoArchive >= TARGET },
      { label: 'RSS limit / peak RSS', ratio: rssLimit / peakRss, target: 1, pass: peakRss <= rssLimit },
      { label: 'append p99 quiet / p99 compacting', ratio: percentile(quiet, 99) / percentile(busy, 99) },
    ],
  };
  return { result, lines };
}

runWhenMain(import.meta.url, run);
