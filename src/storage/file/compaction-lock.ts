import { properLockfile } from '../../lazy.js';
import { ErrorCodes, SessionJournalError, ioError } from '../../errors.js';
import { restrictLockDir } from './store-files.js';

export { COMPACTION_LOCK_NAME } from './store-layout.js';

/**
 * One compaction at a time per store. Unlike the journal lock this one is
 * held for the whole compaction, so proper-lockfile keeps it fresh with its
 * mtime timer; if it is nevertheless lost, `compromised` is set (never
 * thrown in a timer) and the compactor stops at its next step.
 */
export class CompactionLock {
  compromised: Error | undefined;
  private release: (() => Promise<void>) | undefined;

  constructor(
    private readonly dir: string,
    private readonly lockPath: string,
  ) {}

  /** Waits up to `timeoutMs`; throws LOCK_TIMEOUT when another compaction keeps it, `signal.reason` once `signal` aborts. */
  async acquire(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (let wait = 10; ; wait = Math.min(wait * 2, 500)) {
      signal?.throwIfAborted();
      try {
        // The synchronous API: a failure after mkdir removes the directory
        // before it throws (the async one removes it later, unawaited). It
        // still keeps the lock fresh with its timer.
        const release = properLockfile().lockSync(this.lockPath.replace(/\.lock$/, ''), {
          lockfilePath: this.lockPath,
          realpath: false,
          stale: 30_000,
          update: 5_000,
          onCompromised: (err) => {
            this.compromised = err;
          },
        });
        restrictLockDir(this.lockPath, release);
        this.release = async () => release();
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw ioError('lock', this.lockPath, err);
        if (Date.now() + wait > deadline) {
          throw new SessionJournalError(ErrorCodes.LOCK_TIMEOUT, `another compaction of ${this.dir} held its lock for ${timeoutMs} ms`, {
            cause: err,
            details: { dir: this.dir, timeoutMs },
          });
        }
        await sleep(wait, signal);
      }
    }
  }

  /** Throws LOCK_COMPROMISED if the lock was lost since it was taken. */
  check(step: string): void {
    if (this.compromised) {
      throw new SessionJournalError(ErrorCodes.LOCK_COMPROMISED, `compaction lock lost before ${step}: ${this.compromised.message}`, { cause: this.compromised });
    }
  }

  async releaseQuietly(): Promise<void> {
    const release = this.release;
    this.release = undefined;
    if (!release) return;
    try {
      await release();
    } catch {
      // already released or taken over; nothing of ours to undo
    }
  }
}

/** Resolves after `ms`, or at once when `signal` aborts (the loop above then throws). */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
