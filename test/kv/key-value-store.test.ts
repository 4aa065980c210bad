/**
 * KeyValueStore's API: get/set/has/delete/entries, the key rule, values as
 * JSON, reopening, reads that catch up with another store on the same
 * directory, and the reader-side TTL and maxEntries (hidden, never deleted).
 * Every store runs on an explicit clock from TEST_T0.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCodes, KeyValueStore, SessionJournalError, type KeyValueStoreOptions } from '../../src/index.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { TEST_T0 } from '../helpers/fixture-now.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';

const HOUR = 3_600_000;

function open(dir: string, clock: FakeClock, options: Partial<KeyValueStoreOptions> = {}): KeyValueStore {
  return KeyValueStore.openSync({ dir, clock: clock.read, fsync: false, autoCompact: false, ...options });
}

const records = (dir: string) =>
  fs
    .readFileSync(path.join(dir, 'journal-00000001.ndjson'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { t: string; p: Record<string, unknown>; ts: string });

test('get, set, has and delete behave as a Map of JSON values; set returns the store', (t) => {
  const clock = new FakeClock(TEST_T0);
  const kv = open(tempStoreDir(t), clock);
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
  kv.closeSync();
});

test('a value is stored as JSON: what get returns here is what JSON gives every other process, and it is frozen', (t) => {
  const clock = new FakeClock(TEST_T0);
  const dir = tempStoreDir(t);
  const kv = open(dir, clock);
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
  kv.closeSync();
  const again = open(dir, clock);
  t.deepEqual(again.get('k'), expected);
  again.closeSync();
});

test('a value JSON cannot hold throws TypeError and changes nothing', (t) => {
  const clock = new FakeClock(TEST_T0);
  const kv = open(tempStoreDir(t), clock);
  for (const bad of [undefined, () => 1, Symbol('s')]) t.throws(() => kv.set('k', bad), { instanceOf: TypeError });
  t.throws(() => kv.set('k', 10n), { instanceOf: TypeError }, 'BigInt: from the serializer');
  t.false(kv.has('k'));
  kv.closeSync();
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
  test(`a key that is ${name} throws INVALID_KEY from every method`, (t) => {
    const clock = new FakeClock(TEST_T0);
    const kv = open(tempStoreDir(t), clock);
    for (const call of [() => kv.get(key as string), () => kv.set(key as string, 1), () => kv.has(key as string), () => kv.delete(key as string)]) {
      const err = t.throws(call, { instanceOf: SessionJournalError });
      t.is(err?.code, ErrorCodes.INVALID_KEY);
    }
    kv.closeSync();
  });
}

test('keys of 1024 characters, with spaces, slashes, quotes, other scripts and __proto__ are valid', (t) => {
  const clock = new FakeClock(TEST_T0);
  const dir = tempStoreDir(t);
  const kv = open(dir, clock);
  const keys = ['k'.repeat(1024), 'a b/c:"d"', 'сессия-😀', '__proto__', 'constructor'];
  keys.forEach((k, i) => kv.set(k, i));
  kv.closeSync();
  const again = open(dir, clock);
  t.deepEqual(keys.map((k) => again.get(k)), [0, 1, 2, 3, 4]);
  again.closeSync();
});

test('reopening sees everything flushed, deletes included', async (t) => {
  const clock = new FakeClock(TEST_T0);
  const dir = tempStoreDir(t);
  const kv = await KeyValueStore.open({ dir, clock: clock.read, autoCompact: false });
  for (let i = 0; i < 50; i++) kv.set(`exec-${i}`, `sess-${i}`);
  kv.delete('exec-7');
  await kv.flush();
  const fresh = open(dir, clock);
  t.is([...fresh.entries()].length, 49);
  t.is(fresh.get('exec-49'), 'sess-49');
  t.is(fresh.get('exec-7'), undefined);
  fresh.closeSync();
  await kv.close();
  t.throws(() => kv.set('x', 1), { code: ErrorCodes.CLOSED });
});

test("reads catch up with another process's flushed writes; a local set over a peer's commit wins, as the file says", async (t) => {
  const clock = new FakeClock(TEST_T0);
  const dir = tempStoreDir(t);
  const a = open(dir, clock);
  const b = open(dir, clock);
  a.set('shared', 'from-a');
  await a.flush();
  t.is(b.get('shared'), 'from-a');
  // b's set is queued while a commits another value: b's goes later in the file, so b's wins everywhere.
  b.set('shared', 'from-b');
  a.set('shared', 'from-a-2');
  await a.flush();
  t.is(b.get('shared'), 'from-b', "b's queued value stays on top of a's commit");
  await b.flush();
  t.is(a.get('shared'), 'from-b');
  const fresh = open(dir, clock);
  t.is(fresh.get('shared'), 'from-b', 'every view equals a fresh replay');
  for (const s of [a, b, fresh]) s.closeSync();
});

test('get refreshes the last use with a deferred kv.touch, coalesced; has and entries do not', async (t) => {
  const clock = new FakeClock(TEST_T0);
  const dir = tempStoreDir(t);
  const kv = open(dir, clock);
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
  const touches = records(dir).filter((r) => r.t === 'kv.touch');
  t.deepEqual(touches.map((r) => [r.p, r.ts]), [[{ key: 'a' }, TEST_T0 + 3000]]); // format 2: ts in epoch ms
  kv.closeSync();
});

test('entries: most recently used first, ties by key, at most maxEntries; beyond it keys are hidden, not deleted', async (t) => {
  const clock = new FakeClock(TEST_T0);
  const dir = tempStoreDir(t);
  const kv = open(dir, clock, { maxEntries: 3 });
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
  t.false(records(dir).some((r) => r.t === 'kv.delete'), 'nothing journaled');
  kv.closeSync();
});

test("TTL: a key idle longer than ttlMs by this process's clock reads as absent and is left out of entries; exactly ttlMs is live; a set brings it back", async (t) => {
  const clock = new FakeClock(TEST_T0);
  const dir = tempStoreDir(t);
  const kv = open(dir, clock, { ttlMs: HOUR });
  kv.set('old', 1);
  kv.set('edge', 2);
  clock.advance(1);
  kv.set('new', 3);
  clock.advance(HOUR);
  t.is(kv.get('new'), 3, 'exactly ttlMs idle is live');
  t.is(kv.get('old'), undefined);
  t.false(kv.has('edge'));
  t.deepEqual([...kv.entries()].map(([k]) => k), ['new']);
  t.true(fs.existsSync(dir));
  await kv.flush();
  // Another process whose clock is behind still sees them: nothing was deleted.
  const slow = open(dir, new FakeClock(TEST_T0 + 10), { ttlMs: HOUR });
  t.is(slow.get('edge'), 2, 'hidden only in the view whose clock finds it expired');
  slow.closeSync();
  t.false(kv.delete('old'), 'delete of a hidden key says it was not there...');
  kv.set('edge', 'again');
  t.is(kv.get('edge'), 'again', '...and a set makes a hidden key live again');
  await kv.flush();
  const fresh = open(dir, clock, { ttlMs: HOUR });
  t.deepEqual([...fresh.entries()].map(([k]) => k).sort(), ['edge', 'new']);
  t.is(fresh.get('old'), undefined, 'old was deleted for everyone');
  fresh.closeSync();
  kv.closeSync();
});

test('options out of range throw INVALID_OPTION before any file is made', (t) => {
  const dir = tempStoreDir(t);
  for (const options of [{ ttlMs: 0 }, { maxEntries: 0 }, { maxEntries: 1.5 }, { ttlMs: Number.NaN }]) {
    t.throws(() => KeyValueStore.openSync({ dir, ...options }), { code: ErrorCodes.INVALID_OPTION });
  }
  t.false(fs.existsSync(dir));
});

test('the deferred touch of a process that only reads is written at the latest on exit, and warnings go to onWarning only', async (t) => {
  const clock = new FakeClock(TEST_T0);
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const kv = open(dir, clock, { onWarning, touchFlushMs: 60_000 });
  kv.set('a', 1);
  await kv.flush();
  clock.advance(5000);
  kv.get('a');
  t.is(records(dir).length, 1, 'the touch waits');
  kv.closeSync();
  t.deepEqual(records(dir).map((r) => r.t), ['kv.set', 'kv.touch']);
  t.deepEqual(warnings, []);
});
