/**
 * Automatic compaction: a store whose journal outgrows its snapshot
 * (autoCompact { minBytes, growthPercent }) spawns `session-journal compact`
 * in a child process; nothing written is lost. autoCompact: false never
 * compacts. A failed child is not followed by another one for
 * AUTO_COMPACT_RETRY_MS (one that found the lock busy: for
 * AUTO_COMPACT_BUSY_RETRY_MS), and the child is found when the library is
 * installed under a path with a space.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { SessionStore, WarningCodes, compactSessions } from '../../src/index.js';
import { AUTO_COMPACT_BUSY_RETRY_MS, AUTO_COMPACT_RETRY_MS } from '../../src/compact/auto-compact.js';
import { COMPACTION_LOCK_NAME, CompactionLock } from '../../src/storage/file/compaction-lock.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';
import { FakeClock, T0, freshReplay, serializeSessions, snapshotsIn, turnOf, waitFor } from '../helpers/compaction-helpers.js';

const SESSIONS = Array.from({ length: 8 }, (_, i) => `auto-${i}`);
const filler = 'y'.repeat(200);

/** Writes `count` turns round-robin over SESSIONS (timestamped by `clock` when given), flushing every 10; returns the prompts per session. */
async function writeTurns(store: SessionStore, from: number, count: number, prompts: Map<string, string[]>, clock?: FakeClock): Promise<void> {
  for (let i = from; i < from + count; i++) {
    const id = SESSIONS[i % SESSIONS.length]!;
    const prompt = `turn ${i} ${filler}`;
    store.addTurn(id, turnOf(prompt, clock));
    prompts.get(id)!.push(prompt);
    if (i % 10 === 9) await store.flush();
  }
  await store.flush();
}

/** The running automatic compaction of a store, if any (private; the test waits for it to end). */
const compactionOf = (store: SessionStore) => (store as unknown as { autoCompactor?: { running?: Promise<number> } }).autoCompactor?.running;

test('auto-compaction: a store that outgrows minBytes spawns a compaction (a snapshot appears) and nothing is lost', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const store = SessionStore.openSync({ dir, fsync: false, onWarning, autoCompact: { minBytes: 16 * 1024, growthPercent: 100 } });
  const prompts = new Map(SESSIONS.map((id) => [id, [] as string[]]));
  for (const id of SESSIONS) store.ensureSession(id);
  await writeTurns(store, 0, 150, prompts); // ~50 KB of journal

  t.true(await waitFor(() => snapshotsIn(dir).length > 0, 10_000, 50), 'a snapshot appears within 10 s');

  // Keep writing while (or after) it runs.
  await writeTurns(store, 150, 60, prompts);
  for (let i = 0; i < 20 && compactionOf(store); i++) await compactionOf(store);
  const view = serializeSessions(store.listSessions());
  await store.close();
  t.true(await waitFor(() => !fs.existsSync(path.join(dir, 'compact.lock')), 10_000), 'no compaction still runs');

  const replay = await freshReplay(dir, onWarning);
  t.deepEqual(replay.map((s) => s.id), [...SESSIONS].sort());
  for (const s of replay) t.deepEqual(s.turns.map((x) => x.prompt), prompts.get(s.id), `${s.id}: every turn, in order`);
  t.deepEqual(view, replay, "the writer's view equals a fresh replay");
  t.true(fs.existsSync(path.join(dir, 'archive')), 'the folded segment was archived');
  t.deepEqual(warnings, [], 'no AUTO_COMPACT_FAILED (nor any other warning)');
});

test('auto-compaction measures growth against the newest snapshot, also one written by another process after this store opened', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  // Opened on an empty store: the snapshot it knows is none.
  const store = SessionStore.openSync({ dir, fsync: false, onWarning, autoCompact: { minBytes: 4 * 1024, growthPercent: 100 } });
  const prompts = new Map(SESSIONS.map((id) => [id, [] as string[]]));
  for (const id of SESSIONS) store.ensureSession(id);
  await store.flush(); // it now has the live segment open, and will follow the rotation marker rather than reload
  const other = SessionStore.openSync({ dir, fsync: false, onWarning, autoCompact: false });
  await writeTurns(other, 0, 600, prompts); // ~200 KB, all kept: a snapshot of about that size
  await other.close();
  await compactSessions({ dir, onWarning, ttlMs: 1e12 });
  const snapshotBytes = fs.statSync(path.join(dir, snapshotsIn(dir)[0]!)).size;
  t.true(snapshotBytes > 100 * 1024, `snapshot of ${snapshotBytes} bytes`);

  await writeTurns(store, 600, 30, prompts); // ~8 KB past the rotation: over minBytes, far under 100 % of the snapshot
  // The trigger runs after each durable commit, just after flush() resolves: give it time to start a child.
  t.false(await waitFor(() => compactionOf(store) !== undefined, 500), 'no compaction: the journal has not grown by the snapshot size');
  await store.close();
  t.deepEqual(snapshotsIn(dir).length, 1);
  t.deepEqual(warnings, []);
});

