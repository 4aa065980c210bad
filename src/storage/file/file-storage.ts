import { ErrorCodes, SessionJournalError, ioError, requirePositive } from '../../errors.js';
import type { QueuedEntry } from '../../engine/commit-queue.js';
import type { Commit, CommitContext, CommitSync, JournalStorage, StorageEnv, StorageFactory } from '../../engine/storage-port.js';
import { WarningCodes } from '../../engine/warnings.js';
import { SegmentChain, type DoubtResolution } from './segment-chain.js';
import type { Segment } from './segment.js';
import { LOCK_NAME, storePath } from './store-files.js';
import { DEFAULT_LOCK_STALE_MS, StoreLock, type LockLease } from './store-lock.js';
const fs = process.getBuiltinModule('node:fs');

/** fs.fdatasync looked up at each call, so a test can fail it. */
const fdatasync = (fd: number): Promise<void> => new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));

/** What a store directory takes besides what every journal does. */
export interface FileStorageOptions {
  /** Store directory; created 0700 when missing unless `create` is false. */
  dir: string;
  /** fsync each commit before acknowledging it (default true). */
  fsync?: boolean;
  /**
   * Give up waiting for the store lock after this long (default 20 s: longer
   * than lockStaleMs, so a lock left by a dead process is taken over before
   * a waiting writer gives up).
   */
  lockTimeoutMs?: number;
  /** A lock older than this is taken over (default 10 s, at least 2 s). */
  lockStaleMs?: number;
}

/** Stale after 10 s (+ up to 1 s of mtime rounding); waiting writers hold on for 20 s. */
const DEFAULT_LOCK_TIMEOUT_MS = 20_000;
const MAX_BATCH_BYTES = 64 * 1024;
/** Fenced attempts in a row that may fail to prove a commit before waiters get LOCK_COMPROMISED. */
const MAX_UNPROVEN_ATTEMPTS = 20;

/** A storage factory for a store directory. */
export const fileStorage =
  (options: FileStorageOptions): StorageFactory =>
  (env) =>
    new FileStorage(options, env);

/** What one locked section wrote: a commit to sync and acknowledge, its fdatasync perhaps already started. */
type Written = { segment: Segment; batch: QueuedEntry[]; syncing?: Promise<void> };

/**
 * A store directory as the journal's storage: segments replayed and
 * followed by the SegmentChain, each commit written under the store lock
 * (store-lock.ts) in one fenced O_APPEND write and made durable by
 * fdatasync (docs/FORMAT.md, "Writing").
 */
export class FileStorage implements JournalStorage {
  readonly location: string;
  private readonly fsync: boolean;
  private readonly lock: StoreLock;
  private readonly chain: SegmentChain;
  private readonly env: StorageEnv;
  /** Fenced attempts in a row that did not prove a commit (see MAX_UNPROVEN_ATTEMPTS). */
  private unproven = 0;
  private lastCommit: { segment: Segment; batch: QueuedEntry[] } | undefined;

  constructor(options: FileStorageOptions, env: StorageEnv) {
    this.location = options.dir;
    this.env = env;
    this.fsync = options.fsync ?? true;
    this.lock = new StoreLock({
      dir: options.dir,
      lockPath: storePath(options.dir, LOCK_NAME),
      timeoutMs: requirePositive('lockTimeoutMs', options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS),
      staleMs: Math.max(2000, options.lockStaleMs ?? DEFAULT_LOCK_STALE_MS),
      onCompromised: (err) => this.reportCompromise(err),
    });
    this.chain = new SegmentChain({
      dir: options.dir,
      consumer: env.consumer,
      readOnly: env.readOnly,
      maxLineBytes: env.maxLineBytes,
      maxRecordBytes: env.maxRecordBytes,
      warn: (w) => env.warn(w),
      isLockHeld: () => this.lock.isHeld(),
      writerJson: JSON.stringify(env.writer),
      hashChain: env.hashChain,
      onReplayProgress: env.onReplayProgress,
    });
  }

  get lastSeq(): number {
    return this.chain.lastSeq;
  }

  get lastHash(): string {
    return this.chain.lastHash;
  }

  get recordsSinceBase(): number {
    return this.chain.recordsSinceBase;
  }

  get growth(): { journalBytes: number; snapshotBytes: number } {
    return this.chain.growth;
  }

  get stats(): Readonly<{ commits: number; recordsWritten: number; bytesWritten: number }> {
    return this.chain.stats;
  }

  get hasDoubt(): boolean {
    return this.chain.hasDoubt;
  }

  canWrite(type: string, payloadBytes: number): boolean {
    return this.chain.canWrite(type, payloadBytes);
  }

  loadSync(create: boolean): void {
    this.chain.load(create);
  }

  load(create: boolean, pace?: (progress: number) => Promise<void> | undefined): Promise<void> {
    return this.chain.loadAsync(create, pace);
  }

  /** One fstat when nothing is new. */
  followSync(): void {
    this.chain.follow(false);
  }

  async follow(): Promise<void> {
    this.followSync();
  }

  async commit(ctx: CommitContext): Promise<Commit | undefined> {
    const written = await this.lock.runLocked((lease) => this.startSync(this.commitLocked(ctx, lease)));
    if (written === undefined || written === 'again') return written && { kind: 'again' };
    return { kind: 'written', batch: written.batch, durable: () => this.syncCommit(written) };
  }

