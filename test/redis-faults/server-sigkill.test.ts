/**
 * redis-server SIGKILLed while several writer processes append to one store
 * through SessionStore (appendonly yes, appendfsync always), then started
 * again on its append-only file. The writers are not reopened: their
 * stores reconnect by themselves and go on, each flush() that failed is
 * called again until it resolves. At the end every acknowledged turn is in
 * the store exactly once (records, not only the view), the stream's seqs
 * are 1..K without a hole with the head at K, and every writer's view is a
 * fresh process's.
 */
import test from 'ava';
import { openChildren, killAll, type StoreChild } from '../helpers/child-protocol.js';
import { timeline, clockOf } from '../helpers/child-clock.js';
import { TEST_T0 } from '../helpers/fixture-now.js';
import { startRedisServer, uniquePrefix } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/redis-conn.js';
import { exactlyOnce, freshView, promptsOf, readStream, turnCounts, viewTurnCounts } from '../helpers/redis-faults.js';

const WRITERS = 3;
const TURNS = 240;
const FLUSH_EVERY = 3;
/** Turns each writer has acknowledged before the kill: the kill falls in the middle of the load. */
const KILL_AFTER = 45;

test('SIGKILL of redis-server under 3 writer processes: they reconnect by themselves and go on; every acknowledged turn is stored once, seqs gapless', async (t) => {
  t.timeout(120_000);
  const server = await startRedisServer(t);
  const prefix = uniquePrefix('sigkill-server');
  const clock = timeline(TEST_T0);
  const redis = { url: server.url, prefix };
  const children = await openChildren(WRITERS, 'w', { redis, fsync: true, clock });
  t.teardown(() => killAll(children));
  const pids = children.map((c) => c.pid);
  const failed = new Map<StoreChild, string[]>(children.map((c) => [c, []]));
  for (const c of children) {
    c.proc.on('message', (m: { type: string; code?: string }) => {
      if (m.type === 'flush-failed') failed.get(c)!.push(m.code!);
    });
  }
  children.forEach((c, i) => c.send({ op: 'write', writer: c.name, sessions: [`own-${i}`, 'shared'], count: TURNS, flushEvery: FLUSH_EVERY, retryFailedFlush: true }));

  await waitFor('acknowledgements before the kill', () => children.every((c) => c.acked >= KILL_AFTER), 60_000);
  const ackedAtKill = children.map((c) => c.acked);
  await server.kill();
  // The loss is seen by a writer in the middle of its flushes before the server is back.
  await waitFor('a flush that failed', () => [...failed.values()].some((codes) => codes.length > 0), 30_000);
  await server.restart();
  const counts = await Promise.all(children.map((c) => c.next('done', 90_000)));

  t.deepEqual(counts.map((d) => d.count), children.map(() => TURNS));
  t.deepEqual(children.map((c) => c.pid), pids, 'the same processes, never reopened');
  for (const c of children) {
    t.true(c.acked === TURNS - 1, `${c.name} acknowledged every turn in the end`);
    t.deepEqual([...new Set(failed.get(c))].filter((code) => code !== 'REDIS_UNAVAILABLE'), [], `${c.name}'s flushes failed only with REDIS_UNAVAILABLE`);
    const codes = c.warnings.map((w) => w.code);
    t.true(codes.includes('REDIS_DISCONNECTED') && codes.includes('RECOVERED'), `${c.name}'s connection was lost and came back by itself: ${codes.join(', ')}`);
  }

  const stream = await readStream(server.url, prefix);
  t.deepEqual(stream.problems, [], 'seqs 1..K, no hole, the head at K');
  t.is(stream.snapshotSeq, 0);
  t.is(stream.records[0]?.seq, 1);
  const written = turnCounts(stream.records);
  for (const [i, c] of children.entries()) {
    t.deepEqual(exactlyOnce(written, promptsOf(c.name, TURNS)), [], `${c.name}: every turn recorded exactly once`);
    t.deepEqual(exactlyOnce(written, promptsOf(c.name, ackedAtKill[i]! + 1)), [], `${c.name}: what was acknowledged before the kill survived it`);
  }
  t.is(written.size, WRITERS * TURNS, 'no turn that no writer wrote');

  const fresh = await freshView(server.url, prefix, { clock: clockOf(clock) });
  t.deepEqual(fresh.warnings, []);
  for (const c of children) t.deepEqual(exactlyOnce(viewTurnCounts(fresh.sessions), promptsOf(c.name, TURNS)), []);
  const views = await Promise.all(children.map((c) => c.request({ op: 'list' }, 'list')));
  for (const [i, v] of views.entries()) t.deepEqual(v.sessions, fresh.sessions, `${children[i]!.name}'s view is a fresh process's`);
  await Promise.all(children.map((c) => c.close()));
  t.log(`acknowledged at the kill: ${ackedAtKill.map((a) => a + 1).join(', ')}; flushes that failed: ${children.map((c) => failed.get(c)!.length).join(', ')}; ${stream.records.length} records`);
});
