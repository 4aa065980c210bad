/**
 * Injected file-system failures (ENOSPC, EIO, EACCES) at every call one
 * compaction makes, in this process: the k-th call fails, for k over all the
 * calls of a compaction counted first with a pass-through hook
 * (crash-fs-hook.ts: sync calls, including the archive's reads and writes
 * around zlib, the async fdatasync, and the lock directories of
 * proper-lockfile). For each:
 *  - compactSessions rejects with SessionJournalError IO_ERROR whose cause is
 *    the injected error (a few best-effort reads may be tolerated: listed);
 *  - it neither hangs nor leaves compact.lock or journal.lock behind;
 *  - the state is the one before (or, if retention's deletes were already
 *    committed, that minus the evicted sessions: what a crash after the
 *    'retained' step leaves);
 *  - the next compaction, fault gone, succeeds and leaves no temporary file.
 * ENOSPC also runs "sticky": that call and every later call of the same
 * function fail (a full disk stays full), to check the error path's own I/O.
 *
 * Not covered: fs.promises (the library does not use it), and failures of
 * calls the library makes outside a compaction.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { installFsHook, setFsHook, systemError, type FsCall } from '../helpers/crash-fs-hook.js';
import { TEST_T0 } from '../helpers/fixture-now.js';

// The hook must be in place before the library loads (see crash-fs-hook.ts).
const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'sj-fault-')));
installFsHook(root);
const { compactSessions, SessionJournalError, ErrorCodes } = await import('../../src/index.js');
const { buildSeedStore, checkCompactedLayout, copyStore, evictedBy, replay, SEED_MAX_SESSIONS, SEED_TTL_MS } = await import('../helpers/crash-procs.js');
test.after.always(() => fs.rmSync(root, { recursive: true, force: true }));

type Code = 'ENOSPC' | 'EIO' | 'EACCES';
const WRITES = new Set(['writeSync', 'write', 'writev', 'fsyncSync', 'fsync', 'fdatasyncSync', 'fdatasync', 'ftruncateSync']);
const CREATES = new Set(['openSync', 'open', 'mkdirSync', 'mkdir', 'renameSync', 'rename', 'utimesSync', 'utimes']);
const PERMS = new Set(['openSync', 'open', 'mkdirSync', 'mkdir', 'renameSync', 'rename', 'unlinkSync', 'unlink', 'rmdirSync', 'rmdir', 'readdirSync', 'lstatSync', 'statSync', 'stat', 'lstat', 'utimesSync', 'utimes']);
/** Which injected errors are plausible for a call. EIO: any. */
function codesFor(name: string): Code[] {
  const out: Code[] = ['EIO'];
  if (WRITES.has(name) || CREATES.has(name)) out.push('ENOSPC');
  if (PERMS.has(name)) out.push('EACCES');
  return out;
}
/** Calls whose failure a compaction may survive: best-effort reads (sizes, listings for cleanup and pruning) and closes. */
const TOLERABLE = new Set(['lstatSync', 'statSync', 'readdirSync', 'stat', 'lstat', 'closeSync', 'close', 'utimes', 'utimesSync', 'rmdir', 'rmdirSync']);
const HANG_MS = 1500;

const options = (dir: string, nowMs: number) => ({ dir, ttlMs: SEED_TTL_MS, maxSessions: SEED_MAX_SESSIONS, now: () => nowMs, lockTimeoutMs: 300, onWarning: () => undefined });

interface Seed {
  dir: string;
  pre: string;
  retained: string;
  final: string;
  nowMs: number;
}

let seedPromise: Promise<Seed> | undefined;
function seed(): Promise<Seed> {
  seedPromise ??= (async () => {
    const dir = path.join(root, 'seed');
    // The seed store's time line: an hour of history before TEST_T0, retention evaluated at TEST_T0.
    await buildSeedStore(dir, TEST_T0 - 3600_000, (d) => compactSessions({ dir: d, maxSessions: 1000, now: () => TEST_T0 }));
    const pre = replay(dir).sessions;
    const evicted = evictedBy(pre, SEED_MAX_SESSIONS);
    const nowMs = TEST_T0;
    const reference = path.join(root, 'reference');
    copyStore(dir, reference);
    await compactSessions(options(reference, nowMs));
    return { dir, pre: JSON.stringify(pre), retained: JSON.stringify(pre.filter((s) => !evicted.has(s.id))), final: JSON.stringify(replay(reference).sessions), nowMs };
  })();
  return seedPromise;
}

