/**
 * KeyValueStore's API on every backend: get/set/has/delete/entries, the key
 * rule, values as JSON, reopening, reads that catch up with another store
 * (after catchUp()), the deferred touch, the reader-side TTL and maxEntries
 * (hidden, never deleted), and option checks. Every store runs on an
 * explicit clock from TEST_T0. (Moved from test/kv/key-value-store.test.ts;
 * retention by compaction is kv-retention.test.ts.)
 */
import test, { type ExecutionContext } from 'ava';
import { ErrorCodes, SessionJournalError, type KeyValueStore, type KeyValueStoreOptions } from '../../src/index.js';
import { backends } from './every-backend.js';
import { type Backend, type Location, type Opts } from './backends.js';
import { FakeClock, TEST_T0, beforePeerRead, codeOf, collectWarnings, named, track } from './harness.js';

const HOUR = 3_600_000;

async function open(t: ExecutionContext, backend: Backend, at: Location, clock: FakeClock, options: Opts<KeyValueStoreOptions> = {}): Promise<KeyValueStore> {
  return track(t, await backend.openKv(at, { clock: clock.read, fsync: false, autoCompact: false, ...options }));
}

const records = async (backend: Backend, at: Location) => (await backend.lines(at)).flatMap((l) => (l.record ? [l.record] : []));

