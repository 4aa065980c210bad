/**
 * (c) Open/replay rate.
 *
 * A journal of ~300k-400k realistic records is generated in a temp dir by the
 * real writer (SessionStore, fsync: false): sessions are created, get 5-60
 * turns (prompts 100-400 B, responses 200-600 B), conversation ids, updates,
 * resets, read touches; most are deleted, the rest evicted by the 100-session
 * limit. Then, alternately:
 *
 *   candidate: SessionStore.openSync (full replay into sessions) + closeSync
 *   baseline:  read the same file in 1 MiB chunks, split on '\n', JSON.parse
 *              each line, nothing else
 *
 * Goal: candidate records/s >= 0.6x baseline records/s.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SessionStore } from '../src/index.js';
import type { JournalWarning } from '../src/index.js';
import { between, fmtRate, fmtRatio, isMain, loadAverage, log, mean, now, parseArgs, publish, rng, tempRoot, text, type BenchArgs, type BenchResult } from './common.js';

const TARGET = 0.6;
const CHUNK = 1024 * 1024;

/** Drives the real writer with a realistic mix until `records` lines are queued. */
async function generate(dir: string, records: number): Promise<void> {
  const random = rng(7);
  const store = SessionStore.openSync({ dir, fsync: false, onWarning: (w) => log(`generate: ${w.code} ${w.message}`) });
  let clock = Date.parse('2026-11-22T08:00:00.000Z');
  interface Live {
    id: string;
    turnsLeft: number;
  }
  const live: Live[] = [];
  let queued = 0;
  let sinceYield = 0;
  const startSession = (): void => {
    if (random() < 0.5) {
      live.push({ id: store.createSession(), turnsLeft: between(random, 5, 60) });
    } else {
      const id = `conv_${Math.floor(random() * 1e12).toString(36)}-${live.length}`;
      store.ensureSession(id);
      live.push({ id, turnsLeft: between(random, 5, 60) });
    }
    queued++;
  };
  while (queued < records) {
    if (live.length < 90 || random() < 0.02) startSession();
    const i = Math.floor(random() * live.length);
    const s = live[i]!;
    const r = random();
    clock += between(random, 1, 400);
    if (r < 0.8) {
      store.addTurn(s.id, { prompt: text(random, between(random, 100, 400)), response: text(random, between(random, 200, 600)), timestamp: new Date(clock) });
      s.turnsLeft--;
    } else if (r < 0.86) {
      store.getSession(s.id); // a read: a deferred, coalesced touch
    } else if (r < 0.91) {
      store.setCodexConversationId(s.id, `thread_${Math.floor(random() * 1e15).toString(36)}`);
    } else if (r < 0.94) {
      store.updateSession(s.id, { codexConversationId: `thread_${Math.floor(random() * 1e15).toString(36)}` });
    } else if (r < 0.95) {
      store.resetSession(s.id);
    } else {
      continue;
    }
    queued++;
    if (s.turnsLeft <= 0) {
      live.splice(i, 1);
      if (random() < 0.75) {
        store.deleteSession(s.id);
        queued++;
      } // else: abandoned, evicted later by maxSessions
    }
    if (++sinceYield >= 2000) {
      sinceYield = 0;
      await store.flush();
    }
  }
  await store.close();
}

