/**
 * Parent-side helpers of the compaction crash tests: handles on the
 * crash-writer and crash-compactor children (JSON lines over stdio), stale
 * lock removal for a killed compactor, and the replay checks.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { SessionStore, type JournalWarning } from '../../src/index.js';
import { serializeSessions, type PlainSession } from './child-protocol.js';
import type { ChildClock } from './child-clock.js';
import type { CrashCompactorConfig } from './crash-compactor.js';
import { sessionFor, type CrashWriterCommand, type CrashWriterRun } from './crash-writer.js';
import { helperScript } from './temp-store.js';
import { TEST_T0 } from './fixture-now.js';

export type Message = Record<string, unknown> & { type: string };

/** A child speaking JSON lines on stdin/stdout. */
export class LineChild {
  readonly proc: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  stderr = '';
  readonly messages: Message[] = [];
  private readonly inbox = new Map<string, Message[]>();
  private readonly waiting = new Map<string, ((m: Message | Error) => void)[]>();
  private partial = '';

  constructor(
    readonly name: string,
    script: string,
    args: string[] = [],
    /** A command that runs node (e.g. `['faketime', '-f', '+2d']`: a child whose real clock is 2 days ahead). */
    wrapper: string[] = [],
  ) {
    const [command, ...prefix] = [...wrapper, process.execPath];
    this.proc = spawn(command!, [...prefix, helperScript(script), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (this.partial + chunk).split('\n');
      this.partial = lines.pop()!;
      for (const line of lines) if (line.trim() !== '') this.receive(JSON.parse(line) as Message);
    });
    this.proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr = (this.stderr + chunk).slice(-4000)));
    this.proc.stdin!.on('error', () => undefined); // a killed child's closed pipe
    this.exited = new Promise((resolve) => {
      this.proc.on('close', (code, signal) => {
        this.exitInfo = { code, signal };
        const why = new Error(`${this.name} exited (code ${code}, signal ${signal})${this.lastError()}${this.stderr ? `\nstderr: ${this.stderr}` : ''}`);
        for (const list of this.waiting.values()) for (const w of list) w(why);
        this.waiting.clear();
        resolve({ code, signal });
      });
    });
  }

  get alive(): boolean {
    return this.exitInfo === undefined;
  }

  send(message: unknown): void {
    if (this.alive) this.proc.stdin!.write(JSON.stringify(message) + '\n');
  }

  next(type: string, timeoutMs = 30_000): Promise<Message> {
    const queued = this.inbox.get(type);
    if (queued && queued.length > 0) return Promise.resolve(queued.shift()!);
    if (this.exitInfo) return Promise.reject(new Error(`${this.name} already exited (code ${this.exitInfo.code}, signal ${this.exitInfo.signal})${this.lastError()}\nstderr: ${this.stderr}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.set(type, (this.waiting.get(type) ?? []).filter((w) => w !== waiter));
        reject(new Error(`${this.name}: no '${type}' within ${timeoutMs} ms${this.stderr ? `\nstderr: ${this.stderr}` : ''}`));
      }, timeoutMs);
      const waiter = (m: Message | Error) => {
        clearTimeout(timer);
        if (m instanceof Error) reject(m);
        else resolve(m);
      };
      this.waiting.set(type, [...(this.waiting.get(type) ?? []), waiter]);
    });
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.alive) this.proc.kill(signal);
  }

  protected receive(m: Message): void {
    this.messages.push(m);
    const list = this.waiting.get(m.type);
    if (list && list.length > 0) {
      list.shift()!(m);
      return;
    }
    this.inbox.set(m.type, [...(this.inbox.get(m.type) ?? []), m]);
  }

  private lastError(): string {
    const e = this.messages.filter((m) => m.type === 'error').pop();
    return e ? `: ${String(e.message)}\n${String(e.stack ?? '')}` : '';
  }
}

/** A crash-writer.js child. */
export class CrashWriter extends LineChild {
  /** Highest turn index acknowledged durable in the current run (-1: none). */
  acked = -1;
  run: CrashWriterRun | undefined;
  readonly warnings: { code: string; message: string }[] = [];

  constructor(name: string) {
    super(name, 'crash-writer.js');
  }

  command(c: CrashWriterCommand): void {
    this.send(c);
  }

  /** Opens the store on `clock` (a documented "now", see child-clock.ts). */
  async open(dir: string, fsync: boolean, clock: ChildClock, lockTimeoutMs = 30_000): Promise<void> {
    this.command({ op: 'open', dir, fsync, lockTimeoutMs, clock });
    await this.next('opened');
  }

  start(run: Omit<CrashWriterRun, 'op'>): void {
    this.acked = -1;
    this.run = { op: 'run', ...run };
    this.command(this.run);
  }

  async stop(): Promise<number> {
    this.command({ op: 'stop' });
    return Number((await this.next('stopped', 60_000)).count);
  }

  async view(): Promise<PlainSession[]> {
    this.command({ op: 'view' });
    return (await this.next('view')).sessions as PlainSession[];
  }

  async close(): Promise<void> {
    if (!this.alive) return;
    this.command({ op: 'close' });
    await this.exited;
  }

  protected override receive(m: Message): void {
    if (m.type === 'acked') this.acked = Math.max(this.acked, Number(m.upTo));
    if (m.type === 'warning') this.warnings.push({ code: String(m.code), message: String(m.message) });
    super.receive(m);
  }
}

/** A crash-compactor.js child (not started until `go` when config.waitForGo). */
export class CrashCompactor extends LineChild {
  constructor(config: CrashCompactorConfig) {
    super('compactor', 'crash-compactor.js', [JSON.stringify(config)]);
  }

  go(): void {
    this.send({ go: true });
  }

  /** Steps reported before it died or finished. */
  get steps(): string[] {
    return this.messages.filter((m) => m.type === 'step').map((m) => String(m.step));
  }
}

// ---- locks left by a killed compactor ---------------------------------------

/** Removes the compaction lock directory (only call it once its holder is dead). */
export function removeCompactLock(dir: string): boolean {
  const lock = path.join(dir, 'compact.lock');
  const existed = fs.existsSync(lock);
  fs.rmSync(lock, { recursive: true, force: true });
  return existed;
}

function lockIdentity(lock: string): string | undefined {
  try {
    const st = fs.statSync(lock, { bigint: true });
    return `${st.ino}:${st.birthtimeNs}:${st.mtimeNs}`;
  } catch {
    return undefined;
  }
}

/**
 * Removes `journal.lock` if it is the dead compactor's: live writers hold it
 * only for a synchronous section of a few ms, so the same lock directory
 * (inode, birth and modification time) seen unchanged for `quietMs` belongs
 * to nobody alive. Returns true when it removed one.
 */
export async function removeDeadJournalLock(dir: string, quietMs = 300): Promise<boolean> {
  const lock = path.join(dir, 'journal.lock');
  let seen = lockIdentity(lock);
  let since = Date.now();
  for (;;) {
    if (seen === undefined) return false;
    await new Promise((resolve) => setTimeout(resolve, 5));
    const now = lockIdentity(lock);
    if (now !== seen) {
      seen = now;
      since = Date.now();
      continue;
    }
    if (Date.now() - since >= quietMs) {
      fs.rmSync(lock, { recursive: true, force: true });
      return true;
    }
  }
}

// ---- replay and checks ------------------------------------------------------

export interface Replay {
  sessions: PlainSession[];
  warnings: JournalWarning[];
}

/** A fresh process's view: open, list, close (at TEST_T0, ttl/max-sessions large enough to change nothing). */
export function replay(dir: string): Replay {
  const warnings: JournalWarning[] = [];
  const store = SessionStore.openSync({ dir, fsync: false, autoCompact: false, clock: () => TEST_T0, ttlMs: 1000 * 365 * 24 * 3600 * 1000, maxSessions: 1_000_000, onWarning: (w) => warnings.push(w) });
  try {
    return { sessions: serializeSessions(store.listSessions()), warnings };
  } finally {
    store.closeSync();
  }
}

/** Map "writer" -> indexes of its turns in the replay; problems found on the way. */
export function turnsByWriter(sessions: readonly PlainSession[], runs: ReadonlyMap<string, Pick<CrashWriterRun, 'shared' | 'own'>>): { found: Map<string, number[]>; problems: string[] } {
  const found = new Map<string, number[]>();
  const problems: string[] = [];
  for (const session of sessions) {
    const last = new Map<string, number>();
    for (const turn of session.turns) {
      const [writer, index] = turn.prompt.split(':') as [string, string];
      const i = Number(index);
      const run = runs.get(writer);
      if (!run) {
        problems.push(`unknown turn ${turn.prompt} on ${session.id}`);
        continue;
      }
      if (sessionFor(run, i) !== session.id) problems.push(`${turn.prompt} on the wrong session ${session.id}`);
      if (i <= (last.get(writer) ?? -1)) problems.push(`${writer}'s turns on ${session.id} out of order or duplicated at ${turn.prompt}`);
      last.set(writer, i);
      found.set(writer, [...(found.get(writer) ?? []), i]);
    }
  }
  return { found, problems };
}