  commitSync(ctx: CommitContext): CommitSync | undefined {
    const written = this.lock.runLockedSync((lease) => this.commitLocked(ctx, lease));
    if (written === undefined || written === 'again') return written && { kind: 'again' };
    return {
      kind: 'written',
      batch: written.batch,
      durableSync: () => {
        try {
          if (this.fsync) fs.fdatasyncSync(written.segment.fd);
        } catch (err) {
          throw ioError('fdatasync', written.segment.path, err);
        } finally {
          written.segment.settle();
        }
      },
    };
  }

  /**
   * Runs under the lock: catch up, seal a torn tail, settle a commit left in
   * doubt, let `decide` queue entries that depend on the caught-up state,
   * then write one batch in one fenced O_APPEND write (docs/FORMAT.md,
   * "Writing"). Nothing is acknowledged that was not proved in place.
   */
  private commitLocked(ctx: CommitContext, lease: LockLease): Written | 'again' | undefined {
    const seenSize = this.chain.follow(true);
    // Creating the first segment can fail too (a symlink in its place, EACCES): nothing is taken yet.
    const segment = this.chain.liveSegmentLocked();
    const size = this.chain.sealTornTailLocked(segment, seenSize ?? segment.reader.size());
    const doubt = this.chain.resolveDoubtLocked();
    if (doubt) this.settleDoubt(ctx, doubt);
    ctx.decide?.();
    const batch = ctx.queue.take(MAX_BATCH_BYTES);
    if (batch.length === 0) return undefined;
    let outcome;
    try {
      outcome = this.chain.writeLocked(segment, size, batch, lease, batch);
    } catch (err) {
      // A failed write leaves the batch in doubt (part of it may be in the file); no write, and it goes back.
      if (!this.chain.hasDoubt) ctx.queue.restore(batch);
      throw err;
    }
    if (outcome.kind !== 'written') {
      if (outcome.kind === 'not-written') ctx.queue.restore(batch);
      if (++this.unproven >= MAX_UNPROVEN_ATTEMPTS) {
        this.unproven = 0;
        throw new SessionJournalError(ErrorCodes.LOCK_COMPROMISED, `${MAX_UNPROVEN_ATTEMPTS} commits in a row could not be proved in place in ${segment.path} (the lock keeps being taken over, or the segment keeps changing); nothing of them was acknowledged`, { details: { dir: this.location } });
      }
      return 'again';
    }
    this.unproven = 0;
    // The seq of each record's last line: a record spread over several lines is applied with it.
    batch.forEach((entry, i) => (entry.seq = outcome.seqs[i]!));
    segment.expectSync();
    this.lastCommit = { segment, batch };
    ctx.committed(batch, segment.path);
    return { segment, batch };
  }

  /**
   * A commit left in doubt, read back under the lock: what readers apply is
   * this process's, synced and acknowledged; the rest goes back to the front
   * of the queue, so the commit being prepared writes it again.
   */
  private settleDoubt(ctx: CommitContext, doubt: DoubtResolution): void {
    if (doubt.requeue.length > 0) ctx.queue.restore(doubt.requeue);
    if (doubt.landed.length === 0) return;
    const segment = doubt.landedIn!;
    try {
      if (this.fsync) fs.fdatasyncSync(segment.fd);
    } catch (err) {
      throw ctx.syncFailed(doubt.landed[doubt.landed.length - 1]!.ticket, ioError('fdatasync', segment.path, err));
    }
    ctx.committed(doubt.landed, segment.path);
    const lastLanded = Math.max(...doubt.landed.map((e) => e.ticket));
    // Acknowledged now only if nothing older is still to be written; otherwise the next commit's acknowledgement covers them.
    if (doubt.requeue.every((e) => e.ticket > lastLanded)) ctx.queue.markDurable(lastLanded);
  }

  /**
   * Starts the fdatasync of a commit just written, still under the lock:
   * the order of commits is fixed once the bytes are in the file, so the
   * sync need not hold the lock, and started before the lock directory is
   * removed it runs in the thread pool while the rmdir does (both wait on
   * the file system's journal). The acknowledgement still waits for it.
   */
  private startSync(written: Written | 'again' | undefined): Written | 'again' | undefined {
    if (written === undefined || written === 'again' || !this.fsync) return written;
    written.syncing = fdatasync(written.segment.fd);
    written.syncing.catch(() => undefined); // awaited by syncCommit, which handles the failure
    return written;
  }

  /** Waits for the sync startSync began (or syncs now), then lets the segment's descriptor go when it may. */
  private async syncCommit(written: Written): Promise<void> {
    try {
      if (this.fsync) await (written.syncing ?? fdatasync(written.segment.fd));
    } catch (err) {
      throw ioError('fdatasync', written.segment.path, err);
    } finally {
      written.segment.settle();
    }
  }

  /**
   * Closes the live segment with a rotation marker and makes a new, empty
   * segment live; writers in every process follow the marker. The marker is
   * fsynced before the lock is released, so no write can land in the new
   * segment without it.
   */
  rotate(time: number, onSyncFailure: (failure: SessionJournalError) => void): Promise<{ closed: number; next: number; seq: number; hash: string }> {
    return this.lock.runLocked((lease) => this.chain.rotateLocked(time, lease, onSyncFailure));
  }

  private reportCompromise(err: Error): void {
    const commit = this.lastCommit;
    const range = commit ? `seq ${commit.batch[0]!.seq}-${commit.batch[commit.batch.length - 1]!.seq} in ${commit.segment.path}` : 'no commit';
    this.env.warn({
      code: WarningCodes.LOCK_COMPROMISED,
      message: `store lock lost around ${range} (${err.message}); a commit that was not proved in place is read back and written again, never acknowledged unproved`,
      file: this.location,
    });
  }

  release(): void {
    this.chain.release();
  }
}
