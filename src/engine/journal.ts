import fs from 'node:fs';
import os from 'node:os';
import { ErrorCodes, SessionJournalError, ioError, requirePositive } from '../errors.js';
import { CommitQueue, type QueuedEntry } from './commit-queue.js';
import { yieldToEventLoop } from './event-loop-yield.js';
import { registerForExit, unregisterForExit } from './exit-flush.js';
import { ENVELOPE_OVERHEAD_BYTES, PART_EVENT, REPAIR_EVENT, canonicalPayload } from './record-codec.js';
import { DEFAULT_MAX_RECORD_BYTES, requireRecordBytes } from './record-parts.js';
import { SegmentChain, type DoubtResolution, type JournalConsumer } from '../storage/file/segment-chain.js';
import type { Segment } from '../storage/file/segment.js';
import { LOCK_NAME, storePath } from '../storage/file/store-files.js';
import { DEFAULT_LOCK_STALE_MS, StoreLock, type LockLease } from '../storage/file/store-lock.js';
import { RepeatedFailure, WarningCodes, writeWarningToStderr, type JournalWarning, type WarningHandler } from './warnings.js';

export type { JournalConsumer } from '../storage/file/segment-chain.js';

/** fs.fdatasync looked up at each call, so a test can fail it. */
const fdatasync = (fd: number): Promise<void> => new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));

export interface JournalOptions {
  /** Store directory; created 0700 when missing unless `create` is false. */
  dir: string;
  consumer: JournalConsumer;
  /** fsync each commit before acknowledging it (default true). */
  fsync?: boolean;
  /** Never write or lock; for inspection tools. */
  readOnly?: boolean;
  /** Create the directory when missing (default: true unless readOnly). */
  create?: boolean;
  onWarning?: WarningHandler;
  /**
   * Longest line written or read (default 1 MiB). A record longer than one
   * line is written as several (docs/FORMAT.md, "Records spread over
   * several lines").
   */
  maxLineBytes?: number;
  /**
   * Largest record, its payload in UTF-8 bytes (default 64 MiB, at most
   * 256 MiB): a larger append throws RECORD_TOO_LARGE before anything is
   * queued, and readers skip a larger record (RECORD_TOO_LARGE warning)
   * rather than join it. Read a store with the limit it was written with.
   */
  maxRecordBytes?: number;
  /**
   * Give up waiting for the store lock after this long (default 20 s: longer
   * than lockStaleMs, so a lock left by a dead process is taken over before
   * a waiting writer gives up).
   */
  lockTimeoutMs?: number;
  /** A lock older than this is taken over (default 10 s, at least 2 s). */
  lockStaleMs?: number;
  /** Deferred entries are written at the latest this long after being queued (default 1 s). */
  deferredFlushMs?: number;
  /** Write queued entries synchronously on process exit (default true). */
  flushOnExit?: boolean;
  /** Clock for entry times, in epoch ms (tests control it). */
  clock?: () => number;
  /** Called after each commit is durable (off the append path: after acknowledgement). */
  onDurable?: () => void;
  /**
   * Chain records with `h` hashes (default true). Off, records carry no `h`:
   * replay is unaffected, `verify` reports them as unchained. For stores
   * that need no tamper evidence, and to measure what the chain costs.
   */
  hashChain?: boolean;
  /** Progress of the replay at open (bytes of segments read, out of total): for progress bars. */
  onReplayProgress?: (done: number, total: number) => void;
  /**
   * Journal.open only: awaited between replay steps with the bytes of
   * segments replayed so far, so the replay can keep pace with other work
   * (the compactor holds its fold to the archive's gzip).
   */
  replayPace?: (bytesReplayed: number) => Promise<void> | undefined;
}

export const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;

