/**
 * KeyValueStore's synchronous API on a store directory. Its behaviour on
 * every backend (get/set/has/delete/entries, keys, JSON values, catch-up,
 * touches, TTL and maxEntries) is test/conformance/kv-contract.test.ts.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { KeyValueStore } from '../../src/index.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { TEST_T0 } from '../helpers/fixture-now.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';

const records = (dir: string) =>
  fs
    .readFileSync(path.join(dir, 'journal-00000001.ndjson'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { t: string });

test('closeSync writes the deferred touch of a process that only reads, and warnings go to onWarning only', async (t) => {
  const clock = new FakeClock(TEST_T0);
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const kv = KeyValueStore.openSync({ dir, clock: clock.read, fsync: false, autoCompact: false, onWarning, touchFlushMs: 60_000 });
  kv.set('a', 1);
  await kv.flush();
  clock.advance(5000);
  kv.get('a');
  t.is(records(dir).length, 1, 'the touch waits');
  kv.closeSync();
  t.deepEqual(records(dir).map((r) => r.t), ['kv.set', 'kv.touch']);
  t.deepEqual(warnings, []);
});
