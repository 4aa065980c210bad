/**
 * Session TTL and LRU on every backend, on explicit clocks: a reader only
 * hides what its clock finds expired or beyond maxSessions and journals
 * nothing; expireNow() and compaction journal the removal as session.delete
 * records, which every store applies and a reopen keeps. (Moved from
 * test/session-store.test.ts and test/compaction/retention.test.ts.)
 */
import test from 'ava';
import type { JournalWarning } from '../../src/index.js';
import { serializeSessions } from '../helpers/child-protocol.js';
import { HOUR, NO_TTL, writeAgedSessions } from '../helpers/compaction-helpers.js';
import { backends, type Backend, type Location } from './backends.js';
import { FakeClock, TEST_T0 as T0, beforePeerRead, collectWarnings, named, ofType, openSessions } from './harness.js';

const MINUTE = 60_000;

/** The retention deletes in the journal, as `id:reason`, sorted. */
async function journaledDeletes(backend: Backend, at: Location): Promise<string[]> {
  return (await ofType(backend, at, 'session.delete')).map((r) => `${r.p.id as string}:${r.p.reason as string}`).sort();
}

/** A fresh replay (a store that expires nothing), as comparable JSON. */
async function freshReplay(backend: Backend, at: Location, onWarning: (w: JournalWarning) => void) {
  const store = await backend.openSessions(at, { fsync: false, autoCompact: false, ttlMs: NO_TTL, maxSessions: 100_000, onWarning });
  try {
    return serializeSessions(store.listSessions());
  } finally {
    await store.close();
  }
}

const keepAll = (clock: FakeClock, onWarning: (w: JournalWarning) => void) => ({ autoCompact: false as const, ttlMs: NO_TTL, maxSessions: 100_000, onWarning, clock: clock.read });

