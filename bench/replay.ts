/**
 * (c) Open/replay rate.
 *
 * A journal of 300k-400k realistic records (see generate()) is written to a
 * temp dir by the real engine. Then, alternately:
 *
 *   candidate: SessionStore.openSync (full replay into sessions) + closeSync
 *   baseline:  read the same file in 1 MiB chunks, split on '\n', JSON.parse
 *              each line, nothing else
 *
 * Goal: candidate records/s >= 0.6x baseline records/s.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Journal, SessionStore } from '../src/index.js';
import type { JournalWarning } from '../src/index.js';
import { between, fmtRate, fmtRatio, runWhenMain, log, mean, median, now, rng, text, type BenchArgs, type BenchResult, measured, type Measurement } from './common.js';

const TARGET = 0.6;
const CHUNK = 1024 * 1024;

/**
 * Writes `records` journal records through the real engine (Journal.append,
 * fsync: false), so envelopes, canonical payloads and the hash chain are
 * exactly what SessionStore writes, for the record mix a SessionStore would
 * journal under a realistic workload: sessions are created (createSession
 * UUIDs or ensureSession ids), get 5-60 turns (prompts 100-400 B, responses
 * 200-600 B), conversation ids, updates, resets and coalesced read touches;
 * most are deleted, the rest evicted (LRU, 100 max). Driving SessionStore
 * itself for 400k records took ~25 s on a loaded 2-core machine (and would
 * trigger auto-compaction), too long for the suite.
 */
export async function generate(dir: string, records: number): Promise<Map<string, number>> {
  const mix = new Map<string, number>();
  const journal = Journal.openSync({
    dir,
    fsync: false,
    consumer: { reset: () => undefined, restore: () => undefined, apply: () => undefined },
  });
  const random = rng(7);
  const prompts = Array.from({ length: 1500 }, () => text(random, between(random, 100, 400)));
  const responses = Array.from({ length: 1500 }, () => text(random, between(random, 200, 600)));
  const pick = (xs: string[]): string => xs[Math.floor(random() * xs.length)]!;
  let clock = Date.parse('2026-11-22T08:00:00.000Z');
  let count = 0;
  const emit = async (kind: string, payload: Record<string, unknown>): Promise<void> => {
    const type = `session.${kind}`;
    mix.set(type, (mix.get(type) ?? 0) + 1);
    journal.append(type, payload, { time: clock });
    if (++count % 5000 === 0) await journal.flush();
  };
  interface Live {
    id: string;
    turnsLeft: number;
    lastAccess: number;
  }
  const live: Live[] = [];
  const abandoned: Live[] = [];
  while (count < records) {
    clock += between(random, 1, 400);
    if (live.length + abandoned.length < 100 || random() < 0.02) {
      const id = random() < 0.5 ? uuidish(random) : `conv_${Math.floor(random() * 1e12).toString(36)}`;
      live.push({ id, turnsLeft: between(random, 5, 60), lastAccess: clock });
      await emit('create', { id });
      if (live.length + abandoned.length > 100) {
        // LRU eviction, journaled by the writer that went over the limit.
        abandoned.sort((a, b) => a.lastAccess - b.lastAccess);
        const victim = abandoned.shift() ?? live.splice(live.indexOf(live.reduce((a, b) => (a.lastAccess <= b.lastAccess ? a : b))), 1)[0]!;
        await emit('delete', { id: victim.id, reason: 'evicted' });
      }
      continue;
    }
    if (live.length === 0) continue;
    const i = Math.floor(random() * live.length);
    const s = live[i]!;
    s.lastAccess = clock;
    const r = random();
    if (r < 0.8) {
      await emit('turn', { id: s.id, turn: { prompt: pick(prompts), response: pick(responses), timestamp: new Date(clock - 1500).toISOString() } });
      s.turnsLeft--;
    } else if (r < 0.86) {
      await emit('touch', { id: s.id });
    } else if (r < 0.91) {
      await emit('conversation', { id: s.id, conversationId: `thread_${Math.floor(random() * 1e15).toString(36)}` });
    } else if (r < 0.94) {
      await emit('update', { id: s.id, data: { codexConversationId: `thread_${Math.floor(random() * 1e15).toString(36)}` } });
    } else if (r < 0.95) {
      await emit('reset', { id: s.id });
    } else {
      continue; // a read of a session already touched since its last write: coalesced, nothing written
    }
    if (s.turnsLeft <= 0) {
      live.splice(i, 1);
      if (random() < 0.75) await emit('delete', { id: s.id, reason: 'deleted' });
      else abandoned.push(s);
    }
  }
  await journal.close();
  return mix;
}

