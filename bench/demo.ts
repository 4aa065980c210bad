/**
 * `npm run demo`: several processes append to one store at once, durably
 * (fsync on), then a fresh replay checks that every acknowledged mutation is
 * there exactly once.
 *
 *   node build/bench/demo.js [--writers 4] [--seconds 6] [--dir PATH]
 *
 * Exits 1 if anything acknowledged was lost or duplicated, or a writer failed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { SessionStore, type JournalWarning } from '../src/index.js';

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const WRITERS = Math.max(1, Number(option('writers', '4')));
const SECONDS = Math.max(1, Number(option('seconds', '6')));
const dir = path.resolve(option('dir', path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'session-journal-demo-')), 'store')));
const writerScript = new URL('./demo-writer.js', import.meta.url).pathname;

interface Writer {
  name: string;
  proc: ChildProcess;
  pid: number;
  acked: number;
  done: boolean;
  ready: Promise<void>;
  exited: Promise<number | null>;
  stderr: string;
}

const fmt = (n: number) => n.toLocaleString('en-US');
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(2)} MiB`;

function startWriter(name: string): Writer {
  const proc = spawn(process.execPath, [writerScript, dir, name, String(SECONDS)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let markReady!: () => void;
  const writer: Writer = {
    name,
    proc,
    pid: proc.pid ?? 0,
    acked: 0,
    done: false,
    ready: new Promise<void>((resolve) => (markReady = resolve)),
    exited: new Promise((resolve) => proc.on('close', (code) => resolve(code))),
    stderr: '',
  };
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => (writer.stderr += chunk));
  readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
    let message: { ready?: boolean; acked?: number; done?: number };
    try {
      message = JSON.parse(line) as typeof message;
    } catch {
      return;
    }
    if (message.ready) markReady();
    if (typeof message.acked === 'number') writer.acked = Math.max(writer.acked, message.acked);
    if (typeof message.done === 'number') writer.done = true;
  });
  return writer;
}

async function main(): Promise<number> {
  console.log(`session-journal demo: ${WRITERS} writer processes, ${SECONDS} s, fsync on`);
  console.log(`store: ${dir}\n`);
  fs.mkdirSync(path.dirname(dir), { recursive: true, mode: 0o700 });

  const writers = Array.from({ length: WRITERS }, (_, i) => startWriter(`w${i}`));
  const failedEarly = Promise.race(writers.map((w) => w.exited.then((code) => Promise.reject(new Error(`${w.name} exited (${code}) before it was ready:\n${w.stderr}`)))));
  await Promise.race([Promise.all(writers.map((w) => w.ready)), failedEarly]);
  failedEarly.catch(() => undefined);

  const started = Date.now();
  for (const w of writers) w.proc.stdin!.write('go\n');
  console.log(`all ${WRITERS} writers open (pids ${writers.map((w) => w.pid).join(', ')}); go\n`);

  let last = 0;
  const progress = setInterval(() => {
    const total = writers.reduce((sum, w) => sum + w.acked, 0);
    const t = (Date.now() - started) / 1000;
    console.log(`  ${t.toFixed(1).padStart(5)} s  acknowledged ${fmt(total).padStart(8)}  (+${fmt(total - last)}/s)   ${writers.map((w) => `${w.name} ${fmt(w.acked)}`).join('  ')}`);
    last = total;
  }, 1000);
  const codes = await Promise.all(writers.map((w) => w.exited));
  clearInterval(progress);
  const elapsedMs = Date.now() - started;

  let failed = false;
  writers.forEach((w, i) => {
    if (codes[i] !== 0 || !w.done) {
      failed = true;
      console.error(`\n${w.name} (pid ${w.pid}) failed, exit code ${codes[i]}:\n${w.stderr}`);
    }
  });

  // A fresh replay, as any new process would see the store.
  const warnings: JournalWarning[] = [];
  const replayStarted = Date.now();
  const store = SessionStore.openSync({ dir, fsync: false, onWarning: (w) => warnings.push(w) });
  const sessions = store.listSessions();
  const replayMs = Date.now() - replayStarted;
  await store.close();

  const seen = new Map<string, number>(); // prompt -> times found
  for (const s of sessions) for (const turn of s.turns) seen.set(turn.prompt, (seen.get(turn.prompt) ?? 0) + 1);
  let acknowledged = 0;
  let lost = 0;
  let found = 0;
  const perWriter = writers.map((w) => {
    let present = 0;
    for (let i = 0; i < w.acked; i++) if (seen.has(`${w.name}:${i}`)) present++;
    acknowledged += w.acked;
    lost += w.acked - present;
    return { ...w, present };
  });
  let duplicated = 0;
  for (const n of seen.values()) {
    found += n;
    if (n > 1) duplicated += n - 1;
  }

  const segments = fs.readdirSync(dir).filter((f) => /^journal-\d+\.ndjson$/.test(f));
  const bytes = segments.reduce((sum, f) => sum + fs.statSync(path.join(dir, f)).size, 0);
  const lines = segments.flatMap((f) => fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean));
  const seqs = lines.map((l) => (JSON.parse(l) as { seq: number }).seq);
  const gapless = seqs.every((s, i) => s === i + 1);

  console.log('\n  writer  pid       acknowledged  in replay');
  for (const w of perWriter) console.log(`  ${w.name.padEnd(6)}  ${String(w.pid).padEnd(8)}  ${fmt(w.acked).padStart(12)}  ${fmt(w.present).padStart(9)}`);
  const rows: [string, string][] = [
    ['processes', `${WRITERS} writers, concurrently, fsync on`],
    ['elapsed', `${(elapsedMs / 1000).toFixed(1)} s (${fmt(Math.round((acknowledged / elapsedMs) * 1000))} acknowledged mutations/s)`],
    ['acknowledged', `${fmt(acknowledged)} turns`],
    ['found in replay', `${fmt(found)} turns, ${sessions.length} sessions (replayed in ${replayMs} ms)`],
    ['lost', fmt(lost)],
    ['duplicated', fmt(duplicated)],
    ['journal records', `${fmt(seqs.length)}, seq 1..${fmt(seqs.length)} ${gapless ? 'gapless' : 'WITH GAPS'}`],
    ['replay warnings', String(warnings.length)],
    ['store', dir],
    ['journal size', `${mib(bytes)} in ${segments.join(', ')}`],
  ];
  console.log('');
  for (const [k, v] of rows) console.log(`  ${k.padEnd(16)} ${v}`);
  for (const w of warnings.slice(0, 5)) console.log(`  warning: ${w.code} ${w.message}`);

  const ok = !failed && lost === 0 && duplicated === 0 && found === acknowledged && gapless && warnings.length === 0;
  console.log(`\n${ok ? 'OK: every acknowledged mutation is in the replay, exactly once.' : 'FAILED: see above.'}`);
  console.log(`(the store is kept for inspection: rm -rf ${path.dirname(dir)})`);
  return ok ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    console.error(err.stack ?? err.message);
    process.exitCode = 1;
  },
);
