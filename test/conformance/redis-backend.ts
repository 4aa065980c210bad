/**
 * The Redis backend of the conformance suite: the same suites, on a store
 * kept on the test Redis server (test/helpers/redis-server.ts,
 * `sharedRedisUrl()`), each test on a fresh random prefix. Its damage is
 * written with a raw client, at the keys docs/FORMAT.md ("The Redis
 * backend") names: a bad stream entry after the last record, a changed
 * snapshot chunk.
 *
 * Not in `backends` yet (backends.ts): it is switched on when the Redis
 * storage lands. Written only against what the stores promise on Redis:
 * async open(), catchUp(), and the key layout of the protocol.
 */
import { randomUUID } from 'node:crypto';
import type { ExecutionContext } from 'ava';
import {
  JournalEventStore,
  KeyValueStore,
  SessionStore,
  compactEventStore,
  compactKeyValueStore,
  compactSessions,
  type CompactEventStoreOptions,
  type CompactKeyValueStoreOptions,
  type CompactSessionsOptions,
  type JournalEventStoreOptions,
} from '../../src/index.js';
import { sharedRedisUrl } from '../helpers/redis-server.js';
import { flipCase, letterToFlip, snapshotEntryLines, storedLine, type Backend, type Location } from './backends.js';

type Where = { url: string; prefix: string };

/** Commands of the raw client, as sent (node-redis sendCommand), so the suite depends on no typed wrapper. */
interface Raw {
  send(args: string[]): Promise<unknown>;
}

const redisOf = (at: Location): Where => {
  if (!('redis' in at)) throw new TypeError('not a Redis location');
  return at.redis;
};

const key = (w: Where, name: string) => `{${w.prefix}}:${name}`;

/** Runs `fn` with a connection of its own, closed afterwards (no client outlives a test and holds the worker open). */
async function withRaw<T>(w: Where, fn: (raw: Raw) => Promise<T>): Promise<T> {
  const { createClient } = await import('redis');
  const client = createClient({ url: w.url });
  client.on('error', () => undefined); // a failed command rejects; the event would otherwise crash the worker
  await client.connect();
  try {
    return await fn({ send: (args) => client.sendCommand(args) as Promise<unknown> });
  } finally {
    await client.close();
  }
}

/** Every key of the store (SCAN, so a busy server is not blocked). */
async function keysOf(raw: Raw, w: Where): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = (await raw.send(['SCAN', cursor, 'MATCH', `{${w.prefix}}:*`, 'COUNT', '1000'])) as [string, string[]];
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}

/** The stream's entries in id order, as [id, line]; each entry's one field is `r`. */
async function streamEntries(raw: Raw, w: Where): Promise<Array<[string, string]>> {
  const entries = (await raw.send(['XRANGE', key(w, 'log'), '-', '+'])) as Array<[string, string[]]>;
  return entries.map(([id, fields]) => [id, fields[fields.indexOf('r') + 1] ?? '']);
}

/**
 * Appends `text` as an entry after the last one that takes no seq from the
 * writers: ids are `<seq>-0`, so `<last seq>-1` sorts between the last record
 * and the next commit's first (an id of `<seq+1>-0` would make that commit's
 * XADD fail). One script, so a writer committing meanwhile cannot slip in
 * between reading the last id and adding after it.
 */
const APPEND_AFTER_LAST = `
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local id = '0-1'
if #last > 0 then
  local ms, sub = string.match(last[1][1], '^(%d+)-(%d+)$')
  id = ms .. '-' .. (tonumber(sub) + 1)
end
return redis.call('XADD', KEYS[1], id, 'r', ARGV[1])`;
async function appendAfterLast(raw: Raw, w: Where, text: string): Promise<void> {
  await raw.send(['EVAL', APPEND_AFTER_LAST, '1', key(w, 'log'), text]);
}

