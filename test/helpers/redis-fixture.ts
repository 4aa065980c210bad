/**
 * A scripted history on Redis for the CLI tests: commits written exactly
 * as a store writes them (RedisBatchEncoder, then the append script), but
 * with fixed writers, tags and times, so that `replay`, `verify`, `stats` and
 * `export` of it print the same bytes on every run (goldens under
 * test/golden/redis/). The store's key names carry a random prefix, which
 * the tests replace by P before comparing.
 *
 * The history (writers 4201@alpha and 4202@beta, times from 2026-03-09):
 * phase 1, seq 1-6, then a compaction (snapshot at seq 6, its records
 * trimmed), then phase 2, seq 7-14 (a record spread over three lines among
 * them).
 */
import type { ExecutionContext } from 'ava';
import { compactSessions } from '../../src/index.js';
import { canonicalPayload } from '../../src/engine/record-codec.js';
import { sessionPayload, SessionEventTypes, type SessionEvent } from '../../src/sessions/session-events.js';
import { RedisConnection } from '../../src/storage/redis/connection.js';
import { RedisBatchEncoder } from '../../src/storage/redis/batch-encoder.js';
import { StoreScripts, parseHead } from '../../src/storage/redis/scripts.js';
import { dropStoreKeys } from './redis-conn.js';
import { sharedRedisUrl, uniquePrefix } from './redis-server.js';

/** The tests' own connections wait this long for a handshake: the default 5 s is short on a loaded machine. */
const TEST_CONNECT_TIMEOUT_MS = 60_000;

export const FIXTURE_T0 = Date.parse('2026-03-09T09:00:00.000Z');
const MIN = 60_000;
const HOUR = 60 * MIN;
/** No session of the fixture expires in its compaction. */
const NO_TTL = 1000 * 24 * HOUR * 365;

export const WRITERS = {
  alpha: { writer: '4201@alpha', tag: 'aaaaaa' },
  beta: { writer: '4202@beta', tag: 'bbbbbb' },
} as const;

type Writer = keyof typeof WRITERS;

/** One commit: its writer and its events. */
export interface ScriptedCommit {
  by: Writer;
  events: SessionEvent[];
  /** Lines of at most this many bytes (a long record is spread over several). */
  maxLineBytes?: number;
}

const TYPE_OF: Record<SessionEvent['kind'], string> = Object.fromEntries(Object.entries(SessionEventTypes)) as Record<SessionEvent['kind'], string>;

const turn = (prompt: string, at: number) => ({ prompt, response: `answer to ${prompt.slice(0, 20)}`, timestamp: new Date(at) });

export const PHASE_1: ScriptedCommit[] = [
  { by: 'alpha', events: [{ kind: 'create', id: 'alpha', time: FIXTURE_T0 }] },
  { by: 'alpha', events: [{ kind: 'turn', id: 'alpha', time: FIXTURE_T0 + MIN, turn: turn('first question', FIXTURE_T0 + MIN) }] },
  {
    by: 'beta',
    events: [
      { kind: 'create', id: 'beta', time: FIXTURE_T0 + 2 * MIN },
      { kind: 'turn', id: 'beta', time: FIXTURE_T0 + 2 * MIN + 1000, turn: turn('beta asks', FIXTURE_T0 + 2 * MIN + 1000) },
    ],
  },
  { by: 'alpha', events: [{ kind: 'conversation', id: 'alpha', time: FIXTURE_T0 + 3 * MIN, conversationId: 'conv-alpha-1' }] },
  { by: 'beta', events: [{ kind: 'update', id: 'beta', time: FIXTURE_T0 + 4 * MIN, data: { codexConversationId: 'conv-beta-1' } }] },
];

/** When the fixture's compaction runs (its --now). */
export const COMPACTED_AT = FIXTURE_T0 + HOUR;

