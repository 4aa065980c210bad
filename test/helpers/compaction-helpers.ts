/**
 * Shared helpers of the compaction tests (test/compaction/**, test/cli/compact.test.ts).
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { SessionStore, type JournalWarning, type SessionStoreOptions } from '../../src/index.js';
import { serializeSessions, type PlainSession } from './child-protocol.js';
import { FakeClock } from './fake-clock.js';
import { TEST_T0 } from './fixture-now.js';

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
/** A TTL no test reaches: the store itself never expires anything. */
export const NO_TTL = 1000 * DAY * 365;
/** Where the tests' own stores start (fixture-now.ts). */
export const T0 = TEST_T0;

/** Opens a store that never compacts by itself and never expires (unless told otherwise). */
export function openStore(dir: string, onWarning: (w: JournalWarning) => void, options: Partial<SessionStoreOptions> = {}): SessionStore {
  return SessionStore.openSync({ dir, fsync: false, autoCompact: false, ttlMs: NO_TTL, maxSessions: 100_000, onWarning, ...options });
}

/** A fresh replay of the store (opened, listed, closed), as comparable JSON. */
export async function freshReplay(dir: string, onWarning: (w: JournalWarning) => void): Promise<PlainSession[]> {
  const store = openStore(dir, onWarning);
  try {
    return serializeSessions(store.listSessions());
  } finally {
    await store.close();
  }
}

export const turnOf = (prompt: string, clock?: FakeClock) => ({ prompt, response: `re ${prompt}`, timestamp: new Date(clock ? clock.now : Date.now()) });

/** Names in the store directory, sorted (the archive directory and locks included). */
export function names(dir: string): string[] {
  return fs.readdirSync(dir).sort();
}

export const snapshotsIn = (dir: string): string[] => names(dir).filter((n) => /^snapshot-\d{8,}\.ndjson$/.test(n));
export const segmentsIn = (dir: string): string[] => names(dir).filter((n) => /^journal-\d{8,}\.ndjson$/.test(n));

/** The highest-numbered segment: the live one. */
export function liveSegment(dir: string): string {
  const s = segmentsIn(dir);
  if (s.length === 0) throw new Error(`no segment in ${dir}`);
  return s[s.length - 1]!;
}

export interface ParsedLine {
  v: number;
  seq: number;
  /** Format 1: ISO text; format 2 (what new writes use): epoch ms. */
  ts: string | number;
  /** Format 2 writes it only where the segment's rule does not already name the writer (docs/FORMAT.md). */
  w?: string;
  t: string;
  p: Record<string, unknown>;
}

/** The parsable records of one file of the store. */
export function recordsOf(dir: string, name: string): ParsedLine[] {
  return fs
    .readFileSync(path.join(dir, name), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as ParsedLine);
}

/** Every file below `dir` (relative path -> bytes and mtime; a symlink by its target, not followed), to prove nothing changed. */
export function fingerprint(dir: string): Record<string, { sha256: string; size: number; mtimeMs: number; mode: number }> {
  const out: Record<string, { sha256: string; size: number; mtimeMs: number; mode: number }> = {};
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      const r = path.join(rel, name);
      const st = fs.lstatSync(path.join(dir, r));
      if (st.isSymbolicLink()) {
        out[r] = { sha256: sha256(fs.readlinkSync(path.join(dir, r))), size: st.size, mtimeMs: st.mtimeMs, mode: st.mode };
      } else if (st.isDirectory()) {
        out[r + '/'] = { sha256: '', size: 0, mtimeMs: 0, mode: st.mode };
        walk(r);
      } else {
        out[r] = { sha256: sha256(fs.readFileSync(path.join(dir, r))), size: st.size, mtimeMs: st.mtimeMs, mode: st.mode };
      }
    }
  };
  walk('');
  return out;
}

export const sha256 = (data: Buffer | string): string => crypto.createHash('sha256').update(data).digest('hex');

/** Polls `check` every `everyMs` until it returns true or `timeoutMs` passes. */
export async function waitFor(check: () => boolean, timeoutMs: number, everyMs = 25): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** The pid of a process that has already exited (for "dead writer" leftovers). */
export function deadPid(): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', () => resolve(child.pid!));
  });
}

