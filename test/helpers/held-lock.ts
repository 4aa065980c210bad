/**
 * Lock directories (journal.lock, compact.lock) made by a test to stand for
 * another process holding the lock.
 *
 * proper-lockfile calls a lock stale when its mtime is older than `stale`
 * by the wall clock (Date.now), so here, and only here, a test stamps a lock
 * with the wall clock: that is the lock library's clock, not the store's.
 * Stamped explicitly rather than left to mkdir: the kernel stamps a new
 * directory with its own time, which a test environment can move apart from
 * the process's clock (libfaketime does; CI runs the suite a year ahead and
 * .ci/file-times-ahead.mjs reconciles the two for Node).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ExecutionContext } from 'ava';

export type LockName = 'journal.lock' | 'compact.lock';

/**
 * The clock proper-lockfile and the takeover rule (store-lock.ts) judge a
 * lock's mtime by: the process's own. A lock made to look `ageMs` old must be
 * stamped by the same clock, whatever the date (under faketime too).
 */
export const lockLibraryClock = (): number => Date.now(); // the process's own clock, on purpose

/** Stamps `lock` as refreshed `ageMs` ago by the lock library's clock. */
export function stampLock(lock: string, ageMs = 0): void {
  const at = new Date(lockLibraryClock() - ageMs);
  fs.utimesSync(lock, at, at);
}

/** Creates `dir/name` as a fresh lock of some other live process (not refreshed: for short tests). */
export function makeFreshLock(dir: string, name: LockName): string {
  const lock = path.join(dir, name);
  fs.mkdirSync(lock);
  stampLock(lock);
  return lock;
}

/** Creates `dir/name` as the lock of a process that died `ageMs` ago (its mtime that old). */
export function makeStaleLock(dir: string, name: LockName, ageMs: number): string {
  const lock = path.join(dir, name);
  fs.mkdirSync(lock);
  stampLock(lock, ageMs);
  return lock;
}

/**
 * Holds `dir/name` as a live process would: created fresh and its mtime kept
 * fresh (under load a test can outlive `stale`). Returns the release.
 */
export function holdLock(t: ExecutionContext, dir: string, name: LockName): () => void {
  const lock = makeFreshLock(dir, name);
  const timer = setInterval(() => {
    try {
      stampLock(lock);
    } catch (err) {
      // Released meanwhile (or taken over, which the test then reports): nothing to refresh.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }, 500);
  const release = () => {
    clearInterval(timer);
    fs.rmSync(lock, { recursive: true, force: true });
  };
  t.teardown(() => clearInterval(timer));
  return release;
}
