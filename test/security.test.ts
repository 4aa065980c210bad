import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { SessionJournalError, SessionStore, type SessionStoreOptions } from '../src/index.js';
import { COMPACTION_LOCK_NAME, CompactionLock } from '../src/storage/file/compaction-lock.js';
import { LOCK_NAME } from '../src/storage/file/store-files.js';
import { StoreLock } from '../src/storage/file/store-lock.js';
import { collectWarnings, tempStoreDir } from './helpers/temp-store.js';
import { makeFreshLock } from './helpers/held-lock.js';

const SEGMENT_1 = 'journal-00000001.ndjson';
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Opens a store, closing it when the test ends (before its directory is removed). */
function openTracked(t: ExecutionContext, options: SessionStoreOptions): SessionStore {
  const store = SessionStore.openSync({ fsync: false, onWarning: quiet, ...options });
  t.teardown(() => {
    try {
      store.closeSync();
    } catch {
      // reported by the test itself
    }
  });
  return store;
}

/** The error `fn` throws, which must be a SessionJournalError. */
function journalError(t: ExecutionContext, fn: () => unknown): SessionJournalError {
  const err = t.throws(fn, { instanceOf: SessionJournalError });
  if (!(err instanceof SessionJournalError)) throw new Error('not a SessionJournalError');
  t.true(err instanceof Error);
  return err;
}

const quiet = (): void => undefined;

const mode = (p: string) => fs.lstatSync(p).mode & 0o777;

/** A private store directory made by hand, with an optional mode. */
function makeDir(t: ExecutionContext, dirMode = 0o700): string {
  const dir = tempStoreDir(t);
  fs.mkdirSync(dir, { mode: 0o700 });
  fs.chmodSync(dir, dirMode);
  return dir;
}

/** A line the store would have written. */
const createLine = (seq: number, id: string) => `{"v":1,"seq":${seq},"ts":"2026-01-01T00:00:00.000Z","w":"1@test","t":"session.create","p":{"id":"${id}"}}\n`;

test('the store directory is created 0700 and its files 0600', async (t) => {
  const dir = tempStoreDir(t);
  const previous = process.umask(0o000); // even a permissive umask must not widen them
  let store: SessionStore;
  try {
    store = openTracked(t, { dir: path.join(dir, 'nested', 'deeper') });
  } finally {
    process.umask(previous);
  }
  const storeDir = store.dir;
  t.is(mode(storeDir), 0o700);
  store.ensureSession('s');
  store.addTurn('s', { prompt: 'p', response: 'r', timestamp: new Date() });
  await store.flush();
  const files = fs.readdirSync(storeDir).filter((n) => fs.lstatSync(path.join(storeDir, n)).isFile());
  t.true(files.includes(SEGMENT_1));
  for (const name of files) t.is(mode(path.join(storeDir, name)), 0o600, name);
  await store.close();
});

test('files created under a permissive umask are still 0600', async (t) => {
  const dir = makeDir(t);
  const previous = process.umask(0o000);
  try {
    const store = openTracked(t, { dir });
    store.ensureSession('s');
    store.flushSync();
  } finally {
    process.umask(previous);
  }
  t.is(mode(path.join(dir, SEGMENT_1)), 0o600);
});

for (const [label, dirMode] of [
  ['group-writable (0770)', 0o770],
  ['world-writable (0707)', 0o707],
  ['group-writable only (0720)', 0o720],
  ['world-writable only (0702)', 0o702],
  ['world-writable and sticky (1777)', 0o1777],
] as const) {
  test(`a ${label} store directory is refused with UNSAFE_PERMISSIONS`, (t) => {
    const dir = makeDir(t, dirMode);
    const err = journalError(t, () => SessionStore.openSync({ dir, fsync: false, onWarning: quiet }));
    t.is(err.code, 'UNSAFE_PERMISSIONS');
    t.deepEqual(fs.readdirSync(dir), [], 'nothing was written into it');
  });
}

test('a group- or world-readable but not writable store directory (0750, 0755) is accepted', (t) => {
  for (const dirMode of [0o750, 0o755]) {
    const dir = makeDir(t, dirMode);
    const store = openTracked(t, { dir });
    t.deepEqual(store.listSessions(), []);
    store.closeSync();
  }
});

test('a symlinked store directory is refused with SYMLINK_REFUSED', (t) => {
  const real = makeDir(t);
  const link = `${real}-link`;
  fs.symlinkSync(real, link);
  t.teardown(() => fs.rmSync(link, { force: true }));
  const err = journalError(t, () => SessionStore.openSync({ dir: link, fsync: false, onWarning: quiet }));
  t.is(err.code, 'SYMLINK_REFUSED');
  t.deepEqual(fs.readdirSync(real), []);
});