for (const backend of backends) {
  test(named(backend, 'get, set, has and delete behave as a Map of JSON values; set returns the store'), async (t) => {
    const clock = new FakeClock(TEST_T0);
    const kv = await open(t, backend, await backend.fresh(t), clock);
    t.is(kv.get('exec-1'), undefined);
    t.false(kv.has('exec-1'));
    t.is(kv.set('exec-1', 'sess-1'), kv);
    kv.set('exec-2', { model: 'o3', turns: [1, 2] }).set('exec-3', null);
    t.is(kv.get('exec-1'), 'sess-1');
    t.deepEqual(kv.get('exec-2'), { model: 'o3', turns: [1, 2] });
    t.is(kv.get('exec-3'), null, 'null is a value');
    t.true(kv.has('exec-3'));
    kv.set('exec-1', 'sess-1b');
    t.is(kv.get('exec-1'), 'sess-1b');
    t.true(kv.delete('exec-1'));
    t.false(kv.delete('exec-1'));
    t.is(kv.get('exec-1'), undefined);
    await kv.close();
  });

  test(named(backend, 'a value is stored as JSON: what get returns here is what JSON gives every other process, and it is frozen'), async (t) => {
    const clock = new FakeClock(TEST_T0);
    const at = await backend.fresh(t);
    const kv = await open(t, backend, at, clock);
    const value = { b: [1, undefined, new Date(TEST_T0)], a: undefined, n: NaN };
    kv.set('k', value);
    const expected = { b: [1, null, new Date(TEST_T0).toISOString()], n: null };
    t.deepEqual(kv.get('k'), expected);
    t.deepEqual(Object.keys(kv.get('k') as object), ['b', 'n'], 'keys sorted, as in the journal');
    value.b.push(4);
    t.deepEqual(kv.get('k'), expected, 'the caller changing its object later changes nothing stored');
    t.throws(() => {
      ((kv.get('k') as { b: unknown[] }).b as unknown[]).push(5);
    }, { instanceOf: TypeError }, 'a stored value is deeply frozen');
    await kv.close();
    const again = await open(t, backend, at, clock);
    t.deepEqual(again.get('k'), expected);
    await again.close();
  });

  test(named(backend, 'a value JSON cannot hold throws TypeError and changes nothing'), async (t) => {
    const clock = new FakeClock(TEST_T0);
    const at = await backend.fresh(t);
    const kv = await open(t, backend, at, clock);
    for (const bad of [undefined, () => 1, Symbol('s')]) t.throws(() => kv.set('k', bad), { instanceOf: TypeError });
    t.throws(() => kv.set('k', 10n), { instanceOf: TypeError }, 'BigInt: from the serializer');
    t.throws(() => kv.set('k', { toJSON: () => undefined }), { instanceOf: TypeError, message: /without "value"/ }, 'a value whose JSON is nothing: a replay would skip it');
    t.false(kv.has('k'));
    await kv.flush();
    t.deepEqual(await records(backend, at), [], 'nothing journaled');
    await kv.close();
  });

  test(named(backend, 'set and delete on a store opened readOnly throw READ_ONLY; get leaves no trace'), async (t) => {
    const clock = new FakeClock(TEST_T0);
    const at = await backend.fresh(t);
    const writer = await open(t, backend, at, clock);
    writer.set('k', 1);
    await writer.close();
    const reader = await open(t, backend, at, clock, { readOnly: true });
    t.is(codeOf(t.throws(() => reader.set('k', 2))), ErrorCodes.READ_ONLY);
    t.is(codeOf(t.throws(() => reader.delete('k'))), ErrorCodes.READ_ONLY);
    t.is(reader.get('k'), 1);
    await reader.close();
    t.is((await records(backend, at)).length, 1, 'only the writer\'s record');
  });

  for (const [name, key] of [
    ['the empty string', ''],
    ['1025 characters', 'k'.repeat(1025)],
    ['a newline', 'exec\n1'],
    ['a NUL', 'exec\u00001'],
    ['DEL', 'exec\u007f'],
    ['a number', 42],
    ['undefined', undefined],
  ] as const) {
    test(named(backend, `a key that is ${name} throws INVALID_KEY from every method`), async (t) => {
      const clock = new FakeClock(TEST_T0);
      const kv = await open(t, backend, await backend.fresh(t), clock);
      for (const call of [() => kv.get(key as string), () => kv.set(key as string, 1), () => kv.has(key as string), () => kv.delete(key as string)]) {
        const err = t.throws(call, { instanceOf: SessionJournalError });
        t.is(err?.code, ErrorCodes.INVALID_KEY);
      }
      await kv.close();
    });
  }

  test(named(backend, 'keys of 1024 characters, with spaces, slashes, quotes, other scripts and __proto__ are valid'), async (t) => {
    const clock = new FakeClock(TEST_T0);
    const at = await backend.fresh(t);
    const kv = await open(t, backend, at, clock);
    const keys = ['k'.repeat(1024), 'a b/c:"d"', 'сессия-😀', '__proto__', 'constructor'];
    keys.forEach((k, i) => kv.set(k, i));
    await kv.close();
    const again = await open(t, backend, at, clock);
    t.deepEqual(keys.map((k) => again.get(k)), [0, 1, 2, 3, 4]);
    await again.close();
  });

  test(named(backend, 'reopening sees everything flushed, deletes included'), async (t) => {
    const clock = new FakeClock(TEST_T0);
    const at = await backend.fresh(t);
    const kv = track(t, await backend.openKv(at, { clock: clock.read, autoCompact: false }));
    for (let i = 0; i < 50; i++) kv.set(`exec-${i}`, `sess-${i}`);
    kv.delete('exec-7');
    await kv.flush();
    const fresh = await open(t, backend, at, clock);
    t.is([...fresh.entries()].length, 49);
    t.is(fresh.get('exec-49'), 'sess-49');
    t.is(fresh.get('exec-7'), undefined);
    await fresh.close();
    await kv.close();
    t.throws(() => kv.set('x', 1), { code: ErrorCodes.CLOSED });
  });

  test(named(backend, "reads catch up with another process's flushed writes; of two crossing sets the later in the store wins, in every view, already once the first commit is read"), async (t) => {
    const clock = new FakeClock(TEST_T0);
    const at = await backend.fresh(t);
    const a = await open(t, backend, at, clock);
    const b = await open(t, backend, at, clock);
    a.set('shared', 'from-a');
    await a.flush();
    await beforePeerRead(backend, b);
    t.is(b.get('shared'), 'from-a');
    // The two sets cross: which commits first is the storage's business (the lock, or the head check).
    b.set('shared', 'from-b');
    t.is(b.get('shared'), 'from-b', "b reads its own queued set");
    a.set('shared', 'from-a-2');
    await a.flush();
    await beforePeerRead(backend, b);
    // b's queued set stays on top of a's commit, or (b's commit was first) a's is on top of b's: either way the final value.
    const seenByB = b.get('shared');
    await b.flush();
    const sets = (await records(backend, at)).filter((r) => r.t === 'kv.set' && r.p.key === 'shared').map((r) => r.p.value);
    t.deepEqual(sets.slice(0, 1), ['from-a']);
    t.deepEqual([...sets.slice(1)].sort(), ['from-a-2', 'from-b'], 'both crossing sets are in the store');
    const winner = sets.at(-1) as string | undefined;
    t.is(seenByB, winner, "b's view after a's commit is already the final one");
    await beforePeerRead(backend, a);
    t.is(a.get('shared'), winner);
    const fresh = await open(t, backend, at, clock);
    t.is(fresh.get('shared'), winner, 'every view equals a fresh replay');
    for (const s of [a, b, fresh]) await s.close();
  });

  test(named(backend, 'get refreshes the last use with a deferred kv.touch, coalesced; has and entries do not'), async (t) => {
    const clock = new FakeClock(TEST_T0);
    const at = await backend.fresh(t);
    const kv = await open(t, backend, at, clock);
    kv.set('a', 1);
    clock.advance(1000);
    kv.set('b', 2);
    await kv.flush();
    clock.advance(1000);
    t.deepEqual([...kv.entries()].map(([k]) => k), ['b', 'a']);
    kv.get('a');
    clock.advance(1000);
    kv.get('a'); // the same queued touch, moved forward
    kv.has('b');
    t.deepEqual([...kv.entries()].map(([k]) => k), ['a', 'b'], 'a read makes a key the most recently used');
    await kv.flush();
    const touches = (await records(backend, at)).filter((r) => r.t === 'kv.touch');
    t.deepEqual(touches.map((r) => [r.p, r.ts]), [[{ key: 'a' }, TEST_T0 + 3000]]); // format 2: ts in epoch ms
    await kv.close();
  });

  test(named(backend, 'entries: most recently used first, ties by key, at most maxEntries; beyond it keys are hidden, not deleted'), async (t) => {
    const clock = new FakeClock(TEST_T0);
    const at = await backend.fresh(t);
    const kv = await open(t, backend, at, clock, { maxEntries: 3 });
    for (const k of ['d', 'c', 'b']) kv.set(k, k); // the same instant: ordered by key
    clock.advance(1);
    kv.set('e', 'e');
    clock.advance(1);
    kv.set('a', 'a');
    t.deepEqual([...kv.entries()], [['a', 'a'], ['e', 'e'], ['b', 'b']]);
    clock.advance(1);
    t.is(kv.get('d'), 'd', 'a key beyond maxEntries still reads: only compaction evicts');
    t.deepEqual([...kv.entries()].map(([k]) => k), ['d', 'a', 'e'], 'and reading it made it the most recently used');
    await kv.flush();
    t.false((await records(backend, at)).some((r) => r.t === 'kv.delete'), 'nothing journaled');
    await kv.close();
  });

  test(named(backend, "TTL: a key idle longer than ttlMs by this process's clock reads as absent and is left out of entries; exactly ttlMs is live; a set brings it back"), async (t) => {
    const clock = new FakeClock(TEST_T0);
    const at = await backend.fresh(t);
    const kv = await open(t, backend, at, clock, { ttlMs: HOUR });
    kv.set('old', 1);
    kv.set('edge', 2);
    clock.advance(1);
    kv.set('new', 3);
    clock.advance(HOUR);
    t.is(kv.get('new'), 3, 'exactly ttlMs idle is live');
    t.is(kv.get('old'), undefined);
    t.false(kv.has('edge'));
    t.deepEqual([...kv.entries()].map(([k]) => k), ['new']);
    t.false(await backend.untouched(at), 'the store is there');
    await kv.flush();
    // Another process whose clock is behind still sees them: nothing was deleted.
    const slow = await open(t, backend, at, new FakeClock(TEST_T0 + 10), { ttlMs: HOUR });
    t.is(slow.get('edge'), 2, 'hidden only in the view whose clock finds it expired');
    await slow.close();
    t.false(kv.delete('old'), 'delete of a hidden key says it was not there...');
    kv.set('edge', 'again');
    t.is(kv.get('edge'), 'again', '...and a set makes a hidden key live again');
    await kv.flush();
    const fresh = await open(t, backend, at, clock, { ttlMs: HOUR });
    t.deepEqual([...fresh.entries()].map(([k]) => k).sort(), ['edge', 'new']);
    t.is(fresh.get('old'), undefined, 'old was deleted for everyone');
    await fresh.close();
    await kv.close();
  });

  test(named(backend, 'options out of range throw INVALID_OPTION before anything is made'), async (t) => {
    const at = await backend.fresh(t);
    for (const options of [{ ttlMs: 0 }, { maxEntries: 0 }, { maxEntries: 1.5 }, { ttlMs: Number.NaN }]) {
      await t.throwsAsync(backend.openKv(at, options), { code: ErrorCodes.INVALID_OPTION });
    }
    t.true(await backend.untouched(at));
  });

  test(named(backend, 'the deferred touch of a process that only reads is written at the latest on close, and warnings go to onWarning only'), async (t) => {
    const clock = new FakeClock(TEST_T0);
    const at = await backend.fresh(t);
    const { warnings, onWarning } = collectWarnings();
    const kv = await open(t, backend, at, clock, { onWarning, touchFlushMs: 60_000 });
    kv.set('a', 1);
    await kv.flush();
    clock.advance(5000);
    kv.get('a');
    t.is((await records(backend, at)).length, 1, 'the touch waits');
    await kv.close();
    t.deepEqual((await records(backend, at)).map((r) => r.t), ['kv.set', 'kv.touch']);
    t.deepEqual(warnings, []);
  });
}