/** Path of the compiled CLI (tests run from build/test/<dir>/). */
export const CLI_MAIN = new URL('../../src/cli/main.js', import.meta.url).pathname;

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment of this process without the variables that name a store (SESSION_JOURNAL_DIR, _REDIS, _PREFIX), unless `extra` sets them. */
export function withoutStoreEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  for (const name of ['SESSION_JOURNAL_DIR', 'SESSION_JOURNAL_REDIS', 'SESSION_JOURNAL_PREFIX']) if (!(name in extra)) delete env[name];
  return env;
}

/** Runs the real binary with `args`; never rejects. */
export function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; execArgv?: string[]; timeoutMs?: number; wrapper?: string[] } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    // A wrapper (e.g. faketime -f +3650d) runs node as its command.
    const [command, ...prefix] = [...(options.wrapper ?? []), process.execPath];
    const child = spawn(command!, [...prefix, ...(options.execArgv ?? []), CLI_MAIN, ...args], {
      env: options.env ?? withoutStoreEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Writes a few sessions with distinct access times through a store with the
 * given clock, and flushes; returns their ids, oldest access first.
 */
export async function writeAgedSessions(store: SessionStore, clock: FakeClock, ids: string[], stepMs: number): Promise<string[]> {
  for (const id of ids) {
    store.ensureSession(id);
    store.addTurn(id, turnOf(`hello ${id}`, clock));
    clock.advance(stepMs);
  }
  await store.flush();
  return ids;
}

export { FakeClock, serializeSessions, type PlainSession };

/**
 * A seeded random history of session operations on `store`, each at its own
 * clock reading (the clock advances 1 ms to a minute before every op, with an
 * occasional jump of hours), so access times never tie. Only ensureSession
 * names sessions: the same seed gives the same state.
 */
export async function randomHistory(store: SessionStore, clock: FakeClock, rnd: () => number, ops: number, prefix = 's', poolSize = 24): Promise<void> {
  const pick = () => `${prefix}${String(Math.floor(rnd() * poolSize)).padStart(2, '0')}`;
  for (let i = 0; i < ops; i++) {
    clock.advance(1 + Math.floor(rnd() * 60_000) + (rnd() < 0.03 ? Math.floor(rnd() * 6) * HOUR : 0));
    const id = pick();
    const r = rnd();
    if (r < 0.2) store.ensureSession(id);
    else if (r < 0.5) store.addTurn(id, turnOf(`${id}#${i} ${'x'.repeat(Math.floor(rnd() * 40))}`, clock));
    else if (r < 0.6) store.setCodexConversationId(id, `conv-${i}`);
    else if (r < 0.7) {
      const k = rnd();
      const data =
        k < 0.25
          ? { codexConversationId: `upd-${i}` }
          : k < 0.5
            ? ({ note: `n${i}`, count: i } as Record<string, unknown>)
            : k < 0.75
              ? { createdAt: new Date(clock.now - Math.floor(rnd() * HOUR)) }
              : { turns: [{ prompt: `replaced ${i}`, response: 'r', timestamp: new Date(clock.now) }] };
      store.updateSession(id, data);
    } else if (r < 0.75) store.resetSession(id);
    else if (r < 0.8) store.deleteSession(id);
    else if (r < 0.95) store.getSession(id);
    else store.listSessions();
    if (rnd() < 0.05) await store.flush();
  }
  await store.flush();
}

/** What retention removes from `sessions` at `now` (TTL from last access, then LRU), as the docs define it. */
export function expectedRetention(sessions: readonly PlainSession[], now: number, ttlMs: number, maxSessions: number): { expired: string[]; evicted: string[] } {
  const last = (s: PlainSession) => Date.parse(s.lastAccessedAt as string);
  const expired = sessions.filter((s) => now - last(s) > ttlMs).map((s) => s.id);
  const live = sessions.filter((s) => now - last(s) <= ttlMs).sort((a, b) => last(b) - last(a));
  const evicted = live.slice(maxSessions).map((s) => s.id);
  return { expired: expired.sort(), evicted: evicted.sort() };
}