test('a dangling symlink in place of the store directory is refused, not followed to create a directory', (t) => {
  const root = makeDir(t);
  const target = path.join(root, 'elsewhere');
  const link = path.join(root, 'store');
  fs.symlinkSync(target, link);
  const err = journalError(t, () => SessionStore.openSync({ dir: link, fsync: false, onWarning: quiet }));
  t.is(err.code, 'SYMLINK_REFUSED');
  t.false(fs.existsSync(target), 'the link target was not created');
});

test('a journal segment that is a symlink to a file outside the store is refused with SYMLINK_REFUSED', (t) => {
  const dir = makeDir(t);
  const outside = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sj-outside-')), 'victim.ndjson');
  t.teardown(() => fs.rmSync(path.dirname(outside), { recursive: true, force: true }));
  fs.writeFileSync(outside, createLine(1, 'planted'), { mode: 0o600 });
  fs.symlinkSync(outside, path.join(dir, SEGMENT_1));
  const before = fs.readFileSync(outside, 'utf8');
  const err = journalError(t, () => SessionStore.openSync({ dir, fsync: false, onWarning: quiet }));
  t.is(err.code, 'SYMLINK_REFUSED');
  t.is((err.cause as NodeJS.ErrnoException | undefined)?.code, 'ELOOP', 'the system error is kept as cause');
  t.is(fs.readFileSync(outside, 'utf8'), before, 'the outside file is untouched');
});

test('a later journal segment that is a symlink is refused too', (t) => {
  const dir = makeDir(t);
  // segment 1 ends in a rotation marker, so segment 2 is the live one and must be opened
  fs.writeFileSync(path.join(dir, SEGMENT_1), createLine(1, 'a') + '{"v":1,"seq":2,"ts":"2026-01-01T00:00:00.000Z","w":"1@test","t":"journal.rotate","p":{"next":2}}\n', { mode: 0o600 });
  const outside = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sj-outside-')), 'victim.ndjson');
  t.teardown(() => fs.rmSync(path.dirname(outside), { recursive: true, force: true }));
  fs.writeFileSync(outside, createLine(3, 'planted'), { mode: 0o600 });
  fs.symlinkSync(outside, path.join(dir, 'journal-00000002.ndjson'));
  const err = journalError(t, () => SessionStore.openSync({ dir, fsync: false, onWarning: quiet }));
  t.is(err.code, 'SYMLINK_REFUSED');
});

test('a snapshot that is a symlink is refused with SYMLINK_REFUSED', (t) => {
  const dir = makeDir(t);
  const outside = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sj-outside-')), 'snap.ndjson');
  t.teardown(() => fs.rmSync(path.dirname(outside), { recursive: true, force: true }));
  fs.writeFileSync(
    outside,
    '{"v":1,"kind":"snapshot","segment":2,"seq":1,"ts":"2026-01-01T00:00:00.000Z"}\n' +
      '{"id":"planted","createdAt":"2026-01-01T00:00:00.000Z","lastAccessedAt":"2026-01-01T00:00:00.000Z","turns":[]}\n' +
      '{"end":true,"entries":1}\n',
  );
  fs.symlinkSync(outside, path.join(dir, 'snapshot-00000002.ndjson'));
  const { onWarning } = collectWarnings();
  let store: SessionStore | undefined;
  const err = t.throws(() => {
    store = SessionStore.openSync({ dir, fsync: false, onWarning });
  });
  t.teardown(() => store?.closeSync());
  t.true(err instanceof SessionJournalError);
  t.is((err as SessionJournalError | undefined)?.code, 'SYMLINK_REFUSED');
  t.is(store?.getSession('planted'), undefined, 'the planted session was not loaded');
});

test('a store path that is a regular file is refused with NOT_A_DIRECTORY', (t) => {
  const dir = tempStoreDir(t);
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  fs.writeFileSync(dir, 'not a directory');
  const err = journalError(t, () => SessionStore.openSync({ dir, fsync: false, onWarning: quiet }));
  t.is(err.code, 'NOT_A_DIRECTORY');
  t.is(fs.readFileSync(dir, 'utf8'), 'not a directory');
});

test('a segment that is not a regular file (a FIFO) is refused with NOT_A_FILE', (t) => {
  const dir = makeDir(t);
  try {
    execFileSync('mkfifo', ['-m', '600', path.join(dir, SEGMENT_1)]);
  } catch {
    t.pass('mkfifo unavailable');
    return;
  }
  const err = journalError(t, () => SessionStore.openSync({ dir, fsync: false, onWarning: quiet }));
  t.is(err.code, 'NOT_A_FILE');
});

