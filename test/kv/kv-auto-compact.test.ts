/**
 * A KeyValueStore compacts itself like the other stores: once its journal
 * outgrows its snapshot it spawns `session-journal compact --kind kv` with
 * its own ttlMs, maxEntries and clock, and the child's removals reach it.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { KeyValueStore } from '../../src/index.js';
import { snapshotsIn, waitFor } from '../helpers/compaction-helpers.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { TEST_T0 } from '../helpers/fixture-now.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';

const compactionOf = (kv: KeyValueStore) => (kv as unknown as { autoCompactor?: { running?: Promise<number> } }).autoCompactor?.running;

test('auto-compaction of a kv store: a snapshot appears, LRU applies at maxEntries, every kept key is there', async (t) => {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(TEST_T0);
  const { warnings, onWarning } = collectWarnings();
  const kv = KeyValueStore.openSync({ dir, clock: clock.read, fsync: false, onWarning, maxEntries: 50, autoCompact: { minBytes: 16 * 1024, growthPercent: 100 } });
  const filler = 'v'.repeat(200);
  for (let i = 0; i < 120; i++) {
    clock.advance(1000);
    kv.set(`key-${String(i).padStart(3, '0')}`, `${filler}${i}`);
    if (i % 10 === 9) await kv.flush();
  }
  t.true(await waitFor(() => snapshotsIn(dir).length > 0, 20_000, 50), 'a snapshot appears');
  // The child is unref'd, so waiting on its promise alone would let the event loop empty: poll.
  t.true(await waitFor(() => compactionOf(kv) === undefined, 20_000, 50), 'the compaction child ended');
  t.true(await waitFor(() => !fs.existsSync(path.join(dir, 'compact.lock')), 10_000));
  const newest = Array.from({ length: 50 }, (_, j) => `key-${String(119 - j).padStart(3, '0')}`);
  t.deepEqual([...kv.entries()].map(([k]) => k), newest);
  await kv.close();
  const fresh = KeyValueStore.openSync({ dir, clock: clock.read, maxEntries: 10_000, autoCompact: false });
  const keys = [...fresh.entries()].map(([k]) => k);
  t.true(keys.length < 120, `evicted beyond maxEntries by the compaction child (${keys.length} left)`);
  t.deepEqual(keys.slice(0, 50), newest, 'the 50 most recent are all there');
  fresh.closeSync();
  t.deepEqual(warnings, []);
});