/** The plain baseline: 1 MiB chunks, split on newline, JSON.parse each line. */
function plainParse(file: string): { lines: number; bytes: number } {
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

export async function run(args: BenchArgs): Promise<BenchResult> {
  const started = now();
  const loadBefore = loadAverage();
  const { root, cleanup } = tempRoot('replay');
  const records = args.quick ? 300_000 : 400_000;
  const pairs = args.quick ? 2 : 3;
  try {
    const dir = path.join(root, 'store');
    log(`replay: generating ~${records.toLocaleString('en-US')} records with the real writer (fsync: false)`);
    const g0 = now();
    await generate(dir, records);
    const segments = fs.readdirSync(dir).filter((n) => n.startsWith('journal-'));
    if (segments.length !== 1) throw new Error(`expected one segment, found ${segments.join(', ')}`);
    const file = path.join(dir, segments[0]!);
    const bytes = fs.statSync(file).size;
    const mix = new Map<string, number>();
    const plainCheck = plainParse(file);
    {
      // Record-type mix, for the report (not timed).
      const content = fs.readFileSync(file, 'utf8');
      for (const m of content.matchAll(/"t":"([a-z.]+)"/g)) mix.set(m[1]!, (mix.get(m[1]!) ?? 0) + 1);
    }
    const lines = plainCheck.lines;
    log(`replay: ${lines.toLocaleString('en-US')} records, ${(bytes / 1e6).toFixed(1)} MB, generated in ${((now() - g0) / 1000).toFixed(1)} s`);

    let warnings = 0;
    const onWarning = (w: JournalWarning): void => {
      if (warnings++ < 5) log(`replay warning: ${w.code} ${w.message}`);
    };
    let liveSessions = 0;
    let liveTurns = 0;
    const openOnce = (): number => {
      const t0 = now();
      const store = SessionStore.openSync({ dir, fsync: false, onWarning });
      const ms = now() - t0;
      const sessions = store.listSessions();
      liveSessions = sessions.length;
      liveTurns = sessions.reduce((s, x) => s + x.turns.length, 0);
      store.closeSync();
      return ms;
    };
    const plainOnce = (): number => {
      const t0 = now();
      plainParse(file);
      return now() - t0;
    };

    log('replay: warm-up');
    plainOnce();
    openOnce();
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
    const ratio = baseMs / oursMs;
    const perPair = ours.map((ms, i) => base[i]! / ms);
    const mixText = [...mix]
      .sort((a, b) => b[1] - a[1])
      .map(([t, n]) => `${t.replace('session.', '')} ${((n / lines) * 100).toFixed(1)}%`)
      .join(', ');
    const out = [
      `journal: ${lines.toLocaleString('en-US')} records, ${(bytes / 1e6).toFixed(1)} MB (${(bytes / lines).toFixed(0)} B/record); mix: ${mixText}`,
      `baseline  1 MiB chunks + split + JSON.parse: ${fmtRate(rate(baseMs))} records, ${mbps(baseMs).toFixed(0)} MB/s (${baseMs.toFixed(0)} ms per pass)`,
      `candidate SessionStore.openSync (replay)   : ${fmtRate(rate(oursMs))} records, ${mbps(oursMs).toFixed(0)} MB/s (${oursMs.toFixed(0)} ms per open)`,
      `per-pass ms: baseline ${base.map((x) => x.toFixed(0)).join(', ')}; candidate ${ours.map((x) => x.toFixed(0)).join(', ')}; per-pair ratios ${perPair.map(fmtRatio).join(', ')}`,
      `state after replay: ${liveSessions} sessions, ${liveTurns} turns; replay warnings: ${warnings}`,
    ];
    const result: BenchResult = {
      name: 'replay',
      title: 'SessionStore.openSync replay rate vs plain chunked JSON.parse of the same file',
      ratio,
      target: TARGET,
      goal: `candidate/baseline records/s >= ${TARGET}x`,
      pass: ratio >= TARGET,
      figures: {
        records: lines,
        megabytes: Number((bytes / 1e6).toFixed(1)),
        baselineRecordsPerSec: Math.round(rate(baseMs)),
        candidateRecordsPerSec: Math.round(rate(oursMs)),
        baselineMBps: Number(mbps(baseMs).toFixed(1)),
        candidateMBps: Number(mbps(oursMs).toFixed(1)),
        warnings,
        pairs,
      },
      loadBefore,
      loadAfter: loadAverage(),
      seconds: (now() - started) / 1000,
    };
    publish(args, result, out);
    return result;
  } finally {
    cleanup();
  }
}

if (isMain(import.meta.url)) {
  run(parseArgs()).catch((err) => {
    process.stderr.write(`${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
}
