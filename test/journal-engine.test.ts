import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import test from 'ava';
import lockfile from 'proper-lockfile';
import { Journal, type JournalConsumer, type JournalRecord } from '../src/index.js';
import { collectWarnings, tempStoreDir } from './helpers/temp-store.js';
import { makeFreshLock, makeStaleLock } from './helpers/held-lock.js';

/** The smallest useful reducer: a key-value map. The engine needs nothing more. */
function keyValueConsumer() {
  const state = new Map<string, unknown>();
  const consumer: JournalConsumer = {
    reset: () => state.clear(),
    restore: () => undefined,
    apply: (r: JournalRecord) => {
      const p = r.payload as { key: string; value: unknown };
      if (r.type !== 'kv.set') return { code: 'UNKNOWN_EVENT_TYPE', message: r.type };
      state.set(p.key, p.value);
      return undefined;
    },
  };
  return { state, consumer };
}

function openKv(dir: string, extra: Partial<Parameters<typeof Journal.openSync>[0]> = {}) {
  const kv = keyValueConsumer();
  const { warnings, onWarning } = collectWarnings();
  const journal = Journal.openSync({ dir, consumer: kv.consumer, onWarning, ...extra });
  return { journal, state: kv.state, warnings };
}

const segment1 = (dir: string) => path.join(dir, 'journal-00000001.ndjson');

test('a burst of appends goes out in a few group commits, not one per append', async (t) => {
  const dir = tempStoreDir(t);
  const { journal } = openKv(dir);
  for (let i = 0; i < 1000; i++) journal.append('kv.set', { key: `k${i}`, value: i });
  await journal.flush();
  // About 190 KB in all: a few commits of at most 64 KiB each (journal.ts, MAX_BATCH_BYTES), never one per append.
  t.true(journal.stats.commits <= 6, `commits: ${journal.stats.commits}`);
  t.is(journal.stats.recordsWritten, 1000);
  await journal.close();
  const { state } = openKv(dir);
  t.is(state.size, 1000);
});

test('concurrent flushers share commits', async (t) => {
  const dir = tempStoreDir(t);
  const { journal } = openKv(dir);
  await Promise.all(
    Array.from({ length: 32 }, async (_, client) => {
      for (let i = 0; i < 20; i++) {
        journal.append('kv.set', { key: `c${client}-${i}`, value: i });
        await journal.flush();
      }
    }),
  );
  t.is(journal.stats.recordsWritten, 640);
  t.true(journal.stats.commits < 640 / 4, `commits: ${journal.stats.commits}`);
  await journal.close();
});

test('appends made in separate I/O callbacks share commits: a commit starts after the callbacks the event loop is running, not at the first append', async (t) => {
  const dir = tempStoreDir(t);
  // fsync off: no sync in flight to gather the stragglers, so only the start of the commit can batch them.
  const { journal } = openKv(dir, { fsync: false });
  await Promise.all(
    Array.from({ length: 32 }, async (_, client) => {
      for (let i = 0; i < 20; i++) {
        await fs.promises.stat(dir); // each append from an I/O callback of its own, as a server's requests arrive
        journal.append('kv.set', { key: `c${client}-${i}`, value: i });
        await journal.flush();
      }
    }),
  );
  t.is(journal.stats.recordsWritten, 640);
  t.true(journal.stats.commits < 640 / 4, `commits: ${journal.stats.commits}`);
  await journal.close();
});

