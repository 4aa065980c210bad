/**
 * The tool functions of the public API on every backend: verifyStore,
 * readChainHead, storeStats, replayHistory, sessionsAt and exportSessions
 * take a directory or `{ redis }` (a StoreRef) and say the same of the same
 * writes. Before a compaction the audit trail is the same on both (on Redis
 * it reaches back to the last compaction only, so no compaction runs before
 * it is read); after one, stats knows when it ran on both.
 */
import test, { type ExecutionContext } from 'ava';
import { SessionJournalError, exportSessions, readChainHead, replayHistory, sessionsAt, storeStats, verifyStore, type RedisLocation, type ReplayEvent, type StoreRef } from '../../src/index.js';
import { startRedisServer, uniquePrefix } from '../helpers/redis-server.js';
import type { Backend, Location } from './backends.js';
import { backends } from './every-backend.js';
import { FakeClock, TEST_T0 as T0, codeOf, named, openSessions, turn } from './harness.js';

const refOf = (at: Location): StoreRef => ('dir' in at ? at.dir : { redis: at.redis });
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const quiet = { onWarning: () => undefined };
const exportOf = (at: Location) => ('dir' in at ? Promise.resolve(exportSessions({ dir: at.dir, ...quiet })) : exportSessions({ redis: at.redis, ...quiet }));

/** Sessions a (two turns) and b (one), then b deleted and c made: every step a second apart on the fake clock. */
async function writeHistory(t: ExecutionContext, backend: Backend, at: Location) {
  const clock = new FakeClock(T0);
  const { store } = await openSessions(t, backend, at, clock);
  store.ensureSession('a');
  store.addTurn('a', turn('a-1', T0));
  clock.advance(1000);
  store.ensureSession('b');
  store.addTurn('b', turn('b-1', T0 + 1000));
  await store.flush();
  clock.advance(1000);
  store.addTurn('a', turn('a-2', T0 + 2000));
  store.deleteSession('b');
  store.ensureSession('c');
  await store.close();
  return clock;
}

const summary = (events: readonly ReplayEvent[]) => events.map((e) => `${e.type} ${e.session ?? ''}`.trim());

async function collect(store: StoreRef, options = {}): Promise<ReplayEvent[]> {
  const out: ReplayEvent[] = [];
  for await (const e of replayHistory(store, { ...quiet, ...options })) out.push(e);
  return out;
}

for (const backend of backends) {
  test(named(backend, 'the tool functions read the store: replayHistory, sessionsAt, exportSessions, verifyStore, readChainHead, storeStats'), async (t) => {
    const at = await backend.fresh(t);
    await writeHistory(t, backend, at);
    const ref = refOf(at);

    const events = await collect(ref);
    t.deepEqual(summary(events), ['session.create a', 'session.turn a', 'session.create b', 'session.turn b', 'session.turn a', 'session.delete b', 'session.create c']);
    t.deepEqual(summary(await collect(ref, { sessions: ['b'] })), ['session.create b', 'session.turn b', 'session.delete b'], 'the filter applies');
    t.deepEqual(events.map((e) => e.seq), [...events.keys()].map((i) => events[0]!.seq + i), 'in commit order, no gap');

    const before = await sessionsAt(ref, T0 + 1500, quiet);
    t.deepEqual(before.sessions.map((s) => [s.id, s.turns.map((x) => x.prompt)]), [['a', ['a-1']], ['b', ['b-1']]], 'the state at an instant');

    const doc = await exportOf(at);
    t.deepEqual(doc.sessions.map((s) => [s.id, s.turns.map((x) => x.prompt)]), [['a', ['a-1', 'a-2']], ['c', []]]);

    const report = await verifyStore(ref, quiet);
    t.true(report.ok, JSON.stringify(report.problems));
    const head = await readChainHead(ref, quiet); // sync for a directory, a promise on Redis
    t.is(head.seq, events[events.length - 1]!.seq);
    t.true((await verifyStore(ref, { ...quiet, expectHead: head })).ok, 'the head read back proves the chain');

    const stats = await storeStats(ref, quiet);
    t.is(stats.sessions.total, 2);
    t.is(stats.lastCompaction, null, 'never compacted');
    t.is(stats.head.seq, head.seq);

    await backend.compact('sessions', at, { now: () => T0 + 10_000 });
    const compacted = await storeStats(ref, quiet);
    t.regex(compacted.lastCompaction ?? '', ISO, 'the compaction has a time (on Redis: the manifest records when it was installed)');
    t.deepEqual((await exportOf(at)).sessions, doc.sessions, 'the same document after the compaction');
    t.true((await verifyStore(ref, quiet)).ok);
  });
}

type RedisRef = { redis: RedisLocation };
const redisBackend = backends.find((b) => b.name === 'redis')!;

test('[redis] every tool function refuses a prefix with no store (NOT_A_STORE), and a server that may evict keys (REDIS_EVICTION_POLICY)', async (t) => {
  const at = await redisBackend.fresh(t);
  if (!('redis' in at)) throw new Error('the redis backend gave a directory');
  const empty: RedisRef = { redis: { url: at.redis.url, prefix: uniquePrefix('no-store') } };
  const lru = await startRedisServer(t, { args: ['--maxmemory-policy', 'allkeys-lru'] });
  const evicting: RedisRef = { redis: { url: lru.url, prefix: uniquePrefix('lru') } };
  const calls: Record<string, (ref: RedisRef) => Promise<unknown>> = {
    replayHistory: (ref) => collect(ref),
    sessionsAt: (ref) => sessionsAt(ref, T0, quiet),
    exportSessions: (ref) => exportSessions({ redis: ref.redis, ...quiet }),
    verifyStore: (ref) => verifyStore(ref, quiet),
    readChainHead: async (ref) => readChainHead(ref, quiet),
    storeStats: async (ref) => storeStats(ref, quiet),
  };
  for (const [name, call] of Object.entries(calls)) {
    const err = await t.throwsAsync(call(empty), { instanceOf: SessionJournalError }, name);
    t.is(codeOf(err), 'NOT_A_STORE', `${name}: ${err?.message}`);
    const refused = await t.throwsAsync(call(evicting), { instanceOf: SessionJournalError }, name);
    t.is(codeOf(refused), 'REDIS_EVICTION_POLICY', `${name}: ${refused?.message}`);
  }
});
