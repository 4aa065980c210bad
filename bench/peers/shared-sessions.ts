/**
 * The workload of bench/redis-backends.ts: clients that change sessions
 * other clients (and other processes) change too, one acknowledged turn at
 * a time, on one of three backends:
 *
 * - `file`: SessionStore on a store directory;
 * - `redis`: SessionStore on Redis, catching up before each change as a
 *   request handler does;
 * - `redis-writes`: the same without the catch-up (a host that only adds
 *   turns to sessions it already knows), to show what the catch-up costs;
 * - `naive`: the whole session JSON read and SET on every change, as
 *   connect-redis does (naive-redis.ts).
 *
 * Each turn's prompt starts with a marker `[proc.client.k]`, so that after
 * the run every acknowledged turn can be looked for by name: a turn that is
 * missing was lost, one found twice was duplicated.
 */
import type { ConversationTurn, SessionStore as SessionStoreType } from '../../src/index.js';
import { Samples, cpuMsSince, now } from '../common.js';
import { NaiveRedisSessions } from './naive-redis.js';

/** The package entry a user's process loads (the bundle), as bench/peers/session-journal.ts does. */
const PACKAGE_ENTRY = new URL('../../dist/index.js', import.meta.url).href;
const { SessionStore } = (await import(PACKAGE_ENTRY)) as typeof import('../../src/index.js');

export const BACKENDS = ['file', 'redis', 'redis-writes', 'naive'] as const;
export type BackendKind = (typeof BACKENDS)[number];

export const isBackendKind = (s: string | undefined): s is BackendKind => (BACKENDS as readonly string[]).includes(s ?? '');

/** Where a backend keeps its sessions: a store directory (`file`), or a Redis server and key prefix. */
export type Place = { dir: string } | { redis: { url: string; prefix: string } };

/** One client's change, acknowledged (durable, as the backend makes it) when the promise resolves. */
export interface Backend {
  addTurn(id: string, turn: ConversationTurn): Promise<void>;
  close(): Promise<void>;
}

/** Large enough that LRU never hides a session of the run. */
const MAX_SESSIONS = 1_000_000;

async function openStore(place: Place): Promise<SessionStoreType> {
  const common = { fsync: true, maxSessions: MAX_SESSIONS, autoCompact: false as const };
  return 'dir' in place ? SessionStore.openSync({ dir: place.dir, ...common }) : SessionStore.open({ redis: place.redis, ...common });
}

function redisOf(place: Place): { url: string; prefix: string } {
  if (!('redis' in place)) throw new Error('the naive backend needs a Redis place');
  return place.redis;
}

export async function openBackend(kind: BackendKind, place: Place): Promise<Backend> {
  if (kind === 'naive') {
    const { url, prefix } = redisOf(place);
    const naive = await NaiveRedisSessions.open(url, prefix);
    return { addTurn: (id, turn) => naive.addTurn(id, turn), close: () => naive.close() };
  }
  const store = await openStore(place);
  const catchUp = kind !== 'redis-writes';
  return {
    // What a request handler does on either backend (docs/SCALING.md): see the other hosts' writes, change, await durable.
    addTurn: async (id, turn) => {
      if (catchUp) await store.catchUp();
      store.addTurn(id, turn);
      await store.flush();
    },
    close: () => store.close(),
  };
}

/** Creates the run's sessions, empty, before any client starts (not timed). */
export async function createSessions(kind: BackendKind, place: Place, ids: readonly string[]): Promise<void> {
  if (kind === 'naive') {
    const { url, prefix } = redisOf(place);
    const naive = await NaiveRedisSessions.open(url, prefix);
    for (const id of ids) await naive.create(id, new Date());
    await naive.close();
    return;
  }
  const store = await openStore(place);
  for (const id of ids) store.ensureSession(id);
  await store.flush();
  await store.close();
}

/** What the backend holds after the run: each session's prompts, and the sessions' JSON size. */
export async function readBack(kind: BackendKind, place: Place, ids: readonly string[]): Promise<{ prompts: Map<string, string[]>; jsonBytes: number }> {
  const prompts = new Map<string, string[]>();
  let jsonBytes = 0;
  if (kind === 'naive') {
    const { url, prefix } = redisOf(place);
    const naive = await NaiveRedisSessions.open(url, prefix);
    for (const id of ids) {
      const s = await naive.get(id);
      prompts.set(id, s?.turns.map((t) => t.prompt) ?? []);
      jsonBytes += s === undefined ? 0 : Buffer.byteLength(JSON.stringify(s));
    }
    await naive.close();
    return { prompts, jsonBytes };
  }
  const store = await openStore(place);
  for (const id of ids) {
    const s = store.getSession(id);
    prompts.set(id, s?.turns.map((t) => t.prompt) ?? []);
    jsonBytes += s === undefined ? 0 : Buffer.byteLength(JSON.stringify(s));
  }
  await store.close();
  return { prompts, jsonBytes };
}

const marker = (proc: number, client: number, k: number): string => `[${proc}.${client}.${k}]`;
const MARKER = /^\[(\d+\.\d+\.\d+)\] /;

export interface LoopReport {
  proc: number;
  ops: number;
  ms: number;
  cpuMs: number;
  /** Turns acknowledged by each client (client c's are k = 0 … acked[c] - 1). */
  acked: number[];
}

/**
 * `clients` async clients, client c looping on session `sessionOf(c)`:
 * one marked turn, awaited until acknowledged, until `durationMs` is over.
 */
export async function clientLoop(backend: Backend, proc: number, clients: number, sessionOf: (c: number) => string, turns: readonly ConversationTurn[], durationMs: number, lat?: Samples): Promise<LoopReport> {
  const acked = Array.from({ length: clients }, () => 0);
  let ops = 0;
  const cpu0 = process.cpuUsage();
  const start = now();
  const end = start + durationMs;
  await Promise.all(
    acked.map(async (_, c) => {
      const id = sessionOf(c);
      while (now() < end) {
        const base = turns[(c * 7 + acked[c]!) % turns.length]!;
        const t0 = lat ? now() : 0;
        await backend.addTurn(id, { ...base, prompt: `${marker(proc, c, acked[c]!)} ${base.prompt}` });
        lat?.push(now() - t0);
        acked[c]!++;
        ops++;
      }
    }),
  );
  return { proc, ops, ms: now() - start, cpuMs: cpuMsSince(cpu0), acked };
}

export interface Losses {
  acked: number;
  /** Acknowledged turns not found in any session. */
  lost: number;
  /** Turns found more than once (each extra copy counts). */
  duplicated: number;
}

export function countLosses(reports: readonly LoopReport[], prompts: ReadonlyMap<string, readonly string[]>): Losses {
  const found = new Map<string, number>();
  for (const list of prompts.values()) {
    for (const p of list) {
      const m = MARKER.exec(p);
      if (m) found.set(m[1]!, (found.get(m[1]!) ?? 0) + 1);
    }
  }
  let acked = 0;
  let lost = 0;
  for (const r of reports) {
    r.acked.forEach((n, c) => {
      acked += n;
      for (let k = 0; k < n; k++) if (!found.has(`${r.proc}.${c}.${k}`)) lost++;
    });
  }
  let duplicated = 0;
  for (const n of found.values()) duplicated += n - 1;
  return { acked, lost, duplicated };
}
