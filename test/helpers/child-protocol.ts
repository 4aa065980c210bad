/**
 * The parent <-> child protocol of the multi-process tests, and the parent's
 * handle on a forked child (test/helpers/child-store.ts, compiled to
 * build/test/helpers/child-store.js). Messages go over the fork IPC channel.
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { SessionData } from '../../src/index.js';
import type { RedisLocation } from '../../src/storage/redis/redis-location.js';
import type { ChildClock } from './child-clock.js';
import { helperScript } from './temp-store.js';

// ---- serialized sessions (what views are compared as) ---------------------

export interface PlainTurn {
  prompt: string;
  response: string;
  timestamp: string;
}

/** A session as plain JSON: dates as ISO strings, keys sorted, undefined values dropped. */
export type PlainSession = Record<string, unknown> & { id: string; turns: PlainTurn[] };

function plain(value: unknown): unknown {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = plain(v); // codexConversationId: undefined == missing
    }
    return out;
  }
  return value;
}

/** Sessions as comparable JSON, ordered by id (ties in lastAccessedAt may list in any order). */
export function serializeSessions(sessions: readonly SessionData[]): PlainSession[] {
  return sessions.map((s) => plain(s) as PlainSession).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

// ---- commands (parent -> child) -------------------------------------------

export interface OpenCommand {
  op: 'open';
  /** The store directory; or, instead, `redis` (then the child opens with the async open()). */
  dir?: string;
  redis?: RedisLocation;
  fsync: boolean;
  lockTimeoutMs?: number;
  lockStaleMs?: number;
  /** The store's clock (and the turns' timestamps): a time line from a documented "now" (child-clock.ts), never the wall clock. */
  /** 'system': the process's own clock, for the tests that skew it for real (libfaketime). */
  clock: ChildClock | 'system';
  /** When set, the store's clock reads this fixed instant instead of `clock`'s time line (epoch ms; moved by the `clock` op); turn timestamps too. */
  clockMs?: number;
  ttlMs?: number;
  maxSessions?: number;
}

/**
 * A writer workload: ensureSession every id in `sessions`, then `count`
 * addTurn calls cycling through them with prompt `${writer}:${i}`; after every
 * `flushEvery` mutations (and the last) await flush() and report `acked`.
 */
export interface WriteCommand {
  op: 'write';
  writer: string;
  sessions: string[];
  count: number;
  flushEvery: number;
  /** Wait this long (ms) after each acknowledgement, to spread the run out. */
  pauseMs?: number;
  /** Stop early, after the turn being written, when a StopWritingCommand arrives: `done` then says how many were written. */
  untilStopped?: boolean;
  /**
   * A flush that rejects is reported (`flush-failed`, with its code) and
   * called again, until it resolves, instead of failing the child: the
   * writer goes on through an outage with the same store (nothing reopened).
   */
  retryFailedFlush?: boolean;
}

/** Ends a running `untilStopped` write; handled as it arrives, not after the write. */
export interface StopWritingCommand {
  op: 'stop-writing';
}

/** One mutation (or a scheduling point) of a scripted sequence. */
export type Op =
  | { k: 'ensure'; id: string }
  | { k: 'turn'; id: string; prompt: string }
  | { k: 'conv'; id: string; cid: string }
  | { k: 'update'; id: string; data: Record<string, unknown> }
  | { k: 'reset'; id: string }
  | { k: 'delete'; id: string }
  | { k: 'get'; id: string }
  | { k: 'list' }
  | { k: 'yield' }
  /** Busy-waits `ms` without yielding (a slow synchronous caller): peers commit while our entries stay queued. */
  | { k: 'stall'; ms: number }
  | { k: 'flush' }
  /** Sets the child's store clock (opened with `clockMs`) to this instant. */
  | { k: 'clock'; ms: number };

/** Applies `ops` in order, then flushes and answers `flushed` (or, with `flush: false`, answers `applied` at once). */
export interface OpsCommand {
  op: 'ops';
  ops: Op[];
  flush?: boolean;
  /** A final flush that rejects answers `flush-failed` (with its code) instead of failing the child. */
  tolerateFlushFailure?: boolean;
  /** Do not catch up first (on Redis): the commit is then the first command sent. */
  noCatchUp?: boolean;
}

/** Lists (getSession for `get`) after `await store.catchUp()`, so the answer includes everything acknowledged before the command. */
export interface ListCommand {
  op: 'list';
}
export interface GetCommand {
  op: 'get';
  id: string;
}
/** Simulates a writer that died mid-write: under the store lock, append half a record with no newline. */
export interface TearCommand {
  op: 'tear';
  text: string;
}
export interface CloseCommand {
  op: 'close';
}
/** `await store.catchUp()`: answers `caught-up`, with the error's code when it rejected. */
export interface CatchUpCommand {
  op: 'catch-up';
}

export type Command = OpenCommand | WriteCommand | StopWritingCommand | OpsCommand | ListCommand | GetCommand | TearCommand | CloseCommand | CatchUpCommand;

// ---- replies (child -> parent) --------------------------------------------

export type Reply =
  | { type: 'opened'; pid: number }
  | { type: 'acked'; upTo: number }
  | { type: 'done'; count: number }
  | { type: 'flushed'; applied: number }
  | { type: 'applied'; applied: number }
  | { type: 'list'; sessions: PlainSession[] }
  | { type: 'session'; session: PlainSession | null }
  | { type: 'torn'; file: string }
  | { type: 'closed' }
  | { type: 'flush-failed'; code: string; message: string }
  | { type: 'caught-up'; code?: string; message?: string }
  | { type: 'warning'; code: string; message: string }
  | { type: 'error'; message: string; stack?: string };

/** Update data travels as JSON: dates as ISO strings; the child revives them. */
export function reviveUpdate(data: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...data };
  for (const key of ['createdAt', 'lastAccessedAt'] as const) if (typeof out[key] === 'string') out[key] = new Date(out[key] as string);
  if (Array.isArray(out.turns)) {
    out.turns = (out.turns as PlainTurn[]).map((t) => ({ prompt: t.prompt, response: t.response, timestamp: new Date(t.timestamp) }));
  }
  return out;
}