/** Stale after 10 s (+ up to 1 s of mtime rounding); waiting writers hold on for 20 s. */
const DEFAULT_LOCK_TIMEOUT_MS = 20_000;
const MAX_BATCH_BYTES = 64 * 1024;
/** A failed background commit is tried again after 1 s, then 2 s, 4 s, ... up to 60 s; back to 1 s after a success. */
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 60_000;
/** Each delay is shortened by up to this fraction at random, so processes failing together do not retry in step. */
const RETRY_JITTER = 0.2;
/** Fenced attempts in a row that may fail to prove a commit before waiters get LOCK_COMPROMISED. */
const MAX_UNPROVEN_ATTEMPTS = 20;

/**
 * What one locked section did: a commit to sync and acknowledge (its
 * fdatasync perhaps already started, see runCommits), or another attempt
 * needed.
 */
type Written = { kind: 'written'; segment: Segment; batch: QueuedEntry[]; syncing?: Promise<void> };
type Commit = Written | { kind: 'again' };

/**
 * The engine: an append-only NDJSON journal in segments, replayed at open,
 * caught up cheaply before reads, and written by group commit under the
 * store lock. It knows nothing about what the records mean.
 */
export class Journal {
  readonly dir: string;
  readonly writer = `${process.pid}@${os.hostname()}`;
  readonly fsync: boolean;
  readonly readOnly: boolean;
  readonly maxLineBytes: number;
  readonly maxRecordBytes: number;
  private readonly consumer: JournalConsumer;
  private readonly lock: StoreLock;
  private readonly queue = new CommitQueue();
  private readonly report: WarningHandler;
  private readonly clock: () => number;
  private readonly deferredFlushMs: number;
  private readonly onDurable: (() => void) | undefined;
  private readonly chain: SegmentChain;
  private committing = false;
  /** The commit loop running now, if any (close() waits for it). */
  private commitRun: Promise<void> = Promise.resolve();
  private closed = false;
  /** Why entries were still unwritten when the journal closed: every later flush() and close() rejects with it. */
  private closedWithPending: SessionJournalError | undefined;
  /** Fenced attempts in a row that did not prove a commit (see MAX_UNPROVEN_ATTEMPTS). */
  private unproven = 0;
  /**
   * A failed fdatasync, kept: the bytes it covered are in the file but may
   * never reach the disk, and a retried sync can report success for pages
   * the kernel already dropped. So no later flush() or close() may resolve
   * as if everything were durable; reopening the store starts over.
   */
  private syncFailure: SessionJournalError | undefined;
  private deferredTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Commits in a row that failed (the retry backs off with it), and their warnings, collapsed. */
  private failedCommits = 0;
  private readonly commitFailures: RepeatedFailure;
  private readonly catchUpFailures: RepeatedFailure;
  private lastCommit: { segment: Segment; batch: QueuedEntry[] } | undefined;

  private constructor(options: JournalOptions) {
    this.dir = options.dir;
    this.consumer = options.consumer;
    this.fsync = options.fsync ?? true;
    this.readOnly = options.readOnly ?? false;
    this.maxLineBytes = requirePositive('maxLineBytes', options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES);
    this.maxRecordBytes = requireRecordBytes('maxRecordBytes', options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES);
    this.report = options.onWarning ?? writeWarningToStderr;
    this.clock = options.clock ?? Date.now;
    this.deferredFlushMs = requirePositive('deferredFlushMs', options.deferredFlushMs ?? 1000);
    this.onDurable = options.onDurable;
    this.lock = new StoreLock({
      dir: this.dir,
      lockPath: storePath(this.dir, LOCK_NAME),
      timeoutMs: requirePositive('lockTimeoutMs', options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS),
      staleMs: Math.max(2000, options.lockStaleMs ?? DEFAULT_LOCK_STALE_MS),
      onCompromised: (err) => this.reportCompromise(err),
    });
    this.chain = new SegmentChain({
      dir: this.dir,
      consumer: skipRepairRecords(this.consumer),
      readOnly: this.readOnly,
      maxLineBytes: this.maxLineBytes,
      maxRecordBytes: this.maxRecordBytes,
      warn: (w) => this.warn(w),
      isLockHeld: () => this.lock.isHeld(),
      writerJson: JSON.stringify(this.writer),
      hashChain: options.hashChain ?? true,
      onReplayProgress: options.onReplayProgress,
    });
    this.commitFailures = new RepeatedFailure(WarningCodes.COMMIT_FAILED, 'background commit', this.dir, (w) => this.warn(w), this.clock);
    this.catchUpFailures = new RepeatedFailure(WarningCodes.CATCH_UP_FAILED, "reading other processes' commits", this.dir, (w) => this.warn(w), this.clock);
  }