test('sequence numbers are gapless and records carry the envelope', async (t) => {
  const dir = tempStoreDir(t);
  const { journal } = openKv(dir);
  journal.append('kv.set', { key: 'a', value: 1 });
  await journal.flush();
  journal.append('kv.set', { key: 'b', value: 2 });
  await journal.close();
  const lines = fs.readFileSync(segment1(dir), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.deepEqual(lines.map((l) => l.seq), [1, 2]);
  // Format 2: every commit's first record carries its framing: `c`, the writer's tag (and `n` when it holds more than one record);
  // `w` only where the lines before do not say it: on the segment's first line, not on this writer's next commit.
  t.deepEqual(Object.keys(lines[0]), ['v', 'seq', 'ts', 'w', 'c', 't', 'p', 'h']);
  t.deepEqual(Object.keys(lines[1]), ['v', 'seq', 'ts', 'c', 't', 'p', 'h']);
  t.is(lines[0].v, 2);
  t.true(Number.isSafeInteger(lines[0].ts));
  t.regex(lines[0].c, /^[0-9a-z]{6}$/);
  t.is(lines[1].c, lines[0].c);
  t.regex(lines[0].h, /^[A-Za-z0-9_-]{22}$/);
  t.is(lines[0].w, `${process.pid}@${(await import('node:os')).hostname()}`);
});

test('a writer ends a torn tail with a newline instead of gluing onto it', async (t) => {
  const dir = tempStoreDir(t);
  const first = openKv(dir);
  first.journal.append('kv.set', { key: 'kept', value: 1 });
  await first.journal.close();
  fs.appendFileSync(segment1(dir), '{"v":1,"seq":2,"ts":"2026-01-0'); // a writer died mid-line

  const second = openKv(dir);
  t.deepEqual(second.warnings.map((w) => [w.code, w.line]), [['INCOMPLETE_TAIL', 2]]);
  second.journal.append('kv.set', { key: 'after', value: 2 });
  await second.journal.close();
  t.is(second.warnings.length, 1, 'the torn line is reported once, not again when terminated');

  const third = openKv(dir);
  t.deepEqual([...third.state.keys()], ['kept', 'after']);
  t.deepEqual(third.warnings.map((w) => [w.code, w.line]), [['UNPARSABLE_LINE', 2]]);
});

test('a lock held by another process makes flush wait, then fail with LOCK_TIMEOUT; nothing is dropped', async (t) => {
  const dir = tempStoreDir(t);
  const { journal } = openKv(dir, { lockTimeoutMs: 150 });
  const lockDir = makeFreshLock(dir, 'journal.lock');
  journal.append('kv.set', { key: 'waiting', value: 1 });
  const err = await t.throwsAsync(journal.flush());
  t.is((err as { code?: string }).code, 'LOCK_TIMEOUT');
  fs.rmdirSync(lockDir);
  await journal.flush();
  await journal.close();
  t.true(openKv(dir).state.has('waiting'));
});

test("the journal lock is proper-lockfile's: a lock taken with proper-lockfile keeps a writer out, and proper-lockfile sees a writer's commit as holding it", async (t) => {
  const dir = tempStoreDir(t);
  const lockPath = path.join(dir, 'journal.lock');
  const viaLibrary = { lockfilePath: lockPath, realpath: false };
  const { journal } = openKv(dir, { lockTimeoutMs: 150 });
  const release = lockfile.lockSync(path.join(dir, 'journal'), viaLibrary);
  journal.append('kv.set', { key: 'waits', value: 1 });
  t.is(((await t.throwsAsync(journal.flush())) as { code?: string }).code, 'LOCK_TIMEOUT');
  release();
  await journal.flush();

  // A second writer's reducer runs inside its locked section when it applies the first writer's new record.
  const inside: Array<{ held: boolean; lockCode: string | undefined }> = [];
  const b = Journal.openSync({
    dir,
    onWarning: () => undefined,
    consumer: {
      reset: () => undefined,
      restore: () => undefined,
      apply: (r) => {
        if ((r.payload as { key?: string }).key !== 'seen-inside') return undefined;
        let lockCode: string | undefined;
        try {
          lockfile.lockSync(path.join(dir, 'journal'), viaLibrary)();
        } catch (err) {
          lockCode = (err as NodeJS.ErrnoException).code;
        }
        inside.push({ held: lockfile.checkSync(path.join(dir, 'journal'), viaLibrary), lockCode });
        return undefined;
      },
    },
  });
  journal.append('kv.set', { key: 'seen-inside', value: 2 });
  await journal.flush();
  b.append('kv.set', { key: 'from-b', value: 3 });
  await b.flush();
  t.deepEqual(inside, [{ held: true, lockCode: 'ELOCKED' }]);
  t.false(lockfile.checkSync(path.join(dir, 'journal'), viaLibrary), 'released after the section');
  await b.close();
  await journal.close();
  t.deepEqual([...openKv(dir).state.keys()].sort(), ['from-b', 'seen-inside', 'waits']);
});

test('a holder whose lock was taken over during its section leaves the new holder\'s lock directory alone (LOCK_COMPROMISED), and its entry is written once, later', async (t) => {
  const dir = tempStoreDir(t);
  const lockPath = path.join(dir, 'journal.lock');
  const a = openKv(dir);
  const warnings: Array<{ code: string }> = [];
  let replaced: fs.BigIntStats | undefined;
  // B's reducer runs inside B's locked section when it applies A's record: there it plays the taker.
  const b = Journal.openSync({
    dir,
    onWarning: (w) => warnings.push(w),
    consumer: {
      reset: () => undefined,
      restore: () => undefined,
      apply: (r) => {
        if ((r.payload as { key?: string }).key === 'from-a' && !replaced) {
          fs.rmdirSync(lockPath);
          fs.mkdirSync(lockPath, { mode: 0o700 });
          replaced = fs.statSync(lockPath, { bigint: true });
        }
        return undefined;
      },
    },
  });
  a.journal.append('kv.set', { key: 'from-a', value: 1 });
  await a.journal.flush();
  b.append('kv.set', { key: 'from-b', value: 2 });
  const flushed = b.flush();
  const deadline = performance.now() + 30_000; // a bound on waiting for a condition (monotonic)
  while (!warnings.some((w) => w.code === 'LOCK_COMPROMISED') && performance.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
  t.true(warnings.some((w) => w.code === 'LOCK_COMPROMISED'));
  const now = fs.statSync(lockPath, { bigint: true });
  t.deepEqual([now.ino, now.ctimeNs], [replaced!.ino, replaced!.ctimeNs], "the taker's directory is still there");
  fs.rmdirSync(lockPath); // the "taker" releases
  await flushed;
  await b.close();
  await a.journal.close();
  const keys = fs.readFileSync(segment1(dir), 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { p: { key: string } }).p.key);
  t.deepEqual(keys, ['from-a', 'from-b']);
});

test('a stale lock left by a dead process is taken over', async (t) => {
  const dir = tempStoreDir(t);
  const { journal } = openKv(dir, { lockTimeoutMs: 2000 });
  makeStaleLock(dir, 'journal.lock', 60_000);
  journal.append('kv.set', { key: 'k', value: 1 });
  await journal.close();
  t.true(openKv(dir).state.has('k'));
});

test('flushSync writes and syncs without an event loop turn', (t) => {
  const dir = tempStoreDir(t);
  const { journal } = openKv(dir);
  journal.append('kv.set', { key: 'now', value: 1 });
  journal.flushSync();
  t.regex(fs.readFileSync(segment1(dir), 'utf8'), /"key":"now"/);
  journal.closeSync();
});

test('deferred entries wait for the next commit, or for the deferred timer', async (t) => {
  const dir = tempStoreDir(t);
  const { journal } = openKv(dir, { deferredFlushMs: 50 });
  journal.append('kv.set', { key: 'lazy', value: 1 }, { deferred: true });
  await new Promise((r) => setTimeout(r, 5));
  // The writer made segment 1 when it opened the new store: empty until the commit.
  t.is(fs.readFileSync(segment1(dir), 'utf8'), '', 'nothing written yet');
  await new Promise((r) => setTimeout(r, 150));
  t.regex(fs.readFileSync(segment1(dir), 'utf8'), /"key":"lazy"/);
  await journal.close();
});

test('a second journal on the same store catches up on read with only the new bytes', async (t) => {
  const dir = tempStoreDir(t);
  const a = openKv(dir);
  const b = openKv(dir);
  a.journal.append('kv.set', { key: 'x', value: 1 });
  await a.journal.flush();
  t.false(b.state.has('x'));
  b.journal.catchUp();
  t.is(b.state.get('x'), 1);
  b.journal.append('kv.set', { key: 'y', value: 2 });
  await b.journal.flush();
  a.journal.catchUp();
  t.is(a.state.get('y'), 2);
  t.is(a.journal.lastSeq, 2);
  await Promise.all([a.journal.close(), b.journal.close()]);
});

test('an append after close throws CLOSED; one over maxRecordBytes throws RECORD_TOO_LARGE and queues nothing', async (t) => {
  const dir = tempStoreDir(t);
  const { journal } = openKv(dir, { maxRecordBytes: 1024 });
  const tooLarge = t.throws(() => journal.append('kv.set', { key: 'big', value: 'x'.repeat(2000) }));
  t.is((tooLarge as { code?: string }).code, 'RECORD_TOO_LARGE');
  t.is(journal.pendingCount, 0);
  await journal.close();
  t.is(journal.lastSeq, 0);
  const closed = t.throws(() => journal.append('kv.set', { key: 'late', value: 1 }));
  t.is((closed as { code?: string }).code, 'CLOSED');
});

test('invalid options are refused with INVALID_OPTION', (t) => {
  const dir = tempStoreDir(t);
  const err = t.throws(() => openKv(dir, { lockTimeoutMs: -1 }));
  t.is((err as { code?: string }).code, 'INVALID_OPTION');
});

test('each record is chained to the one before by a (truncated) sha256 over its canonical form', async (t) => {
  const { chainHashOf } = await import('../src/engine/record-codec.js');
  const dir = tempStoreDir(t);
  const first = openKv(dir);
  first.journal.append('kv.set', { value: 1, key: 'a' });
  await first.journal.close();
  const second = openKv(dir); // a second writer continues the chain from what it read
  second.journal.append('kv.set', { key: 'b', value: { z: 1, a: 2 } });
  await second.journal.close();
  const lines = fs.readFileSync(segment1(dir), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.is(lines[0].h, chainHashOf('', lines[0]));
  t.is(lines[1].h, chainHashOf(lines[0].h, lines[1]));
  t.is(openKv(dir).journal.lastHash, lines[1].h);
  lines[0].p.value = 2; // an edit breaks the link
  t.not(chainHashOf('', lines[0]), lines[0].h);
});

test.serial('a commit whose locked section outlives the stale limit is reported as LOCK_COMPROMISED, and is not lost', async (t) => {
  const dir = tempStoreDir(t);
  const writer = openKv(dir);
  const stall = { ms: 0 };
  // A second journal whose reducer stalls inside the locked catch-up: as an event loop stuck for longer than `stale`.
  const { warnings, onWarning } = collectWarnings();
  const slow = Journal.openSync({
    dir,
    onWarning,
    lockStaleMs: 2000,
    consumer: {
      reset: () => undefined,
      restore: () => undefined,
      apply: () => {
        const until = Date.now() + stall.ms;
        while (Date.now() < until) {
          // busy: nothing else runs, not even proper-lockfile's refresh timer
        }
        return undefined;
      },
    },
  });
  writer.journal.append('kv.set', { key: 'first', value: 1 });
  await writer.journal.flush();
  stall.ms = 2100;
  slow.append('kv.set', { key: 'late', value: 2 });
  await slow.flush();
  t.deepEqual(warnings.map((w) => w.code), ['LOCK_COMPROMISED']);
  await Promise.all([writer.journal.close(), slow.close()]);
  t.deepEqual([...openKv(dir).state.keys()], ['first', 'late']);
});

test('Journal.open awaits replayPace between replay steps with the segment bytes replayed so far, and holds the replay while it is pending', async (t) => {
  const dir = tempStoreDir(t);
  const { journal } = openKv(dir);
  for (let i = 0; i < 2000; i++) journal.append('kv.set', { key: `k${i}`, value: 'v'.repeat(200) });
  await journal.close();
  const size = fs.statSync(segment1(dir)).size;

  const kv = keyValueConsumer();
  const seen: number[] = [];
  let held = 0;
  const opened = await Journal.open({
    dir,
    consumer: kv.consumer,
    onWarning: () => undefined,
    replayPace: (bytes) => {
      seen.push(bytes);
      if (seen.length !== 2) return undefined;
      // The second step waits 50 ms: nothing may be applied meanwhile.
      const applied = kv.state.size;
      return new Promise<void>((resolve) =>
        setTimeout(() => {
          held = kv.state.size - applied;
          resolve();
        }, 50),
      );
    },
  });
  t.true(seen.length >= Math.floor(size / (64 * 1024)), `${seen.length} steps for ${size} bytes`);
  t.true(seen.every((b, i) => i === 0 || b > seen[i - 1]!), 'the byte count only grows');
  t.is(seen.at(-1), size);
  t.is(held, 0, 'no record was applied while the pace was pending');
  t.is(kv.state.size, 2000);
  await opened.close();
});

// loadAsync awaits yieldToEventLoop() after every 64 KiB. On one MessagePort
// that gave the loop a turn only every 1000th yield (a port delivers up to
// 1000 messages posted meanwhile in one callback); two ports taken in turn
// give it one at least every other yield (event-loop-yield.ts). This failed
// before (1 turn in 75 pauses).
test('Journal.open lets the event loop run all through a replay of several MiB, not only before and after it', async (t) => {
  const dir = tempStoreDir(t);
  const { journal } = openKv(dir);
  for (let i = 0; i < 8000; i++) journal.append('kv.set', { key: `k${i}`, value: 'v'.repeat(500) });
  await journal.close();
  const size = fs.statSync(segment1(dir)).size;
  t.true(size > 4 * 1024 * 1024, `${size} bytes`);

  const kv = keyValueConsumer();
  let replayed = 0;
  /** The bytes replayed each time a setImmediate callback ran while the open was under way. */
  const seenByCallbacks: number[] = [];
  let opening = true;
  const tick = () => {
    seenByCallbacks.push(replayed);
    if (opening) setImmediate(tick);
  };
  setImmediate(tick);
  const opened = await Journal.open({ dir, consumer: kv.consumer, onWarning: () => undefined, onReplayProgress: (done) => (replayed = done) });
  opening = false;
  const during = new Set(seenByCallbacks.filter((b) => b > 0 && b < size));
  // A pause every 64 KiB (ChainLoader.loadAsync), a turn of the loop at every other pause (event-loop-yield.ts), so one
  // every 128 KiB; a quarter of the pauses leaves room for a loaded machine, and a replay that never yields would show none.
  t.true(during.size >= Math.floor(size / (64 * 1024)) / 4, `callbacks saw ${during.size} points inside the replay of ${size} bytes`);
  t.is(kv.state.size, 8000);
  await opened.close();
});

test.serial('a rotation whose fdatasync fails still moves this writer to the new segment: records it writes afterwards replay, and the failure is kept', async (t) => {
  const dir = tempStoreDir(t);
  const { journal } = openKv(dir);
  journal.append('kv.set', { key: 'before', value: 1 });
  await journal.flush();
  const original = fs.fdatasyncSync;
  fs.fdatasyncSync = () => {
    throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
  };
  try {
    const err = await t.throwsAsync(journal.rotate());
    t.is((err as { code?: string }).code, 'IO_ERROR');
  } finally {
    fs.fdatasyncSync = original;
  }
  // Written to the new segment, but never acknowledged: the failed sync is kept (see the next test).
  journal.append('kv.set', { key: 'after', value: 2 });
  const failure = await t.throwsAsync(journal.flush());
  t.is((failure as { code?: string }).code, 'IO_ERROR');
  await t.throwsAsync(journal.close(), { is: failure });
  const reopened = openKv(dir);
  t.deepEqual([...reopened.state.keys()], ['before', 'after']);
  t.deepEqual(reopened.warnings, []);
  await reopened.journal.close();
});

test.serial('a background fdatasync failure is kept: COMMIT_FAILED once, then every flush() and close() rejects with IO_ERROR; the bytes were written and replay', async (t) => {
  const dir = tempStoreDir(t);
  const openFds = () => fs.readdirSync('/proc/self/fd').length;
  const fdsBefore = openFds();
  const { journal, warnings } = openKv(dir);
  journal.append('kv.set', { key: 'a', value: 1 });
  await journal.flush();
  const original = fs.fdatasync;
  let failed = 0;
  fs.fdatasync = ((fd: number, callback: (err: NodeJS.ErrnoException | null) => void) => {
    failed++;
    process.nextTick(callback, Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
  }) as typeof fs.fdatasync;
  try {
    journal.append('kv.set', { key: 'b', value: 2 }); // nobody waits: a background commit
    for (let i = 0; i < 100 && failed === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    await new Promise((resolve) => setTimeout(resolve, 20));
  } finally {
    fs.fdatasync = original;
  }
  t.is(failed, 1);
  t.deepEqual(warnings.map((w) => w.code), ['COMMIT_FAILED']);
  const first = await t.throwsAsync(journal.flush());
  t.is((first as { code?: string }).code, 'IO_ERROR');
  t.is((first as { cause?: { code?: string } }).cause?.code, 'EIO');
  journal.append('kv.set', { key: 'c', value: 3 });
  t.is(await t.throwsAsync(journal.flush()), first, 'still the same failure after more appends, although the sync works again');
  t.throws(() => journal.flushSync(), { is: first });
  await t.throwsAsync(journal.close(), { is: first });
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.deepEqual(warnings.map((w) => w.code), ['COMMIT_FAILED'], 'nothing ran on the closed journal (no re-read, no sequence warnings)');
  t.is(openFds(), fdsBefore, 'no descriptor left open');
  await t.throwsAsync(journal.flush(), { is: first });
  await t.throwsAsync(journal.close(), { is: first });
  const reopened = openKv(dir);
  t.deepEqual([...reopened.state.keys()], ['a', 'b', 'c'], 'the bytes were written; durability was what could not be promised');
  await reopened.journal.close();
});

test.serial('a batch whose first segment cannot be created is put back, not dropped: after the cause is gone it is written', async (t) => {
  const dir = tempStoreDir(t);
  // An existing empty directory opened without create: the writer makes no segment at open, its first commit does.
  fs.mkdirSync(dir, { mode: 0o700 });
  const { journal } = openKv(dir, { create: false });
  t.deepEqual(fs.readdirSync(dir), []);
  const original = fs.openSync;
  let refused = 0;
  // Creating the segment fails once (EMFILE: out of descriptors); opening an existing one is not affected.
  fs.openSync = ((file: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode) => {
    if (String(file) === segment1(dir) && typeof flags === 'number' && flags & fs.constants.O_CREAT && refused++ === 0) {
      throw Object.assign(new Error('EMFILE: too many open files, open'), { code: 'EMFILE' });
    }
    return original(file, flags ?? 'r', mode);
  }) as typeof fs.openSync;
  try {
    journal.append('kv.set', { key: 'a', value: 1 });
    const err = await t.throwsAsync(journal.flush());
    t.is((err as { code?: string }).code, 'IO_ERROR');
    t.is((err as { cause?: { code?: string } }).cause?.code, 'EMFILE');
  } finally {
    fs.openSync = original;
  }
  t.is(refused, 1);
  await journal.flush();
  await journal.close();
  const reopened = openKv(dir);
  t.deepEqual([...reopened.state.keys()], ['a'], 'the entry was kept and written by the next commit');
  await reopened.journal.close();
});

test.serial('a store that changes under every attempt to open it fails with IO_ERROR, not an internal error', (t) => {
  const dir = tempStoreDir(t);
  openKv(dir).journal.closeSync();
  const original = fs.readdirSync;
  // Every listing names a snapshot that is gone by the time it is opened, as if compactions ran back to back.
  fs.readdirSync = ((p: fs.PathLike, options?: unknown) => {
    const names = original(p, options as undefined);
    return String(p) === dir ? [...names, 'snapshot-00000009.ndjson'] : names;
  }) as typeof fs.readdirSync;
  try {
    const err = t.throws(() => openKv(dir));
    t.is((err as { code?: string }).code, 'IO_ERROR');
    t.regex((err as Error).message, /5 attempts/);
  } finally {
    fs.readdirSync = original;
  }
});

test.serial('closeSync() while a background commit waits for its fdatasync: the segment descriptor is closed once the sync settles', async (t) => {
  const dir = tempStoreDir(t);
  const openFds = () => fs.readdirSync('/proc/self/fd').length;
  const { journal } = openKv(dir);
  journal.append('kv.set', { key: 'a', value: 1 });
  await journal.flush();
  const original = fs.fdatasync;
  let release: (() => void) | undefined;
  fs.fdatasync = ((fd: number, callback: (err: NodeJS.ErrnoException | null) => void) => {
    release = () => original(fd, callback);
  }) as typeof fs.fdatasync;
  try {
    const baseline = openFds();
    journal.append('kv.set', { key: 'b', value: 2 }); // a background commit; its sync is held back
    for (let i = 0; i < 200 && !release; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    t.truthy(release, 'the commit reached its fdatasync');
    journal.closeSync();
    t.is(openFds(), baseline, 'still open while the sync is pending');
    release!();
    for (let i = 0; i < 200 && openFds() >= baseline; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    t.is(openFds(), baseline - 1, 'closed once it settled');
  } finally {
    fs.fdatasync = original;
  }
});

test('appendDecided and rotate on a read-only journal throw CLOSED and take no lock', async (t) => {
  const dir = tempStoreDir(t);
  const writer = openKv(dir);
  writer.journal.append('kv.set', { key: 'a', value: 1 });
  await writer.journal.close();
  const { journal } = openKv(dir, { readOnly: true });
  for (const call of [() => journal.appendDecided(() => [{ type: 'kv.set', payload: { key: 'b', value: 2 } }]), () => journal.rotate()]) {
    const err = await t.throwsAsync(call());
    t.is((err as { code?: string }).code, 'CLOSED');
  }
  t.false(fs.existsSync(path.join(dir, 'journal.lock')));
  t.deepEqual(fs.readdirSync(dir), ['journal-00000001.ndjson']);
  await journal.close();
});

test('a writer that opens a new store makes its (empty) first segment, so the directory shows it is a store; a reader, or create: false, makes nothing', async (t) => {
  const dir = tempStoreDir(t);
  fs.mkdirSync(dir, { mode: 0o700 });
  openKv(dir, { readOnly: true }).journal.closeSync();
  openKv(dir, { create: false }).journal.closeSync();
  t.deepEqual(fs.readdirSync(dir), []);
  const { journal } = openKv(dir);
  t.deepEqual(fs.readdirSync(dir), ['journal-00000001.ndjson']);
  t.is(fs.statSync(segment1(dir)).size, 0);
  journal.append('kv.set', { key: 'a', value: 1 });
  await journal.close();
  const reopened = openKv(dir);
  t.deepEqual([...reopened.state.keys()], ['a']);
  t.deepEqual(fs.readdirSync(dir), ['journal-00000001.ndjson'], 'the first commit went into it');
  await reopened.journal.close();
});

// The first yields of a process go through the thread pool, so a short-lived process that commits a few times never makes
// the message ports (about 3 ms at a cold start); one that keeps committing takes them (event-loop-yield.ts). A commit
// started while none runs yields first; the commits that follow it in one run do not.
test('a process that commits a few times makes no MessagePort for its yields; one that keeps committing does', (t) => {
  const dir = tempStoreDir(t);
  const index = new URL('../src/index.js', import.meta.url).href;
  const code = [
    'let made = 0;',
    'const Real = globalThis.MessageChannel;',
    'globalThis.MessageChannel = class extends Real { constructor() { super(); made++; } };',
    `const { SessionStore } = await import(${JSON.stringify(index)});`,
    `const store = SessionStore.openSync({ dir: process.argv[1], fsync: false, autoCompact: false, clock: () => ${Date.UTC(2026, 10, 20)} });`,
    'const counts = [];',
    'for (let i = 0; i < 40; i++) {',
    "  store.ensureSession(`s${i}`);",
    '  await store.flush();',
    '  await new Promise((resolve) => setImmediate(resolve)); // the commit loop ends: the next commit starts with a yield',
    '  if (i === 2) counts.push(made);',
    '}',
    'counts.push(made);',
    'await store.close();',
    'process.stdout.write(JSON.stringify(counts));',
  ].join('\n');
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', code, dir], { encoding: 'utf8', timeout: 30_000 });
  t.is(child.status, 0, child.stderr);
  const [afterThree, afterForty] = JSON.parse(child.stdout) as [number, number];
  t.is(afterThree, 0, 'three commits, no port');
  t.true(afterForty > 0, 'forty commits: the ports were made');
});