// ---- the parent's handle --------------------------------------------------

type ReplyOf<T extends Reply['type']> = Extract<Reply, { type: T }>;

/** A forked child-store.js with an inbox per reply type. */
export class StoreChild {
  readonly proc: ChildProcess;
  /** Highest `i` the child reported durable (-1: none). */
  acked = -1;
  readonly warnings: { code: string; message: string }[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly inbox = new Map<string, Reply[]>();
  private readonly waiting = new Map<string, { resolve: (r: Reply) => void; reject: (e: Error) => void }[]>();
  private error: string | undefined;
  private stderr = '';

  /**
   * `wrapper` runs node as its command (e.g. `['faketime', '-f', '+3650d']`: a child on a real clock 10 years ahead);
   * `uid`/`gid` run it as another user (the tests run as root, which no permission stops).
   */
  constructor(
    readonly name: string,
    options: { wrapper?: string[]; uid?: number; gid?: number } = {},
  ) {
    const [execPath, ...prefix] = [...(options.wrapper ?? []), process.execPath];
    const user = { ...(options.uid !== undefined && { uid: options.uid }), ...(options.gid !== undefined && { gid: options.gid }) };
    this.proc = fork(helperScript('child-store.js'), [name], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'json', execPath, execArgv: [...prefix, ...(options.wrapper ? [] : process.execArgv)], ...user });
    this.proc.stderr!.setEncoding('utf8');
    this.proc.stderr!.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-4000);
    });
    this.proc.on('message', (m: Reply) => this.receive(m));
    this.exited = new Promise((resolve) => {
      // 'close' (not 'exit'): by then every IPC message the child sent has been delivered.
      this.proc.on('close', (code, signal) => {
        this.exitInfo = { code, signal };
        const why = new Error(`child ${this.name} exited (code ${code}, signal ${signal})${this.error ? `: ${this.error}` : ''}${this.stderr ? `\nstderr: ${this.stderr}` : ''}`);
        for (const list of this.waiting.values()) for (const w of list) w.reject(why);
        this.waiting.clear();
        resolve({ code, signal });
      });
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get alive(): boolean {
    return this.exitInfo === undefined;
  }

  send(command: Command): void {
    this.proc.send(command);
  }

  /** The next reply of `type` (already received or still to come). */
  next<T extends Reply['type']>(type: T, timeoutMs = 30_000): Promise<ReplyOf<T>> {
    const queued = this.inbox.get(type);
    if (queued && queued.length > 0) return Promise.resolve(queued.shift() as ReplyOf<T>);
    if (this.exitInfo) return Promise.reject(new Error(`child ${this.name} already exited (code ${this.exitInfo.code}, signal ${this.exitInfo.signal})${this.error ? `: ${this.error}` : ''}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const list = this.waiting.get(type) ?? [];
        this.waiting.set(type, list.filter((w) => w !== waiter));
        reject(new Error(`child ${this.name}: no '${type}' within ${timeoutMs} ms${this.stderr ? `\nstderr: ${this.stderr}` : ''}`));
      }, timeoutMs);
      const waiter = {
        resolve: (r: Reply) => {
          clearTimeout(timer);
          resolve(r as ReplyOf<T>);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const list = this.waiting.get(type) ?? [];
      list.push(waiter);
      this.waiting.set(type, list);
    });
  }

  /** Sends a command and waits for its reply. */
  async request<T extends Reply['type']>(command: Command, type: T, timeoutMs?: number): Promise<ReplyOf<T>> {
    this.send(command);
    return this.next(type, timeoutMs);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.alive) this.proc.kill(signal);
  }

  /** Asks for a clean close and waits for the exit. */
  async close(): Promise<void> {
    if (!this.alive) return;
    await this.request({ op: 'close' }, 'closed');
    await this.exited;
  }

  private receive(m: Reply): void {
    if (m.type === 'acked') this.acked = Math.max(this.acked, m.upTo);
    if (m.type === 'warning') this.warnings.push({ code: m.code, message: m.message });
    if (m.type === 'error') this.error = `${m.message}\n${m.stack ?? ''}`;
    const list = this.waiting.get(m.type);
    if (list && list.length > 0) {
      list.shift()!.resolve(m);
      return;
    }
    const queued = this.inbox.get(m.type) ?? [];
    queued.push(m);
    this.inbox.set(m.type, queued);
  }
}

/** Forks `n` children named `${prefix}${i}` and opens the store in each; resolves once all are ready. */
export async function openChildren(n: number, prefix: string, open: Omit<OpenCommand, 'op'>): Promise<StoreChild[]> {
  const children = Array.from({ length: n }, (_, i) => new StoreChild(`${prefix}${i}`));
  try {
    await Promise.all(children.map((c) => c.request({ op: 'open', ...open }, 'opened')));
  } catch (err) {
    for (const c of children) c.kill();
    throw err;
  }
  return children;
}

/** Kills whatever is still running (test teardown). */
export function killAll(children: readonly StoreChild[]): void {
  for (const c of children) c.kill();
}

// ---- reading the raw journal ----------------------------------------------

export interface RawLine {
  file: string;
  text: string;
  record?: { seq: number; t: string; w: string; p: Record<string, unknown> };
}

/** Every line of every segment, in segment order; unparsable lines have no record. */
export function readJournalLines(dir: string): RawLine[] {
  const files = fs
    .readdirSync(dir)
    .filter((f) => /^journal-\d{8,}\.ndjson$/.test(f))
    .sort((a, b) => Number(a.slice(8, -7)) - Number(b.slice(8, -7)));
  const out: RawLine[] = [];
  for (const file of files) {
    const text = fs.readFileSync(path.join(dir, file), 'utf8');
    for (const line of text.split('\n')) {
      if (line === '') continue;
      let record: RawLine['record'];
      try {
        record = JSON.parse(line) as RawLine['record'];
      } catch {
        record = undefined;
      }
      out.push(record ? { file, text: line, record } : { file, text: line });
    }
  }
  return out;
}

/** Seq numbers of the parsable records, in file order. */
export function journalSeqs(dir: string): number[] {
  return readJournalLines(dir).flatMap((l) => (l.record ? [l.record.seq] : []));
}

/** Size in bytes of all segments. */
export function journalBytes(dir: string): number {
  return fs
    .readdirSync(dir)
    .filter((f) => /^journal-\d{8,}\.ndjson$/.test(f))
    .reduce((sum, f) => sum + fs.statSync(path.join(dir, f)).size, 0);
}

// ---- seeded randomness ----------------------------------------------------

/** mulberry32: a small seeded PRNG, so a failing round can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