  /** Opens the store and replays snapshot + journal. Throws only for the directory or I/O, never for content. */
  static openSync(options: JournalOptions): Journal {
    const journal = new Journal(options);
    journal.chain.load(options.create ?? !journal.readOnly);
    if (!journal.readOnly && (options.flushOnExit ?? true)) registerForExit(journal);
    return journal;
  }

  /** The same, letting the event loop run between replay steps (the journal is not usable before it resolves). */
  static async open(options: JournalOptions): Promise<Journal> {
    const journal = new Journal(options);
    try {
      await journal.chain.loadAsync(options.create ?? !journal.readOnly, options.replayPace);
    } catch (err) {
      journal.release(); // a replay stopped half-way (by its pace, or I/O) leaves no descriptor open
      throw err;
    }
    if (!journal.readOnly && (options.flushOnExit ?? true)) registerForExit(journal);
    return journal;
  }

  /** Sequence number of the last record applied or written. */
  get lastSeq(): number {
    return this.chain.lastSeq;
  }

  /** The chain head: hash of the last record applied or written (empty before any). */
  get lastHash(): string {
    return this.chain.lastHash;
  }

  /** What this process has written since it opened the journal. */
  get stats(): Readonly<{ commits: number; recordsWritten: number; bytesWritten: number }> {
    return this.chain.stats;
  }

  /** Records read from segments (not the snapshot) since open: 0 means the snapshot is the whole story. */
  get recordsSinceBase(): number {
    return this.chain.recordsSinceBase;
  }

  /**
   * Bytes of journal not yet folded into a snapshot (reset when this process
   * follows a rotation), and the size of the snapshot it opened on: the
   * inputs of the auto-compaction trigger. A compaction by another process
   * writes a newer snapshot that this number does not follow; the trigger
   * reads the newest one before it fires (see AutoCompactor).
   */
  get growth(): { journalBytes: number; snapshotBytes: number } {
    return this.chain.growth;
  }

  /** Entries appended but not yet written. */
  get pendingCount(): number {
    return this.queue.size;
  }

  now(): number {
    return this.clock();
  }

  warn(warning: JournalWarning): void {
    try {
      this.report(warning);
    } catch {
      // A failing warning handler must not break replay or commits.
    }
  }

  /**
   * Applies what other processes appended since the last look. Costs one
   * fstat when nothing is new. Never throws on file content.
   */
  catchUp(): void {
    if (this.closed) return;
    this.chain.follow(false);
  }

  /**
   * catchUp for reads that must not throw (codex-mcp-server's storage never
   * throws on a read): when the store cannot be read (the directory not
   * accessible, a file where it was, a FIFO where a segment belongs), the
   * view stays as it is and a CATCH_UP_FAILED warning says so, collapsed
   * when it repeats; the first catch-up that works again reports RECOVERED.
   * False when it failed. Errors that are not the store's (bugs) still throw.
   */
  tryCatchUp(): boolean {
    try {
      this.catchUp();
    } catch (err) {
      if (!(err instanceof SessionJournalError)) throw err;
      this.catchUpFailures.failed(`${err.code}: ${err.message}`, "reads answer from this process's view");
      return false;
    }
    this.catchUpFailures.succeeded();
    return true;
  }

