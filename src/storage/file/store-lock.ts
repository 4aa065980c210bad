import { ErrorCodes, SessionJournalError, ioError } from '../../errors.js';
import { LOCK_NAME } from './store-files.js';
import type { BigIntStats } from 'node:fs';
const fs = process.getBuiltinModule('node:fs');
const path = process.getBuiltinModule('node:path');

export interface StoreLockOptions {
  /** The lock directory (an atomic mkdir: proper-lockfile's protocol). */
  lockPath: string;
  /** The store directory the lock guards (for messages). */
  dir: string;
  /** Give up after this long with LOCK_TIMEOUT. */
  timeoutMs: number;
  /** A lock untouched for this long is taken over (proper-lockfile's `stale`, at least 2000). */
  staleMs: number;
  /** Called, never thrown, when the lock turns out to have been lost (taken over while held). */
  onCompromised: (err: Error) => void;
}

/** A lock untouched this long belongs to a dead process and is taken over. */
export const DEFAULT_LOCK_STALE_MS = 10_000;

/**
 * Lock directories this process still owns because removing them failed
 * (EIO...): any lock of this process on that path removes it before locking
 * again, instead of waiting for it to go stale.
 */
const ownLeftovers = new Set<string>();

const MIN_BACKOFF_MS = 1;
const MAX_BACKOFF_MS = 5; // the lock is held for well under a millisecond
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * True when some process holds a fresh lock at `lockPath`: the directory
 * exists and its mtime is within `stale` of this process's clock, which is
 * exactly proper-lockfile's `check`.
 */
function lockHeld(lockPath: string, staleMs: number): boolean {
  try {
    return fs.statSync(lockPath).mtimeMs >= Date.now() - staleMs;
  } catch {
    return false;
  }
}

/**
 * For readers without a StoreLock (replay, verify, repair): is a writer in
 * the middle of a commit, so that an unfinished last line may be an append
 * in progress rather than a torn one?
 */
export function journalLockHeld(dir: string, staleMs = DEFAULT_LOCK_STALE_MS): boolean {
  return lockHeld(path.join(dir, LOCK_NAME), staleMs);
}

/**
 * One holding of the lock, as a commit's fence sees it: the lock directory
 * it created (inode and change time: a takeover removes it and makes
 * another) and when, on the monotonic clock (immune to wall-clock jumps and
 * skew; it runs on while the process is stopped). Another process takes a
 * lock over once it looks `stale`; a holder stopped that long may no longer
 * be the only writer, however its own section looks to it.
 */
export class LockLease {
  private readonly startedNs = process.hrtime.bigint();
  private readonly identity: string | undefined;

  constructor(
    private readonly lockPath: string,
    private readonly staleMs: number,
  ) {
    this.identity = lockIdentity(lockPath);
  }

  /** True when the lock is certainly still this holder's: its directory unchanged, and held for well under `stale`. */
  stillHeld(): boolean {
    const heldMs = Number(process.hrtime.bigint() - this.startedNs) / 1e6;
    return heldMs < this.staleMs / 2 && this.isOurs();
  }

  /** True when the lock directory is still the one this holder made (not removed, nor replaced by a takeover). */
  isOurs(): boolean {
    return this.identity !== undefined && lockIdentity(this.lockPath) === this.identity;
  }
}

function lockIdentity(lockPath: string): string | undefined {
  return lockLook(lockPath)?.identity;
}

/** The lock directory as it is now: who made it (inode, change time) and the mtime its holder set. */
interface LockLook {
  identity: string;
  mtimeMs: number;
}