/** A hash as the client hands it over: flat pairs (RESP2), a Map or an object (RESP3). */
function fieldsOf(reply: unknown): Record<string, string> {
  if (reply instanceof Map) return Object.fromEntries([...reply].map(([k, v]) => [String(k), String(v)]));
  if (!Array.isArray(reply)) return Object.fromEntries(Object.entries((reply ?? {}) as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = String(reply[i + 1]);
  return out;
}

/** The newest snapshot: its manifest and its chunks' keys (undefined when there is none). */
async function snapshotChunks(raw: Raw, w: Where): Promise<{ keys: string[] } | undefined> {
  const manifest = fieldsOf(await raw.send(['HGETALL', key(w, 'snap')]));
  if (manifest.gen === undefined || manifest.chunks === undefined) return undefined;
  return { keys: Array.from({ length: Number(manifest.chunks) }, (_, i) => key(w, `snap:${manifest.gen}:${i}`)) };
}

const sharedUrl = async (): Promise<string> => sharedRedisUrl();

export function redisBackend(): Backend {
  return {
    name: 'redis',
    fresh: async (t: ExecutionContext) => {
      const w: Where = { url: await sharedUrl(), prefix: `conf-${randomUUID()}` };
      t.teardown(() =>
        withRaw(w, async (raw) => {
          const keys = await keysOf(raw, w);
          if (keys.length > 0) await raw.send(['DEL', ...keys]);
        }),
      );
      return { redis: w };
    },
    openSessions: (at, options = {}) => SessionStore.open({ ...options, redis: redisOf(at) }),
    openKv: (at, options = {}) => KeyValueStore.open({ ...options, redis: redisOf(at) }),
    openEvents: (at, options = {}) => JournalEventStore.open({ ...options, redis: redisOf(at) }),
    // The compactors take the store's place as the stores do: `redis` instead of `dir`.
    compact: (kind, at, options) => {
      const place = { redis: redisOf(at) };
      if (kind === 'sessions') return compactSessions({ ...options, ...place });
      if (kind === 'kv') return compactKeyValueStore({ ...options, ...place });
      return compactEventStore({ ...options, ...place });
    },
    lines: (at) => withRaw(redisOf(at), async (raw) => (await streamEntries(raw, redisOf(at))).map(([, line]) => storedLine(line))),
    snapshotEntries: (at) =>
      withRaw(redisOf(at), async (raw) => {
        const snap = await snapshotChunks(raw, redisOf(at));
        if (!snap) return undefined;
        const chunks = await Promise.all(snap.keys.map((k) => raw.send(['GET', k]) as Promise<string | null>));
        return snapshotEntryLines(chunks.map((c) => c ?? '').join(''));
      }),
    untouched: (at) => withRaw(redisOf(at), async (raw) => (await keysOf(raw, redisOf(at))).length === 0),
    damage: {
      garbageAfterLast: (at, text) =>
        withRaw(redisOf(at), async (raw) => {
          const w = redisOf(at);
          await appendAfterLast(raw, w, text);
          return w.prefix;
        }),
      // A stream entry is written whole or not at all: what a dead writer can leave is a bad entry, the same as garbage.
      tornAfterLast: async (at, text) => {
        const w = redisOf(at);
        await withRaw(w, (raw) => appendAfterLast(raw, w, text));
      },
      sealed: (text) => text,
      corruptSnapshot: (at) =>
        withRaw(redisOf(at), async (raw) => {
          const snap = await snapshotChunks(raw, redisOf(at));
          if (!snap) throw new Error('no snapshot to damage');
          const first = snap.keys[0]!;
          const text = ((await raw.send(['GET', first])) as string | null) ?? '';
          await raw.send(['SET', first, flipCase(text, letterToFlip(text))]);
        }),
    },
    // Reads answer from the process's view: catchUp() brings in what other hosts acknowledged.
    readsCatchUp: false,
    // The stream is trimmed below each snapshot and nothing is archived: a bad snapshot cannot be read around.
    snapshotFallback: false,
    // Writers take no lock on Redis: a dead one leaves nothing held.
    afterKill: async () => false,
    child: (at) => ({ redis: redisOf(at) }),
  };
}
