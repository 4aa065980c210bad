/**
 * The compactor's clock guard (src/compact/clock-guard.ts): TTL never counts
 * past the store's own newest activity, a clock ahead of the file system's is
 * refused before anything changes, a clock behind the store is reported, and
 * archive ages are measured on the file system's clock.
 *
 * "Now" of these tests: the store is written by correct clocks at T0
 * (2026-01-01T12:00Z); the compactor's `now` is T0 plus its skew. The file
 * system's clock is the machine's (anything from 2026 on, but before 2036).
 */
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { SessionJournalError, compactSessions, type JournalWarning } from '../../src/index.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';
import { DAY, FakeClock, HOUR, T0, fingerprint, freshReplay, openStore, turnOf } from '../helpers/compaction-helpers.js';

const TTL = DAY;
const YEAR = 365 * DAY;

/** Writes each session (ensure + one turn) at its own access time, on a store whose clock is then left at `T0`. */
async function writeAt(dir: string, onWarning: (w: JournalWarning) => void, accesses: Array<[string, number]>): Promise<void> {
  const clock = new FakeClock(T0);
  const store = openStore(dir, onWarning, { clock: clock.read });
  for (const [id, at] of accesses) {
    clock.now = at;
    store.ensureSession(id);
    store.addTurn(id, turnOf(`hello ${id}`, clock));
  }
  await store.close();
}

const ids = async (dir: string, onWarning: (w: JournalWarning) => void) => (await freshReplay(dir, onWarning)).map((s) => s.id);
const archived = (dir: string) => fs.readdirSync(path.join(dir, 'archive')).filter((n) => n.endsWith('.gz'));

test('a compactor 10 years ahead is refused (CLOCK_SKEW) before anything changes: sessions, segments and archive as they were', async (t) => {
  const dir = tempStoreDir(t);
  const { onWarning } = collectWarnings();
  await writeAt(dir, onWarning, [['a', T0 - HOUR]]);
  await compactSessions({ dir, onWarning, ttlMs: TTL, now: () => T0 }); // fills archive/
  await writeAt(dir, onWarning, [['b', T0]]);
  t.true(archived(dir).length > 0);
  const before = fingerprint(dir);

  const err = await t.throwsAsync(compactSessions({ dir, onWarning, ttlMs: TTL, now: () => T0 + 10 * YEAR }), { instanceOf: SessionJournalError });
  t.is(err?.code, 'CLOCK_SKEW');
  t.deepEqual(fingerprint(dir), before, 'nothing changed, nothing pruned');
  t.deepEqual(await ids(dir, onWarning), ['a', 'b']);
});

test('a compactor 2 days ahead expires only what is idle by the store\'s own newest activity, not what is in use', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  await writeAt(dir, onWarning, [
    ['stale', T0 - 2 * DAY],
    ['live-1', T0 - HOUR],
    ['live-2', T0],
  ]);
  const result = await compactSessions({ dir, onWarning, ttlMs: TTL, now: () => T0 + 2 * DAY });
  t.deepEqual(result.removed, { expired: 1 });
  t.deepEqual(await ids(dir, onWarning), ['live-1', 'live-2']);
  t.deepEqual(warnings, []);
});

test('a compactor 2 days behind warns CLOCK_SKEW once and expires only what is idle by its own clock', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  await writeAt(dir, onWarning, [
    ['idle-by-any-clock', T0 - 5 * DAY],
    ['live-1', T0 - HOUR],
    ['live-2', T0],
  ]);
  const result = await compactSessions({ dir, onWarning, ttlMs: TTL, now: () => T0 - 2 * DAY });
  t.is(result.status, 'compacted');
  t.deepEqual(result.removed, { expired: 1 });
  t.deepEqual(await ids(dir, onWarning), ['live-1', 'live-2']);
  t.deepEqual(
    warnings.map((w) => w.code),
    ['CLOCK_SKEW'],
  );
});

test('a store idle for a month: cron expires all but the last TTL window of its activity, and that goes once the store is used again', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  await writeAt(dir, onWarning, [
    ['old', T0 - 3 * DAY],
    ['recent', T0 - 2 * HOUR],
    ['last', T0],
  ]);
  const later = T0 + 30 * DAY;
  t.deepEqual((await compactSessions({ dir, onWarning, ttlMs: TTL, now: () => later })).removed, { expired: 1 });
  t.deepEqual(await ids(dir, onWarning), ['last', 'recent'].sort());

  // A reader a month on hides them; its first write moves the store's activity on.
  const clock = new FakeClock(later);
  const store = openStore(dir, onWarning, { clock: clock.read, ttlMs: TTL });
  t.deepEqual(store.listSessions(), []);
  store.ensureSession('new');
  await store.close();
  t.deepEqual((await compactSessions({ dir, onWarning, ttlMs: TTL, now: () => later })).removed, { expired: 2 });
  t.deepEqual(await ids(dir, onWarning), ['new']);
  t.deepEqual(warnings, []);
});

test('archive ages count to the file system\'s clock: a compactor allowed far ahead (maxClockSkewMs) prunes nothing young and expires nothing in use', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  await writeAt(dir, onWarning, [['a', T0]]);
  await compactSessions({ dir, onWarning, ttlMs: TTL, now: () => T0 });
  await writeAt(dir, onWarning, [['b', T0]]);
  const young = archived(dir);
  t.true(young.length > 0);

  const result = await compactSessions({ dir, onWarning, ttlMs: TTL, now: () => T0 + 10 * YEAR, maxClockSkewMs: 20 * YEAR });
  t.is(result.status, 'compacted');
  t.is(result.archiveFilesPruned, 0);
  t.deepEqual(result.removed, {});
  for (const name of young) t.true(archived(dir).includes(name), `${name} is still archived`);
  t.deepEqual(await ids(dir, onWarning), ['a', 'b']);
  t.deepEqual(warnings, []);
});
