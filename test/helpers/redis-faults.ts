/**
 * What the Redis fault tests (test/redis-faults/) check a store against,
 * read from the server itself: the stream's records (gapless ids, the head
 * at its end), how often each turn was written, and the view a fresh
 * process opens.
 */
import type { ExecutionContext } from 'ava';
import { SessionStore, type JournalWarning } from '../../src/index.js';
import { RedisConnection } from '../../src/storage/redis/connection.js';
import { serializeSessions, type PlainSession } from './child-protocol.js';
import { dropStoreKeys } from './redis-conn.js';

export interface StreamRecord {
  id: string;
  seq: number;
  type: string;
  payload: Record<string, unknown>;
}

export interface StreamRead {
  records: StreamRecord[];
  /** `{P}:head`, as stored. */
  head: string | null;
  /** The snapshot's seq (0 without one): the stream may begin after it. */
  snapshotSeq: number;
  /** What is wrong with the ids: a hole, a first id that does not follow the snapshot, a head that is not the last entry. */
  problems: string[];
}

/** Runs `fn` on a connection of its own to the store, closed afterwards. */
export async function withStore<T>(url: string, prefix: string, fn: (conn: RedisConnection) => Promise<T>): Promise<T> {
  const conn = await RedisConnection.open({ url, prefix, onWarning: () => undefined });
  try {
    return await fn(conn);
  } finally {
    await conn.close();
  }
}

/** Every entry of the stream, decoded, and whether the ids are gapless after the snapshot up to the head. */
export function readStream(url: string, prefix: string): Promise<StreamRead> {
  return withStore(url, prefix, async (conn) => {
    const [head, entries, snapSeq] = (await conn.transaction([
      ['GET', conn.keys.head],
      ['XRANGE', conn.keys.log, '-', '+'],
      ['HGET', conn.keys.snap, 'seq'],
    ])) as [string | null, Array<[string, string[]]>, string | null];
    const records: StreamRecord[] = [];
    const problems: string[] = [];
    const snapshotSeq = Number(snapSeq ?? 0);
    let expected: number | undefined;
    for (const [id, fields] of entries) {
      const line = fields[fields.indexOf('r') + 1] ?? '';
      const record = JSON.parse(line) as { seq: number; t: string; p: Record<string, unknown> };
      const seq = Number(id.split('-')[0]);
      if (id !== `${seq}-0` || record.seq !== seq) problems.push(`entry ${id} holds seq ${record.seq}`);
      if (expected === undefined && seq > snapshotSeq + 1) problems.push(`the stream begins at ${seq}, after the snapshot's seq ${snapshotSeq} + 1`);
      if (expected !== undefined && seq !== expected) problems.push(`seq ${seq} where ${expected} belongs`);
      expected = seq + 1;
      records.push({ id, seq, type: record.t, payload: record.p });
    }
    const last = records.length > 0 ? records[records.length - 1]!.seq : snapshotSeq;
    if ((head ?? '').split(' ')[0] !== String(last)) problems.push(`the head is ${JSON.stringify(head)}, the last entry ${last}`);
    return { records, head, snapshotSeq, problems };
  });
}

/** How often each turn's prompt was written in `records`. */
export function turnCounts(records: readonly StreamRecord[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of records) {
    if (r.type !== 'session.turn') continue;
    const prompt = String((r.payload.turn as { prompt?: unknown } | undefined)?.prompt);
    counts.set(prompt, (counts.get(prompt) ?? 0) + 1);
  }
  return counts;
}

/** Prompts of the view's turns, each as often as it appears. */
export function viewTurnCounts(sessions: readonly PlainSession[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const s of sessions) for (const turn of s.turns) counts.set(turn.prompt, (counts.get(turn.prompt) ?? 0) + 1);
  return counts;
}

/** Turns a writer of child-store.ts wrote: `${writer}:0` .. `${writer}:${count - 1}`. */
export function promptsOf(writer: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${writer}:${i}`);
}

/** What differs from "each of `prompts` exactly once": missing ones and ones written more than once. */
export function exactlyOnce(counts: ReadonlyMap<string, number>, prompts: readonly string[]): string[] {
  const problems: string[] = [];
  for (const p of prompts) {
    const n = counts.get(p) ?? 0;
    if (n !== 1) problems.push(`${p}: ${n} times`);
  }
  return problems;
}

export interface FreshView {
  sessions: PlainSession[];
  warnings: JournalWarning[];
}

/** The view of a process that opens the store now (retention as the children's defaults unless given). */
export async function freshView(url: string, prefix: string, options: { clock: () => number; ttlMs?: number; maxSessions?: number }): Promise<FreshView> {
  const warnings: JournalWarning[] = [];
  const store = await SessionStore.open({ redis: { url, prefix }, clock: options.clock, ttlMs: options.ttlMs, maxSessions: options.maxSessions, onWarning: (w) => warnings.push(w) });
  try {
    return { sessions: serializeSessions(store.listSessions()), warnings };
  } finally {
    await store.close();
  }
}

/** Deletes the store's keys when the test ends (a shared server outlives it). */
export function dropStoreAtEnd(t: ExecutionContext, url: () => string, prefix: string): void {
  t.teardown(() => withStore(url(), prefix, (conn) => dropStoreKeys(conn)).catch(() => undefined));
}