/**
 * Every acknowledged turn is there, exactly once, and each writer's turns
 * form a prefix 0..n-1 (commits are written in order; turns past the last
 * acknowledgement may or may not be there yet). Returns the problems.
 */
export function checkAcked(sessions: readonly PlainSession[], writers: ReadonlyMap<string, { run: Pick<CrashWriterRun, 'shared' | 'own'>; acked: number; exact?: number }>): string[] {
  const runs = new Map([...writers].map(([w, x]) => [w, x.run]));
  const { found, problems } = turnsByWriter(sessions, runs);
  for (const [writer, { acked, exact }] of writers) {
    const indexes = (found.get(writer) ?? []).sort((a, b) => a - b);
    if (new Set(indexes).size !== indexes.length) problems.push(`${writer}: duplicated turns`);
    const prefix = indexes.every((x, k) => x === k);
    if (!prefix) problems.push(`${writer}: turns are not a prefix 0..n-1 (missing ${firstGap(indexes)})`);
    if (indexes.length < acked + 1) problems.push(`${writer}: acknowledged 0..${acked}, found only ${indexes.length}`);
    if (exact !== undefined && indexes.length !== exact) problems.push(`${writer}: wrote ${exact} turns, found ${indexes.length}`);
  }
  return problems;
}

function firstGap(sorted: number[]): number {
  for (let k = 0; k < sorted.length; k++) if (sorted[k] !== k) return k;
  return sorted.length;
}

