/**
 * 4 processes as 4 hosts on one Redis: 4 writer children append to their
 * own and to shared sessions while a compactor child compacts the store in
 * a loop, with an LRU limit that evicts some idle sessions. Nothing is lost
 * or duplicated besides what retention removed, and that removal is
 * journaled: every view drops the same sessions. After all stop, each
 * writer's view after catchUp() equals a fresh open's.
 */
import test from 'ava';
import { killAll, openChildren, type PlainSession } from '../helpers/child-protocol.js';
import { clockOf, timeline } from '../helpers/child-clock.js';
import { LineChild } from '../helpers/crash-procs.js';
import { TEST_T0 } from '../helpers/fixture-now.js';
import type { RedisCompactorConfig } from '../helpers/redis-compactor-child.js';
import { startRedisServer, uniquePrefix } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/redis-conn.js';
import { exactlyOnce, freshView, promptsOf, readStream, viewTurnCounts } from '../helpers/redis-faults.js';

const HOSTS = 4;
/** Compactions that finish while every host is still writing. */
const COMPACTIONS_DURING_WRITES = 4;
const IDLE_PER_HOST = 3;
const SHARED = ['shared-a', 'shared-b'];
/** The active sessions (each host's own, and the shared ones) plus 4 idle ones: LRU evicts the 8 oldest idle sessions. */
const MAX_SESSIONS = HOSTS + SHARED.length + 4;

const idleIds = (host: number) => Array.from({ length: IDLE_PER_HOST }, (_, k) => `idle-${host}-${k}`);

test('4 hosts writing while a compactor runs in a loop with LRU: nothing lost or duplicated but what retention journaled, and every view converges', async (t) => {
  t.timeout(120_000);
  const server = await startRedisServer(t);
  const prefix = uniquePrefix('hosts');
  const clock = timeline(TEST_T0);
  const redis = { url: server.url, prefix };
  const hosts = await openChildren(HOSTS, 'h', { redis, fsync: true, clock });
  t.teardown(() => killAll(hosts));

  // Idle sessions first, each with one turn: they are older than every active one.
  await Promise.all(
    hosts.map((h, i) => h.request({ op: 'ops', ops: idleIds(i).flatMap((id, k) => [{ k: 'ensure' as const, id }, { k: 'turn' as const, id, prompt: `${h.name}:idle-${k}` }]) }, 'flushed')),
  );

  const config: RedisCompactorConfig = { redis, ttlMs: 1e12, maxSessions: MAX_SESSIONS, clock, loop: true, waitForGo: true };
  const compactor = new LineChild('compactor', 'redis-compactor-child.js', [JSON.stringify(config)]);
  t.teardown(() => compactor.kill());
  await compactor.next('ready');
  hosts.forEach((h, i) => h.send({ op: 'write', writer: h.name, sessions: [`own-${i}`, ...SHARED], count: 1_000_000, flushEvery: 3, pauseMs: 3, untilStopped: true }));
  compactor.send({ go: true });
  const compacted = () => compactor.messages.filter((m) => m.type === 'done' && (m.result as { status: string }).status === 'compacted').length;
  await waitFor('compactions beside the writers', () => compacted() >= COMPACTIONS_DURING_WRITES, 60_000);
  for (const h of hosts) h.send({ op: 'stop-writing' });
  const written = (await Promise.all(hosts.map((h) => h.next('done', 60_000)))).map((d) => d.count);
  t.true(hosts.every((h) => h.alive), 'the writers are still running');
  compactor.send({ stop: true });
  const stopped = await compactor.next('stopped', 60_000);
  await compactor.exited;

  const errors = compactor.messages.filter((m) => m.type === 'error');
  t.deepEqual(errors.map((e) => `${String(e.code)}: ${String(e.message)}`), [], 'no compaction failed');
  const results = compactor.messages.filter((m) => m.type === 'done').map((m) => m.result as { status: string; removed: Record<string, number> });
  const evicted = results.reduce((sum, r) => sum + (r.removed.evicted ?? 0), 0);
  const expired = results.reduce((sum, r) => sum + (r.removed.expired ?? 0), 0);
  t.is(expired, 0);
  t.is(evicted, HOSTS * IDLE_PER_HOST - 4, 'LRU evicted the oldest idle sessions, once each');

  const fresh = await freshView(server.url, prefix, { clock: clockOf(clock) });
  t.deepEqual(fresh.warnings, []);
  const counts = viewTurnCounts(fresh.sessions);
  hosts.forEach((h, i) => t.deepEqual(exactlyOnce(counts, promptsOf(h.name, written[i]!)), [], `${h.name}: every turn exactly once`));
  const ids = new Set(fresh.sessions.map((s) => s.id));
  for (const id of [...hosts.map((_, i) => `own-${i}`), ...SHARED]) t.true(ids.has(id), `active ${id} kept`);
  const idle = hosts.flatMap((_, i) => idleIds(i));
  const kept = idle.filter((id) => ids.has(id));
  t.is(kept.length, 4, 'the 4 newest idle sessions kept');
  t.is(ids.size, HOSTS + SHARED.length + kept.length, 'no session that nobody wrote');
  for (const s of fresh.sessions.filter((x) => kept.includes(x.id))) t.is(s.turns.length, 1, `${s.id} keeps its one turn`);

  const stream = await readStream(server.url, prefix);
  t.deepEqual(stream.problems, [], 'the stream goes on gapless from the snapshot to the head');
  t.true(stream.snapshotSeq > 0);

  // Every host read the evictions from the journal: the same view as a fresh process, after catchUp().
  const views = await Promise.all(hosts.map((h) => h.request({ op: 'list' }, 'list')));
  views.forEach((v, i) => t.deepEqual(v.sessions, fresh.sessions, `${hosts[i]!.name}'s view is a fresh open's`));
  const mustNot = (sessions: PlainSession[]) => sessions.filter((s) => idle.includes(s.id) && !kept.includes(s.id)).map((s) => s.id);
  views.forEach((v) => t.deepEqual(mustNot(v.sessions), []));
  for (const h of hosts) t.deepEqual(h.warnings.filter((w) => w.code !== 'RECOVERED'), [], `${h.name}: no warning`);
  await Promise.all(hosts.map((h) => h.close()));
  t.log(`${written.join(', ')} turns written; ${stopped.runs} compaction runs (${compacted()} compacted), ${evicted} sessions evicted, snapshot at seq ${stream.snapshotSeq}, ${stream.records.length} records after it`);
});