export const PHASE_2: ScriptedCommit[] = [
  { by: 'alpha', events: [{ kind: 'turn', id: 'alpha', time: FIXTURE_T0 + 2 * HOUR, turn: turn('after the compaction', FIXTURE_T0 + 2 * HOUR) }] },
  {
    by: 'beta',
    events: [
      { kind: 'create', id: 'gamma', time: FIXTURE_T0 + 2 * HOUR + 1000 },
      { kind: 'delete', id: 'beta', time: FIXTURE_T0 + 2 * HOUR + 2000, reason: 'deleted' },
    ],
  },
  // 3 lines: a record spread over several, joined by every reader.
  { by: 'alpha', maxLineBytes: 1024, events: [{ kind: 'turn', id: 'gamma', time: FIXTURE_T0 + 3 * HOUR, turn: turn(`a long prompt ${'x'.repeat(2000)}`, FIXTURE_T0 + 3 * HOUR) }] },
  { by: 'beta', events: [{ kind: 'touch', id: 'gamma', time: FIXTURE_T0 + 4 * HOUR }] },
  { by: 'alpha', events: [{ kind: 'reset', id: 'alpha', time: FIXTURE_T0 + 5 * HOUR }] },
];

/** Appends `commits` to the store under `prefix` as their writers would, chained from its head. */
export async function appendCommits(url: string, prefix: string, commits: readonly ScriptedCommit[]): Promise<void> {
  const conn = await RedisConnection.open({ url, prefix, connectTimeoutMs: TEST_CONNECT_TIMEOUT_MS, onWarning: () => undefined });
  try {
    const scripts = new StoreScripts(conn);
    await scripts.load();
    // What a store's first writer records (docs/FORMAT.md, "Keys").
    await conn.command(['HSETNX', conn.keys.meta, 'kind', 'session']);
    await conn.command(['HSETNX', conn.keys.meta, 'format', '2']);
    for (const commit of commits) {
      const head = parseHead((await conn.command(['GET', conn.keys.head])) as string | null);
      if (head === 'invalid') throw new Error('the fixture store has an invalid head');
      const { writer, tag } = WRITERS[commit.by];
      const encoder = new RedisBatchEncoder({ writerJson: JSON.stringify(writer), maxLineBytes: commit.maxLineBytes ?? 1024 * 1024, hashChain: true, tag });
      const encoded = encoder.encode(
        head,
        commit.events.map((e) => ({ time: e.time, type: TYPE_OF[e.kind], payloadJson: canonicalPayload(sessionPayload(e))! })),
      );
      const outcome = await scripts.append(head, encoded.batch);
      if (outcome.kind !== 'ok') throw new Error(`the fixture's append was refused: ${JSON.stringify(outcome)}`);
    }
  } finally {
    await conn.close();
  }
}

export interface RedisFixture {
  url: string;
  prefix: string;
  /** `{ url, prefix }` for the stores and compactors a test opens itself, with a connect timeout for a busy machine. */
  location: { url: string; prefix: string; connectTimeoutMs: number };
  /** `--redis URL --prefix P`. */
  flags: string[];
  /** Replaces the random prefix by P, for goldens. */
  normalize(text: string): string;
}

/** A fresh prefix on the shared server (or on `url`), its keys removed when the test ends. */
export async function freshRedisStore(t: ExecutionContext, name = 'cli', url?: string): Promise<RedisFixture> {
  url ??= await sharedRedisUrl();
  const prefix = uniquePrefix(name);
  t.teardown(async () => {
    const conn = await RedisConnection.open({ url: url!, prefix, connectTimeoutMs: TEST_CONNECT_TIMEOUT_MS, onWarning: () => undefined }).catch(() => undefined);
    if (conn) await dropStoreKeys(conn).finally(() => conn.close());
  });
  return { url, prefix, location: { url, prefix, connectTimeoutMs: TEST_CONNECT_TIMEOUT_MS }, flags: ['--redis', url, '--prefix', prefix], normalize: (text) => text.split(prefix).join('P') };
}

/** The scripted history: phase 1, a compaction at COMPACTED_AT, phase 2. */
export async function redisFixture(t: ExecutionContext, name = 'cli', url?: string): Promise<RedisFixture> {
  const store = await freshRedisStore(t, name, url);
  await appendCommits(store.url, store.prefix, PHASE_1);
  const result = await compactSessions({ redis: store.location, now: () => COMPACTED_AT, ttlMs: NO_TTL, onWarning: () => undefined });
  if (result.status !== 'compacted') throw new Error(`the fixture's compaction did ${result.status}`);
  await appendCommits(store.url, store.prefix, PHASE_2);
  return store;
}