function lockLook(lockPath: string): LockLook | undefined {
  let st: BigIntStats;
  try {
    st = fs.statSync(lockPath, { bigint: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // released, or taken over and released
    throw ioError('stat', lockPath, err); // EIO...: not a lost lock, a failing disk
  }
  return { identity: `${st.dev}:${st.ino}:${st.ctimeNs}:${st.mtimeNs}`, mtimeMs: Number(st.mtimeNs / 1_000_000n) };
}

const monotonicMs = (): number => Number(process.hrtime.bigint() / 1_000_000n);

/**
 * A lock whose mtime says it is stale by this process's clock is taken over
 * only after it has also looked the same for this long (or for `stale`,
 * whichever is less): a clock running ahead must not take a lock someone is
 * using right now (sections last well under a millisecond).
 */
const TAKEOVER_GRACE_MS = 1000;

/**
 * The store's advisory lock, in proper-lockfile's protocol, so that every
 * version of session-journal and any tool using proper-lockfile on
 * `journal.lock` exclude each other: the lock is a directory made by an
 * atomic mkdir, removed to release, and a lock whose mtime has not moved
 * for `stale` belongs to a dead holder and is taken over.
 *
 * It is held only around a synchronous section (no await ever happens while
 * it is held: that is what makes a flush at process exit safe), so the
 * section is short and the mkdir's own mtime is as fresh as a holder could
 * make it. That is why this lock does not go through proper-lockfile's
 * lockSync: its mtime refresh timer can never fire inside a synchronous
 * section, and the rest of it (an mtime-precision probe with utimes, a copy
 * of the fs module per call, its exit hook, a chmod after the mkdir) cost
 * about half of a non-synced commit. The compaction lock, held across awaits
 * for seconds, does use proper-lockfile and its refresh (compaction-lock.ts).
 *
 * Acquisition is retried here with a short jittered backoff until a
 * deadline; stale locks are taken over by takeOverIfStale.
 */
export class StoreLock {
  /** The held lock this process has been waiting on, and since when (monotonic ms) it has looked exactly so. */
  private watched: { identity: string; since: number } | undefined;
  /** The last mkdir refusal of this acquisition: the cause a LOCK_TIMEOUT reports. */
  private refusal: Error | undefined;

  constructor(private readonly options: StoreLockOptions) {}

  /** Runs `section` under the lock, waiting asynchronously for it. */
  async runLocked<T>(section: (lease: LockLease) => T): Promise<T> {
    const deadline = monotonicMs() + this.options.timeoutMs;
    for (let attempt = 0; ; attempt++) {
      const release = this.tryAcquire(deadline, attempt);
      if (release) return this.runAndRelease(section, release);
      await new Promise((resolve) => setTimeout(resolve, backoff(attempt)));
    }
  }

  /** Runs `section` under the lock, blocking the thread while waiting for it. */
  runLockedSync<T>(section: (lease: LockLease) => T): T {
    const deadline = monotonicMs() + this.options.timeoutMs;
    for (let attempt = 0; ; attempt++) {
      const release = this.tryAcquire(deadline, attempt);
      if (release) return this.runAndRelease(section, release);
      Atomics.wait(sleeper, 0, 0, backoff(attempt));
    }
  }

  /** True when another process (or this one) holds a fresh lock. */
  isHeld(): boolean {
    return lockHeld(this.options.lockPath, this.options.staleMs);
  }

  private tryAcquire(deadline: number, attempt: number): (() => void) | undefined {
    if (ownLeftovers.has(this.options.lockPath)) {
      try {
        fs.rmdirSync(this.options.lockPath);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('unlock', this.options.lockPath, err);
      }
      ownLeftovers.delete(this.options.lockPath);
    }
    // After a refusal, look before trying again: a mkdir that fails is a
    // directory operation, serialized with every other one on the store
    // directory (the holder's rmdir among them), and an Error with a stack;
    // a stat is neither. With four processes committing at once, failed
    // mkdirs were a quarter of each one's time.
    if (attempt > 0) {
      const look = lockLook(this.options.lockPath);
      if (look) return this.waitForHolder(deadline, look);
    }
    try {
      // 0700 like every directory of the store (the umask can only narrow it).
      fs.mkdirSync(this.options.lockPath, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('lock', this.options.lockPath, err);
      this.refusal = err as Error;
      return this.waitForHolder(deadline, lockLook(this.options.lockPath));
    }
    this.refusal = undefined;
    return () => fs.rmdirSync(this.options.lockPath);
  }

  /** The lock is held (as `look` saw it): take it over if stale, or give up at the deadline; undefined means try again. */
  private waitForHolder(deadline: number, look: LockLook | undefined): undefined {
    if (this.takeOverIfStale(look)) return undefined;
    if (monotonicMs() >= deadline) {
      const cause = this.refusal;
      this.refusal = undefined;
      throw new SessionJournalError(ErrorCodes.LOCK_TIMEOUT, `store ${this.options.dir} stayed locked for ${this.options.timeoutMs} ms`, {
        cause,
        details: { dir: this.options.dir, timeoutMs: this.options.timeoutMs },
      });
    }
    return undefined;
  }

  /**
   * Removes a held lock that is stale, so the next attempt can take it; true
   * when it did. Stale means: the same lock directory (the same holding) for
   * `stale` ms of this process's monotonic clock, or for TAKEOVER_GRACE_MS
   * when its mtime is also older than `stale` by this process's clock. The
   * first rule alone holds whatever the clocks of the holder and the waiter
   * say; the second takes a dead holder's lock over at once. A takeover is a
   * race at worst (two holders for a moment): the commit fence catches it.
   */
  private takeOverIfStale(look: LockLook | undefined): boolean {
    if (!look) return false; // gone already: the next attempt takes it
    const now = monotonicMs();
    if (this.watched?.identity !== look.identity) {
      this.watched = { identity: look.identity, since: now };
      return false;
    }
    const watchedMs = now - this.watched.since;
    const oldByMtime = look.mtimeMs < Date.now() - this.options.staleMs;
    if (watchedMs < this.options.staleMs && !(oldByMtime && watchedMs >= Math.min(TAKEOVER_GRACE_MS, this.options.staleMs))) return false;
    if (lockIdentity(this.options.lockPath) !== look.identity) return false; // taken and released meanwhile
    try {
      fs.rmdirSync(this.options.lockPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('unlock', this.options.lockPath, err);
    }
    this.watched = undefined;
    return true;
  }

  private runAndRelease<T>(section: (lease: LockLease) => T, release: () => void): T {
    const started = process.hrtime.bigint();
    let lease: LockLease | undefined;
    try {
      lease = new LockLease(this.options.lockPath, this.options.staleMs);
      return section(lease);
    } finally {
      try {
        // A holder stopped past `stale` may wake after a takeover: the
        // directory there now is the new holder's, and removing it would let
        // a third writer in beside the second. (A takeover between this look
        // and the rmdir is still possible, only far less likely; the commit
        // fence keeps such an overlap from acknowledging anything.)
        // No lease: looking at the directory just made failed (EIO), and it is ours to remove.
        if (!lease || lockStillOurs(lease)) release();
        else this.options.onCompromised(new Error('the lock directory was replaced while held (taken over): left to its new holder'));
      } catch (err) {
        // Gone: the lock was taken over (and released) while we held it.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') this.options.onCompromised(err as Error);
        // Still ours, but its directory could not be removed (EIO...): retried before the next acquisition.
        else ownLeftovers.add(this.options.lockPath);
      }
      // Nothing refreshes the mtime during a synchronous section; one that
      // outlives `stale` may have been overlapped by a takeover.
      const heldMs = Number(process.hrtime.bigint() - started) / 1e6;
      if (heldMs >= this.options.staleMs) {
        this.options.onCompromised(new Error(`lock held ${Math.round(heldMs)} ms, past the ${this.options.staleMs} ms stale limit`));
      }
    }
  }
}

/** lease.isOurs(), but a failing stat (EIO) answers yes: the release then does what it always did. */
function lockStillOurs(lease: LockLease): boolean {
  try {
    return lease.isOurs();
  } catch {
    return true;
  }
}

function backoff(attempt: number): number {
  const ceiling = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** attempt);
  return MIN_BACKOFF_MS + Math.random() * ceiling;
}