test('auto-compaction: autoCompact: false never compacts', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const store = SessionStore.openSync({ dir, fsync: false, onWarning, autoCompact: false });
  const prompts = new Map(SESSIONS.map((id) => [id, [] as string[]]));
  for (const id of SESSIONS) store.ensureSession(id);
  await writeTurns(store, 0, 150, prompts);
  t.is(compactionOf(store), undefined);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  await store.close();
  t.deepEqual(snapshotsIn(dir), []);
  t.false(fs.existsSync(path.join(dir, 'compact.lock')));
  t.false(fs.existsSync(path.join(dir, 'archive')));
  t.deepEqual(fs.readdirSync(dir).filter((n) => n.startsWith('journal-')), ['journal-00000001.ndjson']);
  t.deepEqual(warnings, []);
});

test('auto-compaction: after a failed child, commits start no other one until AUTO_COMPACT_RETRY_MS has passed', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const clock = new FakeClock(T0);
  const store = SessionStore.openSync({ dir, fsync: false, onWarning, clock: clock.read, autoCompact: { minBytes: 4 * 1024, growthPercent: 100 } });
  // A file in place of archive/: every compaction fails fast (NOT_A_DIRECTORY) without changing the store.
  fs.writeFileSync(path.join(dir, 'archive'), 'not a directory\n', { mode: 0o600 });
  const prompts = new Map(SESSIONS.map((id) => [id, [] as string[]]));
  for (const id of SESSIONS) store.ensureSession(id);
  await writeTurns(store, 0, 30, prompts); // ~8 KB: past minBytes
  t.truthy(compactionOf(store), 'a child was started');
  // Polled: the child is unref'd, so awaiting it alone would leave the event loop empty.
  t.true(await waitFor(() => !compactionOf(store), 10_000), 'the child ended');
  t.is(warnings.length, 1);

  for (let i = 0; i < 5; i++) {
    clock.advance(AUTO_COMPACT_RETRY_MS / 10);
    await writeTurns(store, 30 + i, 1, prompts);
    t.is(compactionOf(store), undefined, `commit ${i + 1} after the failure starts no child`);
  }
  clock.advance(AUTO_COMPACT_RETRY_MS / 2);
  await writeTurns(store, 35, 1, prompts);
  t.truthy(compactionOf(store), 'once the back-off has passed, the next commit tries again');
  t.true(await waitFor(() => !compactionOf(store), 10_000), 'the second child ended');
  await store.close();

  t.deepEqual(warnings.map((w) => w.code), [WarningCodes.AUTO_COMPACT_FAILED, WarningCodes.AUTO_COMPACT_FAILED], 'one warning per child');
  t.regex(warnings[0]!.message, /NOT_A_DIRECTORY/);
  t.deepEqual(snapshotsIn(dir), []);
});

