/**
 * Compaction with nothing to do changes no file. (TTL and LRU during
 * compaction, journaled as session.delete records, run on every backend in
 * test/conformance/sessions-retention.test.ts.)
 */
import test from 'ava';
import fs from 'node:fs';
import { compactSessions } from '../../src/index.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';
import { FakeClock, NO_TTL, T0, fingerprint, freshReplay, liveSegment, openStore, recordsOf, segmentsIn, snapshotsIn, writeAgedSessions } from '../helpers/compaction-helpers.js';

const MINUTE = 60_000;

/** The retention deletes journaled in the live segment, as `id:reason`, sorted. */
function journaledDeletes(dir: string): string[] {
  return recordsOf(dir, liveSegment(dir))
    .filter((r) => r.t === 'session.delete')
    .map((r) => `${r.p.id as string}:${r.p.reason as string}`)
    .sort();
}

test('nothing to do: compacting a just-compacted store returns nothing-to-do and changes no file', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const clock = new FakeClock(T0);
  const store = openStore(dir, onWarning, { clock: clock.read });
  await writeAgedSessions(store, clock, ['a', 'b', 'c'], MINUTE);
  await store.close();

  const first = await compactSessions({ dir, onWarning, ttlMs: NO_TTL, now: () => clock.now });
  t.is(first.status, 'compacted');
  t.deepEqual(first.removed, {});
  t.is(first.snapshot, 'snapshot-00000002.ndjson');
  t.is(liveSegment(dir), 'journal-00000002.ndjson', 'the rotation made segment 2 live');
  const before = fingerprint(dir);

  const second = await compactSessions({ dir, onWarning, ttlMs: NO_TTL, now: () => clock.now });
  t.is(second.status, 'nothing-to-do');
  t.deepEqual(second.removed, {});
  t.is(second.segmentsArchived, 0);
  t.is(second.kept, 3);
  t.is(second.bytesAfter, second.bytesBefore);
  t.is(second.snapshot, undefined);
  t.deepEqual(fingerprint(dir), before, 'no file was created, removed or modified');
  t.deepEqual(snapshotsIn(dir), ['snapshot-00000002.ndjson']);
  t.deepEqual(segmentsIn(dir), ['journal-00000002.ndjson']);
  t.deepEqual(warnings, []);
});

test('nothing to do: after a compaction that removed sessions, the next one folds the deletes and then nothing is left to do', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const clock = new FakeClock(T0);
  const store = openStore(dir, onWarning, { clock: clock.read });
  await writeAgedSessions(store, clock, ['a', 'b', 'c'], MINUTE);
  await store.close();
  const opts = { dir, onWarning, ttlMs: NO_TTL, maxSessions: 2, now: () => clock.now };

  t.deepEqual((await compactSessions(opts)).removed, { evicted: 1 });
  t.deepEqual(journaledDeletes(dir), ['a:evicted'], 'the eviction is a session.delete record in the live segment');
  const second = await compactSessions(opts);
  t.deepEqual(second.removed, {}, 'nothing more to remove');
  const before = fingerprint(dir);
  const third = await compactSessions(opts);
  t.is(third.status, 'nothing-to-do');
  t.deepEqual(fingerprint(dir), before);
  t.deepEqual((await freshReplay(dir, onWarning)).map((s) => s.id), ['b', 'c']);
  t.deepEqual(warnings, []);
});

test('nothing to do: an existing empty store', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  fs.mkdirSync(dir, { mode: 0o700 });
  const result = await compactSessions({ dir, onWarning });
  t.is(result.status, 'nothing-to-do');
  t.is(result.kept, 0);
  t.deepEqual(fs.readdirSync(dir), []);
  t.deepEqual(warnings, []);
});