  /**
   * Queues an entry for the next group commit and returns at once; the entry
   * is durable when `flush()` resolves. Deferred entries do not start a commit.
   * A record longer than maxLineBytes is written over several lines (in one
   * commit); one over maxRecordBytes throws RECORD_TOO_LARGE, and nothing is
   * queued.
   */
  append(type: string, payload: unknown, options: { time?: number; deferred?: boolean } = {}): QueuedEntry {
    if (this.closed) throw new SessionJournalError(ErrorCodes.CLOSED, `journal ${this.dir} is closed`);
    if (this.readOnly) throw new TypeError('append on a read-only journal');
    if (type === PART_EVENT) throw new TypeError(`${PART_EVENT} records are the engine's own`);
    const payloadJson = canonicalPayload(payload);
    if (payloadJson === undefined) throw new TypeError(`payload of ${type} is not JSON-serializable`);
    const bytes = Buffer.byteLength(payloadJson);
    if (bytes > this.maxRecordBytes) {
      throw new SessionJournalError(ErrorCodes.RECORD_TOO_LARGE, `a ${type} record of ${bytes} bytes exceeds maxRecordBytes (${this.maxRecordBytes})`, {
        details: { type, bytes, limit: this.maxRecordBytes },
      });
    }
    if (!this.chain.canWrite(type, bytes)) {
      throw new SessionJournalError(ErrorCodes.LINE_TOO_LONG, `a ${type} record of ${bytes} bytes does not fit in lines of maxLineBytes (${this.maxLineBytes}), not even spread over several: raise maxLineBytes`, {
        details: { type, bytes, limit: this.maxLineBytes },
      });
    }
    const payloadBytes = bytes + type.length + ENVELOPE_OVERHEAD_BYTES;
    const deferred = options.deferred ?? false;
    const entry = this.queue.push({ type, payloadJson, payloadBytes, time: options.time ?? this.clock(), deferred });
    if (deferred) this.armDeferredTimer();
    else this.kick();
    return entry;
  }

  /** Resolves when every entry appended before the call is durable (under the fsync policy). */
  flush(): Promise<void> {
    if (this.syncFailure) {
      this.kick(); // what is queued is still written, only never acknowledged
      return Promise.reject(this.syncFailure);
    }
    if (this.closedWithPending) return Promise.reject(this.closedWithPending);
    if (this.closed) return Promise.resolve();
    const done = this.queue.waitForAll();
    this.kick();
    return done;
  }

  /** Writes and syncs everything queued, blocking; for exit paths and synchronous callers. */
  flushSync(): void {
    if (this.closedWithPending) throw this.closedWithPending;
    while (this.queue.size > 0 || this.chain.hasDoubt) {
      const commit = this.lock.runLockedSync((lease) => this.commitLocked(lease));
      if (!commit) break;
      if (commit.kind === 'again') continue;
      const last = commit.batch[commit.batch.length - 1]!.ticket;
      try {
        if (this.fsync) fs.fdatasyncSync(commit.segment.fd);
      } catch (err) {
        throw this.syncFailed(last, ioError('fdatasync', commit.segment.path, err));
      } finally {
        commit.segment.settle();
      }
      this.queue.markDurable(last);
      this.commitSucceeded();
    }
    if (this.syncFailure) throw this.syncFailure;
  }

  /** Flushes, then releases files, timers and the exit hook. */
  async close(): Promise<void> {
    if (this.closed) {
      if (this.syncFailure) throw this.syncFailure;
      if (this.closedWithPending) throw this.closedWithPending;
      return;
    }
    try {
      await this.flush();
    } finally {
      // Also when flush() rejected: a commit it started must end before the files go.
      while (this.committing) await this.commitRun;
      this.release();
    }
  }

  closeSync(): void {
    if (this.closed) {
      if (this.syncFailure) throw this.syncFailure;
      if (this.closedWithPending) throw this.closedWithPending;
      return;
    }
    try {
      this.flushSync();
    } finally {
      this.release();
    }
  }

