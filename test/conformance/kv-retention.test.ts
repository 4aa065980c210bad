/**
 * Retention of a KeyValueStore through compaction, on every backend and an
 * explicit clock: TTL from last use (set or get), then LRU beyond
 * maxEntries, journaled as kv.delete records that running stores apply;
 * the same rule readers use to hide keys; and the compactor owns time.
 * (Moved from test/kv/kv-compaction.test.ts; `compact --kind` on the
 * command line stayed there.)
 */
import test from 'ava';
import type { KeyValueStore } from '../../src/index.js';
import { backends, type Backend, type Location } from './backends.js';
import { FakeClock, TEST_T0, beforePeerRead, collectWarnings, named, ofType, track } from './harness.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** A store with keys last used the given number of minutes before `now`, set in that order (oldest first). */
async function storeWithAges(backend: Backend, at: Location, now: number, ages: Record<string, number>): Promise<void> {
  const clock = new FakeClock(0);
  const kv = await backend.openKv(at, { clock: clock.read, fsync: false, autoCompact: false });
  for (const [key, age] of Object.entries(ages).sort((a, b) => b[1] - a[1])) {
    clock.now = now - age * MINUTE;
    kv.set(key, `value-${key}`);
  }
  await kv.close();
}

const keysOf = (kv: KeyValueStore) => [...kv.entries()].map(([k]) => k);

for (const backend of backends) {
  test(named(backend, 'compaction drops keys idle past the TTL, then the least recently used beyond maxEntries, and journals each as kv.delete'), async (t) => {
    const at = await backend.fresh(t);
    const now = TEST_T0 + 10 * HOUR;
    await storeWithAges(backend, at, now, { ancient: 600, old: 61, a: 50, b: 40, c: 30, d: 20, e: 0 });
    const live = track(t, await backend.openKv(at, { clock: () => now, ttlMs: HOUR, maxEntries: 3, autoCompact: false }));
    t.deepEqual(keysOf(live), ['e', 'd', 'c'], 'the reader already hides what compaction will drop');
    const { warnings, onWarning } = collectWarnings();
    const result = await backend.compact('kv', at, { now: () => now, ttlMs: HOUR, maxEntries: 3, onWarning });
    t.deepEqual(warnings, []);
    t.is(result.status, 'compacted');
    t.deepEqual(result.removed, { expired: 2, evicted: 2 });
    t.is(result.kept, 3);
    const deletes = await ofType(backend, at, 'kv.delete');
    t.deepEqual(deletes.map((r) => r.p).sort((x, y) => String(x.key).localeCompare(String(y.key))), [
      { key: 'a', reason: 'evicted' },
      { key: 'ancient', reason: 'expired' },
      { key: 'b', reason: 'evicted' },
      { key: 'old', reason: 'expired' },
    ]);
    // A running store applies the deletes: even a clock far behind no longer finds them.
    const behind = track(t, await backend.openKv(at, { clock: () => now - 10 * HOUR, ttlMs: HOUR, maxEntries: 100, autoCompact: false }));
    t.deepEqual(keysOf(behind).sort(), ['c', 'd', 'e']);
    await beforePeerRead(backend, live);
    t.is(live.get('a'), undefined);
    await behind.close();
    await live.close();
  });

  test(named(backend, 'a get refreshes a key for compaction: the key read last survives, the one set last but not read since is evicted'), async (t) => {
    const at = await backend.fresh(t);
    const clock = new FakeClock(TEST_T0);
    const kv = track(t, await backend.openKv(at, { clock: clock.read, fsync: false, autoCompact: false, maxEntries: 2 }));
    kv.set('first', 1);
    clock.advance(MINUTE);
    kv.set('second', 2);
    clock.advance(MINUTE);
    kv.set('third', 3);
    clock.advance(MINUTE);
    t.is(kv.get('first'), 1);
    await kv.flush();
    const result = await backend.compact('kv', at, { now: clock.read, maxEntries: 2 });
    t.deepEqual(result.removed, { evicted: 1 });
    await beforePeerRead(backend, kv);
    t.deepEqual(keysOf(kv), ['first', 'third']);
    await kv.close();
  });

  test(named(backend, 'the compactor owns time: its now decides, and a compaction ahead of the store expires nothing the store used last'), async (t) => {
    const at = await backend.fresh(t);
    await storeWithAges(backend, at, TEST_T0, { a: 30, b: 10 });
    // A compactor clock a day ahead: TTL counts only up to the store's newest activity (b), so a (20 min older) stays.
    const ahead = await backend.compact('kv', at, { now: () => TEST_T0 + 24 * HOUR, ttlMs: HOUR, maxClockSkewMs: 48 * HOUR });
    t.deepEqual(ahead.removed, {});
    const result = await backend.compact('kv', at, { now: () => TEST_T0, ttlMs: 15 * MINUTE });
    t.deepEqual(result.removed, { expired: 1 });
    const kv = track(t, await backend.openKv(at, { clock: () => TEST_T0, autoCompact: false }));
    t.deepEqual(keysOf(kv), ['b']);
    await kv.close();
  });
}