test('auto-compaction: the child is found when the library is installed under a directory with a space', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sj sp-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  // An installed copy: the compiled library, its own package.json, and the dependencies.
  const install = path.join(root, 'node_modules', 'session journal');
  fs.cpSync(new URL('../../src/', import.meta.url), path.join(install, 'build', 'src'), { recursive: true });
  fs.writeFileSync(path.join(install, 'package.json'), JSON.stringify({ type: 'module' }));
  fs.symlinkSync(fs.realpathSync(new URL('../../../node_modules/', import.meta.url)), path.join(install, 'node_modules'));
  const lib = (await import(pathToFileURL(path.join(install, 'build', 'src', 'index.js')).href)) as typeof import('../../src/index.js');

  const dir = path.join(root, 'store');
  const { warnings, onWarning } = collectWarnings();
  const store = lib.SessionStore.openSync({ dir, fsync: false, onWarning, autoCompact: { minBytes: 4 * 1024, growthPercent: 100 } });
  const prompts = new Map(SESSIONS.map((id) => [id, [] as string[]]));
  for (const id of SESSIONS) store.ensureSession(id);
  await writeTurns(store as unknown as SessionStore, 0, 30, prompts);
  t.true(await waitFor(() => snapshotsIn(dir).length > 0 || warnings.length > 0, 10_000, 50), 'the child ran');
  t.true(await waitFor(() => !compactionOf(store as unknown as SessionStore), 10_000), 'the child ended');
  await store.close();
  t.deepEqual(warnings, [], 'no AUTO_COMPACT_FAILED (Cannot find module)');
  t.is(snapshotsIn(dir).length, 1);
});

test('auto-compaction: while another compaction holds compact.lock, a child that finds it busy (exit 3) is not followed by another for AUTO_COMPACT_BUSY_RETRY_MS, and warns nothing', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const clock = new FakeClock(T0);
  const store = SessionStore.openSync({ dir, fsync: false, onWarning, clock: clock.read, autoCompact: { minBytes: 4 * 1024, growthPercent: 100 } });
  // Another compaction (cron, say) holds the lock throughout.
  const busy = new CompactionLock(dir, path.join(dir, COMPACTION_LOCK_NAME));
  await busy.acquire(1000);
  try {
    const prompts = new Map(SESSIONS.map((id) => [id, [] as string[]]));
    for (const id of SESSIONS) store.ensureSession(id);
    await writeTurns(store, 0, 30, prompts); // ~8 KB: past minBytes
    t.true(await waitFor(() => compactionOf(store) !== undefined, 5000), 'a child was started');
    // Polled: the child is unref'd, so awaiting it alone would leave the event loop empty.
    const first = compactionOf(store)!;
    t.true(await waitFor(() => !compactionOf(store), 10_000), 'the child ended');
    t.is(await first, 3, 'it found the lock busy');
    for (let i = 0; i < 3; i++) {
      clock.advance(AUTO_COMPACT_BUSY_RETRY_MS / 4);
      await writeTurns(store, 30 + i, 1, prompts);
      t.false(await waitFor(() => compactionOf(store) !== undefined, 200), `commit ${i + 1} starts no child`);
    }
    clock.advance(AUTO_COMPACT_BUSY_RETRY_MS / 2);
    await writeTurns(store, 33, 1, prompts);
    t.true(await waitFor(() => compactionOf(store) !== undefined, 5000), 'after the wait, the next commit asks again');
    const second = compactionOf(store)!;
    t.true(await waitFor(() => !compactionOf(store), 10_000), 'the second child ended');
    t.is(await second, 3);
  } finally {
    await busy.releaseQuietly();
  }
  await store.close();
  t.deepEqual(warnings, [], 'a busy lock is not a failure');
  t.deepEqual(snapshotsIn(dir), []);
});

test("auto-compaction: the child judges TTL at the store's clock (compact --now), not at its own", async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  // Every session is accessed at T0 and the clock stays there: by the wall clock (months
  // or years later) a 24 h TTL would expire them all, by the store's clock none.
  const clock = new FakeClock(T0);
  const store = SessionStore.openSync({ dir, fsync: false, onWarning, clock: clock.read, autoCompact: { minBytes: 16 * 1024, growthPercent: 100 } });
  t.is(store.ttlMs, 24 * 3600 * 1000);
  const prompts = new Map(SESSIONS.map((id) => [id, [] as string[]]));
  for (const id of SESSIONS) store.ensureSession(id);
  await writeTurns(store, 0, 150, prompts, clock); // ~50 KB of journal
  t.true(await waitFor(() => snapshotsIn(dir).length > 0, 10_000, 50), 'a snapshot appears');
  t.true(await waitFor(() => !compactionOf(store), 10_000), 'the child ended');
  await store.close();

  const replay = await freshReplay(dir, onWarning);
  t.deepEqual(replay.map((s) => s.id), [...SESSIONS].sort(), 'no session expired');
  for (const s of replay) t.is(s.lastAccessedAt, new Date(T0).toISOString());
  t.deepEqual(warnings, []);
});