  /** Called by the exit hook: write what is queued, or say loudly what was not. */
  flushAtExit(): void {
    if (this.queue.size === 0 && !this.chain.hasDoubt) return;
    const count = this.queue.size;
    try {
      this.flushSync();
    } catch (err) {
      this.warn({ code: WarningCodes.EXIT_FLUSH_FAILED, message: `${count} queued entries could not be written at exit: ${(err as Error).message}`, file: this.dir });
    }
  }

  // ---- writing -----------------------------------------------------------

  private get wantsCommit(): boolean {
    return this.queue.wantsCommit || this.chain.hasDoubt;
  }

  private kick(): void {
    if (this.committing || this.closed || !this.wantsCommit) return;
    this.committing = true;
    // After the callbacks the event loop is running now, so appends made by
    // all of them share the commit; not by setImmediate, which fake timers
    // (vitest, @sinonjs/fake-timers) hold back until the test ticks.
    this.commitRun = yieldToEventLoop().then(() => this.runCommits());
  }

  private async runCommits(): Promise<void> {
    try {
      while (this.wantsCommit && !this.closed) {
        const commit = await this.lock.runLocked((lease) => this.startSync(this.commitLocked(lease)));
        if (!commit) break;
        if (commit.kind === 'again') continue;
        await this.syncCommit(commit);
        this.onDurable?.();
      }
    } catch (err) {
      this.onCommitFailure(err);
    } finally {
      this.committing = false;
    }
  }

  /**
   * Runs under the lock: catch up, seal a torn tail, settle a commit left in
   * doubt, let `decide` queue entries that depend on the caught-up state,
   * then write one batch in one fenced O_APPEND write (docs/FORMAT.md,
   * "Writing"). Nothing is acknowledged that was not proved in place.
   */
  private commitLocked(lease: LockLease, decide?: () => void): Commit | undefined {
    const seenSize = this.chain.follow(true);
    // Creating the first segment can fail too (a symlink in its place, EACCES): nothing is taken yet.
    const segment = this.chain.liveSegmentLocked();
    const size = this.chain.sealTornTailLocked(segment, seenSize ?? segment.reader.size());
    const doubt = this.chain.resolveDoubtLocked();
    if (doubt) this.settleDoubt(doubt);
    decide?.();
    const batch = this.queue.take(MAX_BATCH_BYTES);
    if (batch.length === 0) return undefined;
    let outcome;
    try {
      outcome = this.chain.writeLocked(segment, size, batch, lease, batch);
    } catch (err) {
      // A failed write leaves the batch in doubt (part of it may be in the file); no write, and it goes back.
      if (!this.chain.hasDoubt) this.queue.restore(batch);
      throw err;
    }
    if (outcome.kind !== 'written') {
      if (outcome.kind === 'not-written') this.queue.restore(batch);
      if (++this.unproven >= MAX_UNPROVEN_ATTEMPTS) {
        this.unproven = 0;
        throw new SessionJournalError(ErrorCodes.LOCK_COMPROMISED, `${MAX_UNPROVEN_ATTEMPTS} commits in a row could not be proved in place in ${segment.path} (the lock keeps being taken over, or the segment keeps changing); nothing of them was acknowledged`, { details: { dir: this.dir } });
      }
      return { kind: 'again' };
    }
    this.unproven = 0;
    // The seq of each record's last line: a record spread over several lines is applied with it.
    batch.forEach((entry, i) => (entry.seq = outcome.seqs[i]!));
    segment.expectSync();
    this.lastCommit = { segment, batch };
    this.tellCommitted(batch, segment);
    return { kind: 'written', segment, batch };
  }