function uuidish(random: () => number): string {
  const hex = (n: number): string => Array.from({ length: n }, () => Math.floor(random() * 16).toString(16)).join('');
  return `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}`;
}

/** The plain baseline: 1 MiB chunks, split on newline, JSON.parse each line. */
export function plainParse(file: string): { lines: number; bytes: number } {
  const fd = fs.openSync(file, 'r');
  const buffer = Buffer.allocUnsafe(CHUNK);
  let carry = '';
  let lines = 0;
  let bytes = 0;
  let sink = 0;
  try {
    for (;;) {
      const got = fs.readSync(fd, buffer, 0, CHUNK, null);
      if (got === 0) break;
      bytes += got;
      const parts = (carry + buffer.toString('utf8', 0, got)).split('\n');
      carry = parts.pop()!;
      for (const line of parts) {
        if (line.length === 0) continue;
        const o = JSON.parse(line) as { seq: number };
        sink += o.seq;
        lines++;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  if (carry.length > 0) {
    JSON.parse(carry);
    lines++;
  }
  if (sink < 0) log('impossible');
  return { lines, bytes };
}

export function run(args: BenchArgs): Promise<BenchResult> {
  return measured(args, 'replay', (root) => measureIn(args, root));
}

/** The measurement itself, in a temp root of its own (see measured()). */
async function measureIn(args: BenchArgs, root: string): Promise<{ result: Measurement; lines: readonly string[] }> {
  const records = args.quick ? 300_000 : 400_000;
  const pairs = args.quick ? 3 : 5;
  const dir = path.join(root, 'store');
  log(`replay: writing ${records.toLocaleString('en-US')} records with the real engine (Journal.append, fsync: false)`);
  const g0 = now();
  const mix = await generate(dir, records);
  const segments = fs.readdirSync(dir).filter((n) => n.startsWith('journal-'));
  if (segments.length !== 1) throw new Error(`expected one segment, found ${segments.join(', ')}`);
  const file = path.join(dir, segments[0]!);
  const bytes = fs.statSync(file).size;
  const lines = plainParse(file).lines;
  if (lines !== records) throw new Error(`wrote ${records} records, read back ${lines}`);
  log(`replay: ${lines.toLocaleString('en-US')} records, ${(bytes / 1e6).toFixed(1)} MB, generated in ${((now() - g0) / 1000).toFixed(1)} s`);

  let warnings = 0;
  const onWarning = (w: JournalWarning): void => {
    if (warnings++ < 5) log(`replay warning: ${w.code} ${w.message}`);
  };
  let liveSessions = 0;
  let liveTurns = 0;
  // CPU time of each pass too: on a loaded machine it is steadier than wall time.
  const baseCpu: number[] = [];
  const oursCpu: number[] = [];
  const cpuMs = (c: NodeJS.CpuUsage): number => (c.user + c.system) / 1000;
  const openOnce = (): number => {
    const c0 = process.cpuUsage();
    const t0 = now();
    const store = SessionStore.openSync({ dir, fsync: false, onWarning, autoCompact: false });
    const ms = now() - t0;
    oursCpu.push(cpuMs(process.cpuUsage(c0)));
    const sessions = store.listSessions();
    liveSessions = sessions.length;
    liveTurns = sessions.reduce((s, x) => s + x.turns.length, 0);
    store.closeSync();
    return ms;
  };
  const plainOnce = (): number => {
    const c0 = process.cpuUsage();
    const t0 = now();
    plainParse(file);
    const ms = now() - t0;
    baseCpu.push(cpuMs(process.cpuUsage(c0)));
    return ms;
  };

  log('replay: warm-up');
  plainOnce();
  openOnce();
  baseCpu.length = 0;
  oursCpu.length = 0;
  const base: number[] = [];
  const ours: number[] = [];
  for (let p = 0; p < pairs; p++) {
    log(`replay: pair ${p + 1}/${pairs}`);
    if (p % 2 === 0) {
      base.push(plainOnce());
      ours.push(openOnce());
    } else {
      ours.push(openOnce());
      base.push(plainOnce());
    }
  }
  const rate = (ms: number): number => (lines / ms) * 1000;
  const mbps = (ms: number): number => bytes / 1e6 / (ms / 1000);
  const baseMs = mean(base);
  const oursMs = mean(ours);
  const perPair = ours.map((ms, i) => base[i]! / ms);
  const ratio = median(perPair);
  const mixText = [...mix]
    .sort((a, b) => b[1] - a[1])
    .map(([t, n]) => `${t.replace('session.', '')} ${((n / lines) * 100).toFixed(1)}%`)
    .join(', ');
  const out = [
    `journal: ${lines.toLocaleString('en-US')} records, ${(bytes / 1e6).toFixed(1)} MB (${(bytes / lines).toFixed(0)} B/record); mix: ${mixText}`,
    `baseline  1 MiB chunks + split + JSON.parse: ${fmtRate(rate(baseMs))} records, ${mbps(baseMs).toFixed(0)} MB/s (${baseMs.toFixed(0)} ms per pass)`,
    `candidate SessionStore.openSync (replay)   : ${fmtRate(rate(oursMs))} records, ${mbps(oursMs).toFixed(0)} MB/s (${oursMs.toFixed(0)} ms per open)`,
    `per-pass ms: baseline ${base.map((x) => x.toFixed(0)).join(', ')}; candidate ${ours.map((x) => x.toFixed(0)).join(', ')}; per-pair ratios ${perPair.map(fmtRatio).join(', ')}; headline = their median (mean times give ${fmtRatio(baseMs / oursMs)})`,
    `state after replay: ${liveSessions} sessions, ${liveTurns} turns; replay warnings: ${warnings}`,
  ];
  const cpuRatio = median(oursCpu.map((c, i) => baseCpu[i]! / c));
  out.push(`CPU time per pass (steadier under load): baseline ${median(baseCpu).toFixed(0)} ms, candidate ${median(oursCpu).toFixed(0)} ms (median)`);
  const result: Measurement = {
    name: 'replay',
    title: 'SessionStore.openSync replay rate vs plain chunked JSON.parse of the same file',
    ratio,
    target: TARGET,
    goal: `candidate/baseline records/s >= ${TARGET}x`,
    pass: ratio >= TARGET,
    extra: [{ label: 'by CPU time instead of wall time', ratio: cpuRatio }],
    figures: {
      records: lines,
      baselineCpuMs: Math.round(median(baseCpu)),
      candidateCpuMs: Math.round(median(oursCpu)),
      megabytes: Number((bytes / 1e6).toFixed(1)),
      baselineRecordsPerSec: Math.round(rate(baseMs)),
      candidateRecordsPerSec: Math.round(rate(oursMs)),
      baselineMBps: Number(mbps(baseMs).toFixed(1)),
      candidateMBps: Number(mbps(oursMs).toFixed(1)),
      warnings,
      pairs,
    },
  };
  return { result, lines: out };
}

runWhenMain(import.meta.url, run);