async function countCalls(s: Seed, tag: string): Promise<FsCall[]> {
  const dir = path.join(root, `count-${tag}`);
  copyStore(s.dir, dir);
  const calls: FsCall[] = [];
  setFsHook((c) => {
    calls.push({ ...c, target: path.relative(dir, c.target) || '.' });
    return undefined;
  });
  try {
    const result = await compactSessions(options(dir, s.nowMs));
    if (result.status !== 'compacted') throw new Error(`counting run: ${result.status}`);
  } finally {
    setFsHook(undefined);
  }
  return calls;
}

type Outcome = { kind: 'resolved' } | { kind: 'rejected'; err: unknown } | { kind: 'hung' };

async function attempt(dir: string, nowMs: number): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<Outcome>((resolve) => (timer = setTimeout(() => resolve({ kind: 'hung' }), HANG_MS)));
  try {
    return await Promise.race([
      compactSessions(options(dir, nowMs)).then(
        (): Outcome => ({ kind: 'resolved' }),
        (err: unknown): Outcome => ({ kind: 'rejected', err }),
      ),
      hang,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const releaseFailedOf = (call: FsCall) => (call.name === 'rmdir' || call.name === 'rmdirSync') && /\.lock$/.test(call.target);

/** One injected fault: returns what went wrong (empty: all good) and whether the failure was tolerated. */
async function injectOne(s: Seed, call: FsCall, code: Code, sticky: boolean, tag: string): Promise<{ problems: string[]; tolerated: boolean; failed: FsCall }> {
  const dir = path.join(root, tag);
  copyStore(s.dir, dir);
  const problems: string[] = [];
  let injected = 0;
  // The archive's gzip runs beside the fold, so the order of calls can differ
  // from the counting run: judge by the call actually failed, recorded here.
  let failedCall: FsCall | undefined;
  setFsHook((c) => {
    if (c.n === call.n || (sticky && c.n > call.n && c.name === call.name)) {
      injected++;
      failedCall ??= c;
      return systemError(code, c.name, c.target);
    }
    return undefined;
  });
  let outcome: Outcome;
  try {
    outcome = await attempt(dir, s.nowMs);
  } finally {
    setFsHook(undefined);
  }
  if (failedCall) call = { ...failedCall, target: path.relative(dir, failedCall.target) };
  const label = `${code}${sticky ? ' (sticky)' : ''} at call ${call.n} ${call.name} ${call.target}`;
  let tolerated = false;
  if (outcome.kind === 'hung') {
    problems.push(`${label}: compactSessions neither resolved nor rejected within ${HANG_MS} ms`);
  } else if (outcome.kind === 'resolved') {
    tolerated = true;
    if (!TOLERABLE.has(call.name)) problems.push(`${label}: compactSessions resolved although the call failed`);
  } else {
    const err = outcome.err as { code?: unknown; cause?: { code?: unknown }; message?: string };
    if (!(outcome.err instanceof SessionJournalError)) problems.push(`${label}: rejected with a ${(outcome.err as Error)?.constructor?.name} (code ${String(err.code)}), not a SessionJournalError: ${err.message}`);
    else if (err.code !== ErrorCodes.IO_ERROR && !(releaseFailedOf(call) && (err.code === ErrorCodes.LOCK_COMPROMISED || err.code === ErrorCodes.LOCK_TIMEOUT))) problems.push(`${label}: rejected with code ${String(err.code)}, expected IO_ERROR: ${err.message}`);
    else if (err.cause?.code !== code) problems.push(`${label}: IO_ERROR whose cause.code is ${String(err.cause?.code)}: ${err.message}`);
  }
  if (injected === 0) problems.push(`${label}: the fault was never injected (the calls differ from the counting run)`);

  // A lock whose release (rmdir) itself failed stays until it goes stale (journal.lock
  // 10 s, compact.lock 30 s): the stale takeover is simulated by removing it.
  const releaseFailed = (call.name === 'rmdir' || call.name === 'rmdirSync') && /\.lock$/.test(call.target);
  let staleLocks = 0;
  for (const lock of ['compact.lock', 'journal.lock']) {
    if (!fs.existsSync(path.join(dir, lock))) continue;
    if (outcome.kind !== 'hung' && !(releaseFailed && call.target === lock)) problems.push(`${label}: ${lock} left behind by a compaction that ${outcome.kind}`);
    // A hung compaction still holds its locks: take them away so the store can be checked.
    fs.rmSync(path.join(dir, lock), { recursive: true, force: true });
    staleLocks++;
  }

  try {
    const now = JSON.stringify(replay(dir).sessions);
    if (now !== s.pre && now !== s.retained && !(tolerated && now === s.final)) problems.push(`${label}: the state after the failure is not the one before`);
  } catch (err) {
    problems.push(`${label}: the store does not open after the failure: ${(err as Error).message}`);
  }
  try {
    const next = await compactSessions(options(dir, s.nowMs));
    if (next.status !== 'compacted' && !tolerated && next.status !== 'nothing-to-do') problems.push(`${label}: next compaction: ${next.status}`);
    if (JSON.stringify(replay(dir).sessions) !== s.final) problems.push(`${label}: after the next compaction the state differs from a run without the fault`);
    problems.push(...checkCompactedLayout(dir).map((p) => `${label}: after the next compaction: ${p}`));
  } catch (err) {
    problems.push(`${label}: the next compaction, fault gone, failed: ${(err as { code?: string }).code ?? ''} ${(err as Error).message}`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return { problems, tolerated: tolerated || staleLocks > 0 && releaseFailed, failed: call };
}

async function sweep(t: import('ava').ExecutionContext, sticky: boolean): Promise<void> {
  const s = await seed();
  const calls = await countCalls(s, sticky ? 'sticky' : 'once');
  if (process.env.CRASH_DEBUG) console.error(calls.map((c) => `${c.n} ${c.name} ${c.target}`).join('\n'));
  t.true(calls.length > 50, `${calls.length} calls counted`);
  for (const name of ['renameSync', 'readSync', 'writeSync', 'fsyncSync', 'fdatasyncSync', 'fdatasync', 'unlinkSync', 'openSync', 'mkdirSync']) t.true(calls.some((c) => c.name === name), `${name} is covered`);
  t.true(calls.some((c) => c.name === 'writeSync' && c.target.includes('.gz')), 'the archive gzip writes are covered');
  const problems: string[] = [];
  const tolerated = new Set<string>();
  let runs = 0;
  const started = Date.now();
  for (const call of calls) {
    for (const code of sticky ? (['ENOSPC'] as Code[]).filter((c) => codesFor(call.name).includes(c)) : codesFor(call.name)) {
      const r = await injectOne(s, call, code, sticky, `${sticky ? 'sticky' : 'once'}-${call.n}-${code}`);
      runs++;
      problems.push(...r.problems);
      if (r.tolerated) tolerated.add(`${r.failed.name} ${r.failed.target}`);
    }
  }
  t.log(`${runs} injected faults over ${calls.length} calls in ${Date.now() - started} ms; failures tolerated (compaction still succeeded) at: ${[...tolerated].join(', ') || 'none'}`);
  t.deepEqual(problems, []);
}

test.serial('a one-shot ENOSPC, EIO or EACCES at each file-system call of a compaction', async (t) => {
  await sweep(t, false);
});

test.serial('a sticky ENOSPC (the disk stays full) from each write-type call on', async (t) => {
  await sweep(t, true);
});

test.serial('zlib failing mid-archive: the compaction stops with IO_ERROR, and the next one succeeds', async (t) => {
  const s = await seed();
  const dir = path.join(root, 'zlib');
  copyStore(s.dir, dir);
  // Every compressor fails on its first input, the way a corrupt zlib state or an allocation failure would.
  const probe = zlib.createGzip();
  const gzipPrototype = Object.getPrototypeOf(probe) as { _transform?: (chunk: Buffer, encoding: string, callback: (err?: Error) => void) => void };
  probe.destroy();
  let injected = 0;
  gzipPrototype._transform = (_chunk, _encoding, callback) => {
    injected++;
    callback(Object.assign(new Error('injected zlib failure'), { code: 'Z_DATA_ERROR' }));
  };
  let err: unknown;
  try {
    await compactSessions(options(dir, s.nowMs));
  } catch (e) {
    err = e;
  } finally {
    delete gzipPrototype._transform; // the inherited one again
  }
  t.true(injected >= 1, 'a compressor failed');
  t.true(err instanceof SessionJournalError, String(err));
  t.is((err as { code?: string }).code, ErrorCodes.IO_ERROR);
  t.is((err as { cause?: { code?: string } }).cause?.code, 'Z_DATA_ERROR');
  t.false(fs.existsSync(path.join(dir, 'compact.lock')), 'compaction lock released');
  const after = JSON.stringify(replay(dir).sessions);
  t.true(after === s.retained, 'the snapshot was published before the archive step: the state is the retained one');
  await compactSessions(options(dir, s.nowMs));
  t.is(JSON.stringify(replay(dir).sessions), s.final);
  t.deepEqual(checkCompactedLayout(dir), []);
});