  /**
   * A commit left in doubt, read back under the lock: what readers apply is
   * this process's, synced and acknowledged; the rest goes back to the front
   * of the queue, so the commit being prepared writes it again.
   */
  private settleDoubt(doubt: DoubtResolution): void {
    if (doubt.requeue.length > 0) this.queue.restore(doubt.requeue);
    if (doubt.landed.length === 0) return;
    const segment = doubt.landedIn!;
    try {
      if (this.fsync) fs.fdatasyncSync(segment.fd);
    } catch (err) {
      throw this.syncFailed(doubt.landed[doubt.landed.length - 1]!.ticket, ioError('fdatasync', segment.path, err));
    }
    this.tellCommitted(doubt.landed, segment);
    const lastLanded = Math.max(...doubt.landed.map((e) => e.ticket));
    // Acknowledged now only if nothing older is still to be written; otherwise the next commit's acknowledgement covers them.
    if (doubt.requeue.every((e) => e.ticket > lastLanded)) this.queue.markDurable(lastLanded);
  }

  private tellCommitted(entries: readonly QueuedEntry[], segment: Segment): void {
    try {
      this.consumer.committed?.(entries);
    } catch (err) {
      this.warn({ code: WarningCodes.INVALID_PAYLOAD, message: `reducer failed on own commit: ${(err as Error).message}`, file: segment.path });
    }
  }

  /**
   * Closes the live segment with a rotation marker and makes a new, empty
   * segment live; writers in every process follow the marker. Returns the
   * closed and the new segment numbers and the marker's sequence number. The marker is fsynced before the lock
   * is released, so no write can land in the new segment without it.
   */
  async rotate(): Promise<{ closed: number; next: number; seq: number; hash: string }> {
    if (this.readOnly || this.closed) throw new SessionJournalError(ErrorCodes.CLOSED, `journal ${this.dir} is closed or read-only`);
    return this.lock.runLocked((lease) =>
      this.chain.rotateLocked(this.clock(), lease, (failure) => {
        // The marker's sync failing uses up the error a pending commit's sync on the same file would have seen.
        this.syncFailure ??= failure;
        this.queue.failWaiters(failure);
      }),
    );
  }

  /**
   * Appends entries chosen under the lock, after every record committed
   * before has been applied, so the choice cannot race another writer (the
   * compactor journals retention this way). Resolves once they are durable.
   */
  async appendDecided(decide: () => ReadonlyArray<{ type: string; payload: unknown; time?: number }>): Promise<number> {
    // Before the lock: a read-only journal must not even create journal.lock.
    if (this.readOnly || this.closed) throw new SessionJournalError(ErrorCodes.CLOSED, `journal ${this.dir} is closed or read-only`);
    let count = 0;
    const commit = await this.lock.runLocked((lease) =>
      this.commitLocked(lease, () => {
        for (const e of decide()) {
          this.append(e.type, e.payload, { time: e.time, deferred: true });
          count++;
        }
      }),
    );
    if (commit?.kind === 'written') await this.syncCommit(commit);
    await this.flush();
    return count;
  }

  /**
   * Starts the fdatasync of a commit just written, still under the lock:
   * the order of commits is fixed once the bytes are in the file, so the
   * sync need not hold the lock, and started before the lock directory is
   * removed it runs in the thread pool while the rmdir does (both wait on
   * the file system's journal). The acknowledgement still waits for it.
   */
  private startSync(commit: Commit | undefined): Commit | undefined {
    if (commit?.kind !== 'written' || !this.fsync) return commit;
    commit.syncing = fdatasync(commit.segment.fd);
    commit.syncing.catch(() => undefined); // awaited by syncCommit, which handles the failure
    return commit;
  }

  /**
   * fdatasync a written commit (or wait for the sync startSync began), then acknowledge it. If the sync fails, the
   * bytes are in the file and must not be queued again, but they are not
   * known durable: whoever waits for them gets the error instead.
   */
  private async syncCommit(commit: Written): Promise<void> {
    const last = commit.batch[commit.batch.length - 1]!.ticket;
    try {
      if (this.fsync) await (commit.syncing ?? fdatasync(commit.segment.fd));
    } catch (err) {
      throw this.syncFailed(last, ioError('fdatasync', commit.segment.path, err));
    } finally {
      commit.segment.settle();
    }
    this.queue.markDurable(last);
    this.commitSucceeded();
  }

