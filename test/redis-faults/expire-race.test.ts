/**
 * expireNow() on Redis decides on the view it caught up to, and its append
 * is a compare-and-set on the head: when another host writes first (here a
 * touch that makes the session live again, let through while the proxy
 * holds the expirer's append back), the append is refused, and the
 * decision is made again on the view caught up. The session stays, in the
 * store and in the expirer's view; nothing decided on the stale view is
 * written.
 */
import test from 'ava';
import { SessionStore } from '../../src/index.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { TEST_T0 } from '../helpers/fixture-now.js';
import { startRedisServer, uniquePrefix } from '../helpers/redis-server.js';
import { freshView, readStream } from '../helpers/redis-faults.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const HOUR = 60 * 60_000;

test('expireNow() that loses the race to a touch from another host decides again: the session touched meanwhile is not deleted', async (t) => {
  const server = await startRedisServer(t);
  const proxy = await TcpProxy.start(server.port);
  t.teardown(() => proxy.close());
  const prefix = uniquePrefix('expire-race');
  const expirerClock = new FakeClock(TEST_T0);
  const otherClock = new FakeClock(TEST_T0);
  const open = (url: string, clock: FakeClock) => SessionStore.open({ redis: { url, prefix }, clock: clock.read, ttlMs: HOUR, onWarning: () => undefined });
  const expirer = await open(proxy.url, expirerClock);
  const other = await open(server.url, otherClock);
  t.teardown(() => Promise.all([expirer.close(), other.close()]).then(() => undefined));
  expirer.ensureSession('s');
  expirer.ensureSession('idle');
  await expirer.flush();
  await other.catchUp();

  // Two hours on: both idle, by the expirer's clock. The other host uses `s` right then.
  expirerClock.advance(2 * HOUR);
  otherClock.advance(2 * HOUR);
  let heldBack = false;
  proxy.beforeRequest(
    (request) => request.includes('session.delete'),
    async () => {
      heldBack = true;
      t.truthy(other.getSession('s'), 'the other host reads s (a touch)');
      await other.flush();
    },
  );
  const counts = await expirer.expireNow();
  t.true(heldBack, 'the first decision was held back until the touch was in the store');
  t.deepEqual(counts, { expired: 1, evicted: 0 }, 'decided again: only the idle session');

  t.deepEqual(expirer.listSessions().map((s) => s.id), ['s'], "the expirer's view");
  const fresh = await freshView(server.url, prefix, { clock: () => TEST_T0 + 2 * HOUR });
  t.deepEqual(fresh.sessions.map((s) => s.id), ['s'], 'the store');
  const deletes = (await readStream(server.url, prefix)).records.filter((r) => r.type === 'session.delete').map((r) => r.payload.id);
  t.deepEqual(deletes, ['idle'], 'one delete written, decided on the view that had the touch');
});