const TEMP_RE = /\.tmp-/;

/** Temporary files anywhere in the store (top level and archive/). */
export function tempFiles(dir: string): string[] {
  const out: string[] = [];
  for (const sub of ['', 'archive']) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(path.join(dir, sub));
    } catch {
      continue;
    }
    for (const n of names) if (TEMP_RE.test(n)) out.push(path.join(sub, n));
  }
  return out;
}

/** Problems with the files a completed compaction leaves: one snapshot, one live segment, readable archive, no temp files or locks. */
export function checkCompactedLayout(dir: string): string[] {
  const problems: string[] = [];
  const names = fs.readdirSync(dir);
  const snapshots = names.filter((n) => /^snapshot-\d{8,}\.ndjson$/.test(n));
  const segments = names.filter((n) => /^journal-\d{8,}\.ndjson$/.test(n));
  if (snapshots.length !== 1) problems.push(`snapshots after compaction: ${snapshots.join(', ')}`);
  if (segments.length !== 1) problems.push(`segments after compaction: ${segments.join(', ')}`);
  for (const t of tempFiles(dir)) problems.push(`temporary file left: ${t}`);
  for (const lock of ['journal.lock', 'compact.lock']) if (names.includes(lock)) problems.push(`${lock} left`);
  const archive = path.join(dir, 'archive');
  if (fs.existsSync(archive)) {
    for (const n of fs.readdirSync(archive).filter((x) => x.endsWith('.gz'))) {
      try {
        zlib.gunzipSync(fs.readFileSync(path.join(archive, n)));
      } catch (err) {
        problems.push(`archive/${n} is not valid gzip: ${(err as Error).message}`);
      }
    }
  }
  return problems;
}

/** Copies a store directory (mode 0700 kept). */
export function copyStore(from: string, to: string): void {
  if (fs.existsSync(to)) throw new Error(`copyStore: ${to} exists`);
  fs.cpSync(from, to, { recursive: true });
  fs.chmodSync(to, 0o700);
  if (fs.existsSync(path.join(to, 'archive'))) fs.chmodSync(path.join(to, 'archive'), 0o700);
}

// ---- the seed store of the deterministic tests ------------------------------

export const SEED_SESSIONS = 8;
/** Retention of the compaction under test: LRU keeps 5 of the 8 sessions. */
export const SEED_MAX_SESSIONS = 5;
export const SEED_TTL_MS = 24 * 3600 * 1000;

/**
 * A store with history in every kind of file: snapshot 2 (from a first
 * compaction, segment 1 archived) and segment 2 with more records. The
 * compaction under test then rotates to 3, folds snapshot 2 + segment 2,
 * evicts 3 sessions (LRU) by journaling their deletes, writes snapshot 3
 * and archives segment 2 and snapshot 2. Access times come from `base`.
 */
export async function buildSeedStore(dir: string, base: number, compact: (dir: string) => Promise<unknown>): Promise<void> {
  let now = base;
  const clock = () => now;
  const first = SessionStore.openSync({ dir, clock, autoCompact: false, fsync: false });
  for (let i = 0; i < SEED_SESSIONS; i++) {
    now += 1000;
    const id = `s${i}`;
    first.ensureSession(id);
    first.addTurn(id, { prompt: `${id} first`, response: 'r1', timestamp: new Date(now) });
    first.setCodexConversationId(id, `conv-${i}`);
  }
  first.updateSession('s1', { createdAt: new Date(base - 5000) });
  first.resetSession('s2');
  first.addTurn('s2', { prompt: 's2 after reset', response: 'r', timestamp: new Date(now) });
  await first.close();
  await compact(dir);
  const second = SessionStore.openSync({ dir, clock, autoCompact: false, fsync: false });
  // Touch an old session so LRU order differs from creation order.
  for (const id of ['s0', 's3', 's6', 's7']) {
    now += 1000;
    second.addTurn(id, { prompt: `${id} second`, response: 'r2 ünïcödé', timestamp: new Date(now) });
  }
  await second.close();
}

/** Sessions LRU retention removes from `sessions` (max `max`, by lastAccessedAt desc). */
export function evictedBy(sessions: readonly PlainSession[], max: number): Set<string> {
  const order = [...sessions].sort((a, b) => Date.parse(String(b.lastAccessedAt)) - Date.parse(String(a.lastAccessedAt)));
  return new Set(order.slice(max).map((s) => s.id));
}
