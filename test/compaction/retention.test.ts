/**
 * Retention during compaction, with controlled clocks (the store's `clock`
 * and compactSessions' `now`): TTL from last access, then LRU; the removals
 * are counted in the result and journaled as session.delete records in the
 * live segment. Also: a compaction with nothing to do changes no file.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { compactSessions } from '../../src/index.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';
import { FakeClock, HOUR, NO_TTL, T0, fingerprint, freshReplay, liveSegment, openStore, recordsOf, segmentsIn, snapshotsIn, writeAgedSessions } from '../helpers/compaction-helpers.js';

const MINUTE = 60_000;

/** The retention deletes journaled in the live segment, as `id:reason`, sorted. */
function journaledDeletes(dir: string): string[] {
  return recordsOf(dir, liveSegment(dir))
    .filter((r) => r.t === 'session.delete')
    .map((r) => `${r.p.id as string}:${r.p.reason as string}`)
    .sort();
}

test('TTL: sessions not accessed within ttl are dropped (exactly ttl old is kept), journaled as expired deletes', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const clock = new FakeClock(T0);
  const store = openStore(dir, onWarning, { clock: clock.read });
  await writeAgedSessions(store, clock, ['old-a', 'old-b'], MINUTE); // T0, T0+1m
  clock.now = T0 + HOUR;
  await writeAgedSessions(store, clock, ['edge', 'fresh-0', 'fresh-1'], MINUTE); // T0+1h, +1h1m, +1h2m
  const now = T0 + HOUR + 2 * HOUR; // 'edge' is exactly 2 h old
  clock.now = now;
  store.getSession('fresh-1'); // the store is in use at `now` (TTL never counts past its newest activity)
  await store.close();

  const result = await compactSessions({ dir, onWarning, ttlMs: 2 * HOUR, maxSessions: 100, now: () => now });

  t.is(result.status, 'compacted');
  t.deepEqual(result.removed, { expired: 2 });
  t.is(result.kept, 3);
  t.is(result.snapshot, 'snapshot-00000002.ndjson');
  t.is(liveSegment(dir), 'journal-00000002.ndjson', 'the rotation made segment 2 live');
  t.deepEqual(journaledDeletes(dir), ['old-a:expired', 'old-b:expired'], 'the expiries are session.delete records in the live segment');
  t.deepEqual((await freshReplay(dir, onWarning)).map((s) => s.id), ['edge', 'fresh-0', 'fresh-1']);
  t.deepEqual(warnings, []);
});

test('LRU: the maxSessions most recently accessed are kept (a read refreshes access), the rest journaled as evicted', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const clock = new FakeClock(T0);
  const store = openStore(dir, onWarning, { clock: clock.read });
  await writeAgedSessions(store, clock, ['s0', 's1', 's2', 's3', 's4', 's5'], MINUTE);
  // s0 was created first but is read last: it is the most recently accessed.
  clock.advance(MINUTE);
  t.truthy(store.getSession('s0'));
  await store.close();

  const result = await compactSessions({ dir, onWarning, ttlMs: NO_TTL, maxSessions: 3, now: () => clock.now });

  t.is(result.status, 'compacted');
  t.deepEqual(result.removed, { evicted: 3 });
  t.is(result.kept, 3);
  t.deepEqual(journaledDeletes(dir), ['s1:evicted', 's2:evicted', 's3:evicted']);
  t.deepEqual((await freshReplay(dir, onWarning)).map((s) => s.id), ['s0', 's4', 's5']);
  t.deepEqual(warnings, []);
});

test('TTL then LRU together: removed counts both reasons; replay shows only the survivors', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const clock = new FakeClock(T0);
  const store = openStore(dir, onWarning, { clock: clock.read });
  await writeAgedSessions(store, clock, ['old-0', 'old-1', 'old-2'], MINUTE);
  clock.advance(3 * HOUR);
  await writeAgedSessions(store, clock, ['new-0', 'new-1', 'new-2', 'new-3', 'new-4', 'new-5'], MINUTE);
  await store.close();

  const result = await compactSessions({ dir, onWarning, ttlMs: 2 * HOUR, maxSessions: 4, now: () => clock.now });

  t.deepEqual(result.removed, { expired: 3, evicted: 2 });
  t.is(result.kept, 4);
  t.deepEqual(journaledDeletes(dir), ['new-0:evicted', 'new-1:evicted', 'old-0:expired', 'old-1:expired', 'old-2:expired']);
  const deletes = recordsOf(dir, liveSegment(dir)).filter((r) => r.t === 'session.delete');
  // Format 2 (docs/FORMAT.md): ts in epoch ms; `w` only where the segment's tag rule does not already name the writer.
  t.true(deletes.every((r) => r.v === 2 && Number.isSafeInteger(r.seq) && Number.isSafeInteger(r.ts)), 'retention deletes are ordinary records');
  t.deepEqual((await freshReplay(dir, onWarning)).map((s) => s.id), ['new-2', 'new-3', 'new-4', 'new-5']);

  // The snapshot itself already lacks the removed sessions.
  const snapshotIds = fs
    .readFileSync(path.join(dir, 'snapshot-00000002.ndjson'), 'utf8')
    .trim()
    .split('\n')
    .slice(1, -1)
    .map((l) => (JSON.parse(l) as { id: string }).id)
    .sort();
  t.deepEqual(snapshotIds, ['new-2', 'new-3', 'new-4', 'new-5']);
  t.deepEqual(warnings, []);
});

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