for (const backend of backends) {
  test(named(backend, 'TTL: listSessions hides an expired session but journals nothing; expireNow() journals the expiry, which survives reopen'), async (t) => {
    const at = await backend.fresh(t);
    const clock = new FakeClock(T0);
    const { store } = await openSessions(t, backend, at, clock, { ttlMs: 10_000 });
    store.ensureSession('old');
    clock.advance(5_000);
    store.ensureSession('young');
    clock.advance(5_001); // 'old' is 10 001 ms idle, 'young' 5 001
    t.deepEqual(store.listSessions().map((s) => s.id), ['young']);
    store.createSession();
    await store.flush();
    t.deepEqual(await ofType(backend, at, 'session.delete'), [], 'a reader decides nothing for the others: no delete is journaled');
    await store.close();

    // Another process whose clock is back at the start still sees 'old'.
    const { store: behind } = await openSessions(t, backend, at, new FakeClock(T0 + 5_000), { ttlMs: 10_000 });
    t.true(behind.listSessions().some((s) => s.id === 'old'));
    await behind.close();

    // The explicit call journals what this clock finds expired.
    const { store: owner } = await openSessions(t, backend, at, clock, { ttlMs: 10_000 });
    t.deepEqual(await owner.expireNow(), { expired: 1, evicted: 0 });
    t.is(owner.getSession('old'), undefined);
    const deletes = await ofType(backend, at, 'session.delete');
    t.deepEqual(deletes.map((l) => l.p), [{ id: 'old', reason: 'expired' }]);
    t.is(deletes[0]!.ts, T0 + 10_001);
    await owner.close();
    // Reopened with the clock back at the start, the session would not be expired by
    // computation: it is gone because the expiry is in the journal.
    const { store: reopened, warnings } = await openSessions(t, backend, at, new FakeClock(T0), { ttlMs: 10_000 });
    t.is(reopened.getSession('old'), undefined);
    t.true(reopened.listSessions().every((s) => s.id !== 'old'));
    await reopened.close();
    t.deepEqual(warnings, []);
  });

  test(named(backend, 'a hidden (expired by this clock, not yet compacted) session comes back, turns and all, when named again'), async (t) => {
    const at = await backend.fresh(t);
    const clock = new FakeClock(T0);
    const { store } = await openSessions(t, backend, at, clock, { ttlMs: 10_000 });
    store.ensureSession('s');
    store.addTurn('s', { prompt: 'p', response: 'r', timestamp: new Date(T0) });
    clock.advance(20_000);
    t.deepEqual(store.listSessions(), []);
    store.ensureSession('s'); // expiry is not journaled, so this is an access
    const [listed] = store.listSessions();
    t.is(listed?.id, 's');
    t.is(listed?.turns.length, 1);
    t.is(listed?.lastAccessedAt.getTime(), T0 + 20_000);
    t.is(listed?.createdAt.getTime(), T0);
    await store.close();
  });

  test(named(backend, 'exactly ttlMs idle is not expired; one millisecond more is'), async (t) => {
    const at = await backend.fresh(t);
    const clock = new FakeClock(T0);
    const { store } = await openSessions(t, backend, at, clock, { ttlMs: 10_000 });
    store.ensureSession('s');
    clock.advance(10_000);
    t.is(store.listSessions().length, 1);
    clock.advance(1);
    t.is(store.listSessions().length, 0);
    await store.close();
  });

  test(named(backend, 'LRU: over maxSessions, listSessions hides the least recently accessed, journals nothing; expireNow() evicts them for good'), async (t) => {
    const at = await backend.fresh(t);
    const clock = new FakeClock(T0);
    const { store } = await openSessions(t, backend, at, clock, { maxSessions: 2 });
    store.ensureSession('a');
    clock.advance(1);
    store.ensureSession('b');
    clock.advance(1);
    store.getSession('a'); // 'a' is now more recent than 'b'
    clock.advance(1);
    store.ensureSession('c'); // one too many: the least recently accessed, 'b', is hidden
    t.deepEqual(store.listSessions().map((s) => s.id), ['c', 'a']);
    await store.flush();
    t.deepEqual(await ofType(backend, at, 'session.delete'), []);
    t.deepEqual(await store.expireNow(), { expired: 0, evicted: 1 });
    t.deepEqual((await ofType(backend, at, 'session.delete')).map((l) => l.p), [{ id: 'b', reason: 'evicted' }]);
    await store.close();
    const { store: reopened } = await openSessions(t, backend, at, clock, { maxSessions: 100 });
    t.deepEqual(reopened.listSessions().map((s) => s.id), ['c', 'a'], 'still evicted under a larger limit');
    await reopened.close();
  });

  // ---- compaction ---------------------------------------------------------

  test(named(backend, 'compaction TTL: sessions not accessed within ttl are dropped (exactly ttl old is kept), journaled as expired deletes that a store open meanwhile applies'), async (t) => {
    const at = await backend.fresh(t);
    const { warnings, onWarning } = collectWarnings();
    const clock = new FakeClock(T0);
    const store = await backend.openSessions(at, { fsync: false, ...keepAll(clock, onWarning) });
    await writeAgedSessions(store, clock, ['old-a', 'old-b'], MINUTE); // T0, T0+1m
    clock.now = T0 + HOUR;
    await writeAgedSessions(store, clock, ['edge', 'fresh-0', 'fresh-1'], MINUTE); // T0+1h, +1h1m, +1h2m
    const now = T0 + HOUR + 2 * HOUR; // 'edge' is exactly 2 h old
    clock.now = now;
    store.getSession('fresh-1'); // the store is in use at `now` (TTL never counts past its newest activity)
    await store.flush();
    // A store left open, on a clock far behind that would expire nothing itself.
    const behind = await backend.openSessions(at, { fsync: false, ...keepAll(new FakeClock(T0), onWarning) });
    t.is(behind.listSessions().length, 5);

    const result = await backend.compact('sessions', at, { onWarning, ttlMs: 2 * HOUR, maxSessions: 100, now: () => now });

    t.is(result.status, 'compacted');
    t.deepEqual(result.removed, { expired: 2 });
    t.is(result.kept, 3);
    t.truthy(result.snapshot, 'a snapshot was written');
    t.deepEqual(await journaledDeletes(backend, at), ['old-a:expired', 'old-b:expired'], 'the expiries are session.delete records in the journal');
    await beforePeerRead(backend, behind);
    t.deepEqual(behind.listSessions().map((s) => s.id).sort(), ['edge', 'fresh-0', 'fresh-1'], 'the open store applied the journaled expiries');
    await Promise.all([behind.close(), store.close()]);
    t.deepEqual((await freshReplay(backend, at, onWarning)).map((s) => s.id), ['edge', 'fresh-0', 'fresh-1']);
    t.deepEqual(warnings, []);
  });

  test(named(backend, 'compaction LRU: the maxSessions most recently accessed are kept (a read refreshes access), the rest journaled as evicted'), async (t) => {
    const at = await backend.fresh(t);
    const { warnings, onWarning } = collectWarnings();
    const clock = new FakeClock(T0);
    const store = await backend.openSessions(at, { fsync: false, ...keepAll(clock, onWarning) });
    await writeAgedSessions(store, clock, ['s0', 's1', 's2', 's3', 's4', 's5'], MINUTE);
    // s0 was created first but is read last: it is the most recently accessed.
    clock.advance(MINUTE);
    t.truthy(store.getSession('s0'));
    await store.close();

    const result = await backend.compact('sessions', at, { onWarning, ttlMs: NO_TTL, maxSessions: 3, now: () => clock.now });

    t.is(result.status, 'compacted');
    t.deepEqual(result.removed, { evicted: 3 });
    t.is(result.kept, 3);
    t.deepEqual(await journaledDeletes(backend, at), ['s1:evicted', 's2:evicted', 's3:evicted']);
    t.deepEqual((await freshReplay(backend, at, onWarning)).map((s) => s.id), ['s0', 's4', 's5']);
    t.deepEqual(warnings, []);
  });

  test(named(backend, 'compaction TTL then LRU together: removed counts both reasons; the replay and the snapshot hold only the survivors'), async (t) => {
    const at = await backend.fresh(t);
    const { warnings, onWarning } = collectWarnings();
    const clock = new FakeClock(T0);
    const store = await backend.openSessions(at, { fsync: false, ...keepAll(clock, onWarning) });
    await writeAgedSessions(store, clock, ['old-0', 'old-1', 'old-2'], MINUTE);
    clock.advance(3 * HOUR);
    await writeAgedSessions(store, clock, ['new-0', 'new-1', 'new-2', 'new-3', 'new-4', 'new-5'], MINUTE);
    await store.close();

    const result = await backend.compact('sessions', at, { onWarning, ttlMs: 2 * HOUR, maxSessions: 4, now: () => clock.now });

    t.deepEqual(result.removed, { expired: 3, evicted: 2 });
    t.is(result.kept, 4);
    t.deepEqual(await journaledDeletes(backend, at), ['new-0:evicted', 'new-1:evicted', 'old-0:expired', 'old-1:expired', 'old-2:expired']);
    const deletes = await ofType(backend, at, 'session.delete');
    // Format 2 (docs/FORMAT.md): ts in epoch ms.
    t.true(deletes.every((r) => r.v === 2 && Number.isSafeInteger(r.seq) && Number.isSafeInteger(r.ts)), 'retention deletes are ordinary records');
    t.deepEqual((await freshReplay(backend, at, onWarning)).map((s) => s.id), ['new-2', 'new-3', 'new-4', 'new-5']);
    const snapshotIds = ((await backend.snapshotEntries(at)) ?? []).map((e) => (e as { id: string }).id).sort();
    t.deepEqual(snapshotIds, ['new-2', 'new-3', 'new-4', 'new-5'], 'the snapshot itself already lacks the removed sessions');
    t.deepEqual(warnings, []);
  });
}