test('a file-system failure is an IO_ERROR with the system error kept as cause', (t) => {
  const root = makeDir(t);
  const file = path.join(root, 'plain-file');
  fs.writeFileSync(file, 'x');
  const err = journalError(t, () => SessionStore.openSync({ dir: path.join(file, 'store'), fsync: false, onWarning: quiet }));
  t.is(err.code, 'IO_ERROR');
  t.is((err.cause as NodeJS.ErrnoException | undefined)?.code, 'ENOTDIR');
  t.is(err.name, 'SessionJournalError');
  t.true(Object.isFrozen(err.details));
});

test('a lock that is never released gives LOCK_TIMEOUT with the lock error as cause', async (t) => {
  const dir = makeDir(t);
  makeFreshLock(dir, 'journal.lock'); // held by "someone"
  const store = openTracked(t, { dir, lockTimeoutMs: 200 });
  store.ensureSession('s');
  const err = await t.throwsAsync(store.flush(), { instanceOf: SessionJournalError });
  t.is(err?.code, 'LOCK_TIMEOUT');
  t.is((err?.cause as NodeJS.ErrnoException | undefined)?.code, 'EEXIST', 'the last mkdir of the lock directory found it held');
  const syncErr = journalError(t, () => store.flushSync());
  t.is(syncErr.code, 'LOCK_TIMEOUT');
  fs.rmdirSync(path.join(dir, 'journal.lock'));
  store.flushSync();
  t.is(fs.readFileSync(path.join(dir, SEGMENT_1), 'utf8').split('\n').filter(Boolean).length, 1, 'written once the lock is free');
});

test('a commit that fails on the file system rejects flush() with a SessionJournalError (IO_ERROR), not a bare system error', async (t) => {
  const root = makeDir(t);
  const dir = path.join(root, 'store');
  const store = SessionStore.openSync({ dir, fsync: false, onWarning: () => undefined });
  t.teardown(() => {
    try {
      store.closeSync();
    } catch {
      // the directory is gone: expected
    }
  });
  store.ensureSession('s');
  fs.rmSync(dir, { recursive: true, force: true }); // every commit now fails (ENOENT)
  const err = await t.throwsAsync(store.flush());
  t.true(err instanceof SessionJournalError, `got ${String(err)}`);
  t.is((err as SessionJournalError | undefined)?.code, 'IO_ERROR');
  t.is(((err as Error | undefined)?.cause as NodeJS.ErrnoException | undefined)?.code, 'ENOENT');
});

test('lock directories (journal.lock, compact.lock) are 0700 while held, even under umask 022', async (t) => {
  const dir = makeDir(t);
  const umask = process.umask(0o022);
  t.teardown(() => process.umask(umask));
  const journalLock = path.join(dir, LOCK_NAME);
  const store = new StoreLock({ dir, lockPath: journalLock, timeoutMs: 1000, staleMs: 10_000, onCompromised: quiet });
  t.is(store.runLockedSync(() => mode(journalLock)), 0o700, 'journal.lock, synchronous');
  t.is(await store.runLocked(() => mode(journalLock)), 0o700, 'journal.lock, asynchronous');
  const compactLock = path.join(dir, COMPACTION_LOCK_NAME);
  const compaction = new CompactionLock(dir, compactLock);
  await compaction.acquire(1000);
  try {
    t.is(mode(compactLock), 0o700, 'compact.lock');
  } finally {
    await compaction.releaseQuietly();
  }
  t.false(fs.existsSync(journalLock) || fs.existsSync(compactLock), 'both released');
});

test('option values out of range are INVALID_OPTION', (t) => {
  const dir = makeDir(t);
  for (const bad of [{ ttlMs: 0 }, { maxSessions: -1 }, { maxSessions: 2.5 }, { maxTurnBytes: Number.NaN }, { maxLineBytes: 0 }, { lockTimeoutMs: -5 }, { touchFlushMs: 0 }]) {
    const err = journalError(t, () => SessionStore.openSync({ dir, fsync: false, onWarning: quiet, ...bad }));
    t.is(err.code, 'INVALID_OPTION', JSON.stringify(bad));
  }
});

test('session ids cannot reach outside the store: path-like ids are refused and nothing is created outside', (t) => {
  const dir = makeDir(t);
  const store = openTracked(t, { dir });
  for (const id of ['../escape', '/etc/passwd', 'a/../../b', '..', '.']) {
    const err = journalError(t, () => store.ensureSession(id));
    t.is(err.code, 'INVALID_SESSION_ID');
  }
  store.closeSync();
  t.deepEqual(fs.readdirSync(path.dirname(dir)).sort(), ['store']);
});

test('running as root does not bypass the permission check', (t) => {
  // The check is on mode bits, not on access(2), so it holds for root too.
  const dir = makeDir(t, 0o777);
  const err = journalError(t, () => SessionStore.openSync({ dir, fsync: false, onWarning: quiet }));
  t.is(err.code, 'UNSAFE_PERMISSIONS');
  t.log(isRoot ? 'running as root' : 'running as a regular user');
});