  /** A commit is durable: retries start again from the shortest delay, and warned failures are said to be over. */
  private commitSucceeded(): void {
    this.failedCommits = 0;
    this.commitFailures.succeeded();
  }

  /** Records a failed sync (see syncFailure) and fails whoever waits on the entries it covered. */
  private syncFailed(lastTicket: number, failure: SessionJournalError): SessionJournalError {
    this.syncFailure ??= failure;
    this.queue.markFailed(lastTicket, failure);
    return failure;
  }

  private onCommitFailure(err: unknown): void {
    const retry = (this.queue.size > 0 || this.chain.hasDoubt) && !this.retryTimer && !this.closed;
    const delay = retry ? this.retryDelayMs(++this.failedCommits) : 0;
    if (this.queue.hasWaiters) {
      this.queue.failWaiters(err);
    } else if (err === this.syncFailure) {
      this.warn({ code: WarningCodes.COMMIT_FAILED, message: `fdatasync failed; what was written may not be durable, so every later flush() and close() fails until the store is reopened: ${(err as Error).message}`, file: this.dir });
    } else {
      this.commitFailures.failed((err as Error).message, retry ? `retrying in ${formatDelay(delay)}` : this.retryTimer ? 'a retry is scheduled' : 'nothing is left to retry');
    }
    if (retry) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.kick();
      }, delay).unref();
    }
  }

  /** 1 s, 2 s, 4 s, ... up to 60 s for the nth failure in a row, less up to 20 % at random. */
  private retryDelayMs(failures: number): number {
    const nominal = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** Math.min(failures - 1, 30));
    return Math.round(nominal * (1 - RETRY_JITTER * Math.random()));
  }

  private armDeferredTimer(): void {
    if (this.deferredTimer) return;
    this.deferredTimer = setTimeout(() => {
      this.deferredTimer = undefined;
      this.flush().catch(() => undefined); // failures are reported by onCommitFailure
    }, this.deferredFlushMs).unref();
  }

  private reportCompromise(err: Error): void {
    const commit = this.lastCommit;
    const range = commit ? `seq ${commit.batch[0]!.seq}-${commit.batch[commit.batch.length - 1]!.seq} in ${commit.segment.path}` : 'no commit';
    this.warn({
      code: WarningCodes.LOCK_COMPROMISED,
      message: `store lock lost around ${range} (${err.message}); a commit that was not proved in place is read back and written again, never acknowledged unproved`,
      file: this.dir,
    });
  }

  private release(): void {
    const pending = this.queue.size + (this.chain.hasDoubt ? 1 : 0);
    if (pending > 0 && !this.syncFailure) {
      this.closedWithPending = new SessionJournalError(ErrorCodes.CLOSED, `journal ${this.dir} was closed with entries not written (a commit failed before close); they are not in the journal`, { details: { dir: this.dir } });
    }
    this.closed = true;
    clearTimeout(this.deferredTimer);
    clearTimeout(this.retryTimer);
    unregisterForExit(this);
    this.chain.release();
  }
}

const formatDelay = (ms: number): string => (ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`);

/** A `journal.repair` record is the engine's note for verify: no reducer sees it. */
function skipRepairRecords(consumer: JournalConsumer): JournalConsumer {
  return {
    reset: () => consumer.reset(),
    restore: (entry) => consumer.restore(entry),
    apply: (record) => (record.type === REPAIR_EVENT ? undefined : consumer.apply(record)),
    ...(consumer.committed && { committed: (entries: readonly QueuedEntry[]) => consumer.committed!(entries) }),
    ...(consumer.restoreEntry && { restoreEntry: (entry: Parameters<NonNullable<JournalConsumer['restoreEntry']>>[0]) => consumer.restoreEntry!(entry) }),
  };
}
