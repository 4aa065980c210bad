import { ErrorCodes, SessionJournalError, requirePositive } from '../errors.js';
import { CommitQueue, type QueuedEntry } from './commit-queue.js';
import { isStorableTime } from './dates.js';
import { yieldToEventLoop } from './event-loop-yield.js';
import { registerForExit, unregisterForExit } from './exit-flush.js';
import type { JournalConsumer } from './journal-consumer.js';
import { ENVELOPE_OVERHEAD_BYTES, PART_EVENT, REPAIR_EVENT, canonicalPayload, recordTime } from './record-codec.js';
import { DEFAULT_MAX_RECORD_BYTES, requireRecordBytes } from './record-parts.js';
import { DurabilityOwed, type Commit, type CommitContext, type CommitSync, type JournalStorage, type StorageFactory } from './storage-port.js';
import { RepeatedFailure, WarningCodes, writeWarningToStderr, type JournalWarning, type WarningHandler } from './warnings.js';
const os = process.getBuiltinModule('node:os');

/** What every journal takes, whatever its storage. */
export interface GroupCommitOptions {
  consumer: JournalConsumer;
  /** Never write; for inspection tools. */
  readOnly?: boolean;
  /** Create the store when missing (default: true unless readOnly). */
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
  /** Deferred entries are written at the latest this long after being queued (default 1 s). */
  deferredFlushMs?: number;
  /** Write queued entries synchronously on process exit (default true). */
  flushOnExit?: boolean;
  /** Clock for entry times, in epoch ms (tests control it). */
  clock?: () => number;
  /** Called after each commit is durable (off the append path: after acknowledgement), and once after a flushSync that wrote. */
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

const MAX_BATCH_BYTES = 64 * 1024;
/** A failed background commit is tried again after 1 s, then 2 s, 4 s, ... up to 60 s; back to 1 s after a success. */
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 60_000;
/** Each delay is shortened by up to this fraction at random, so processes failing together do not retry in step. */
const RETRY_JITTER = 0.2;

export interface AppendOptions {
  /** The mutation's clock reading (default: the journal's clock now). */
  time?: number;
  /** Waits for the next commit instead of starting one (an access-time refresh). */
  deferred?: boolean;
}

/**
 * Reads a record as every replay will, from its canonical payload JSON and
 * envelope time: what the store's view applies. Throws to refuse what a
 * replay would refuse (appendDecoded then throws it, and queues nothing).
 */
export type RecordDecoder<T> = (payloadJson: string, time: number) => T;

/**
 * The engine: a journal of records, replayed at open, caught up cheaply
 * before reads, and written by group commit through a storage (the port,
 * storage-port.ts). It knows nothing about what the records mean, nor
 * where they are kept.
 */
export class GroupCommitJournal {
  readonly writer = `${process.pid}@${os.hostname()}`;
  readonly readOnly: boolean;
  readonly maxLineBytes: number;
  readonly maxRecordBytes: number;
  protected readonly storage: JournalStorage;
  private readonly consumer: JournalConsumer;
  private readonly queue = new CommitQueue();
  private readonly report: WarningHandler;
  private readonly clock: () => number;
  private readonly deferredFlushMs: number;
  private readonly onDurable: (() => void) | undefined;
  private committing = false;
  /** The commit loop running now, if any (close() waits for it). */
  private commitRun: Promise<void> = Promise.resolve();
  private closed = false;
  /** Why entries were still unwritten when the journal closed: every later flush() and close() rejects with it. */
  private closedWithPending: SessionJournalError | undefined;
  /**
   * A failed sync, kept: the bytes it covered are in the store but may
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
  private readonly commitContext: CommitContext;

  protected constructor(options: GroupCommitOptions, storage: StorageFactory) {
    this.consumer = options.consumer;
    this.readOnly = options.readOnly ?? false;
    this.maxLineBytes = requirePositive('maxLineBytes', options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES);
    this.maxRecordBytes = requireRecordBytes('maxRecordBytes', options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES);
    this.report = options.onWarning ?? writeWarningToStderr;
    this.clock = options.clock ?? Date.now;
    this.deferredFlushMs = requirePositive('deferredFlushMs', options.deferredFlushMs ?? 1000);
    this.onDurable = options.onDurable;
    this.storage = storage({
      consumer: skipRepairRecords(this.consumer),
      readOnly: this.readOnly,
      maxLineBytes: this.maxLineBytes,
      maxRecordBytes: this.maxRecordBytes,
      hashChain: options.hashChain ?? true,
      writer: this.writer,
      onReplayProgress: options.onReplayProgress,
      warn: (w) => this.warn(w),
    });
    const where = this.storage.location;
    this.commitFailures = new RepeatedFailure(WarningCodes.COMMIT_FAILED, 'background commit', where, (w) => this.warn(w), this.clock);
    this.catchUpFailures = new RepeatedFailure(WarningCodes.CATCH_UP_FAILED, "reading other processes' commits", where, (w) => this.warn(w), this.clock);
    this.commitContext = this.contextFor(undefined);
  }

  /** Replays the store, blocking (storages with local reads only). Throws only for the store's place or I/O, never for content. */
  protected loadSync(options: GroupCommitOptions): void {
    if (!this.storage.loadSync) throw syncUnsupported(this.storage.location, 'openSync');
    this.storage.loadSync(options.create ?? !this.readOnly);
    this.registerExitFlush(options);
  }

  /** The same, letting the event loop run between replay steps (the journal is not usable before it resolves). */
  protected async load(options: GroupCommitOptions): Promise<void> {
    try {
      await this.storage.load(options.create ?? !this.readOnly, options.replayPace);
    } catch (err) {
      this.release(); // a replay stopped half-way (by its pace, or I/O) leaves nothing open
      throw err;
    }
    this.registerExitFlush(options);
  }

  private registerExitFlush(options: GroupCommitOptions): void {
    if (!this.readOnly && (options.flushOnExit ?? true)) registerForExit(this);
  }

  /** Where the store is: its directory, or its Redis server and prefix. */
  get dir(): string {
    return this.storage.location;
  }

  /** Sequence number of the last record applied or written. */
  get lastSeq(): number {
    return this.storage.lastSeq;
  }

  /** The chain head: hash of the last record applied or written (empty before any). */
  get lastHash(): string {
    return this.storage.lastHash;
  }

  /** What this process has written since it opened the journal. */
  get stats(): Readonly<{ commits: number; recordsWritten: number; bytesWritten: number }> {
    return this.storage.stats;
  }

  /** Records read from the journal (not the snapshot) since open: 0 means the snapshot is the whole story. */
  get recordsSinceBase(): number {
    return this.storage.recordsSinceBase;
  }

  /**
   * Bytes of journal not yet folded into a snapshot (reset when this process
   * follows a rotation), and the size of the snapshot it opened on: the
   * inputs of the auto-compaction trigger. A compaction by another process
   * writes a newer snapshot that this number does not follow; the trigger
   * reads the newest one before it fires (see AutoCompactor).
   */
  get growth(): { journalBytes: number; snapshotBytes: number } {
    return this.storage.growth;
  }

  /** Entries appended but not yet written. */
  get pendingCount(): number {
    return this.queue.size;
  }

  /**
   * True for a storage on this host (a directory): catchUp() reads it
   * itself, the sync calls work, and a child process can compact it. False
   * for one reached over the network (Redis): only follow() reads it.
   */
  get isLocal(): boolean {
    return this.storage.followSync !== undefined;
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
   * fstat when nothing is new. Never throws on file content. On a storage
   * that cannot be read synchronously (Redis) it does nothing: await
   * follow() for that.
   */
  catchUp(): void {
    if (this.closed) return;
    this.storage.followSync?.();
  }

  /** Applies what other processes had committed before the call, on any storage. */
  async follow(): Promise<void> {
    if (this.closed) return;
    await this.storage.follow();
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
      return this.catchUpFailed(err);
    }
    this.catchUpFailures.succeeded();
    return true;
  }

  /** follow() that does not throw for the store's failures: as tryCatchUp. */
  async tryFollow(): Promise<boolean> {
    try {
      await this.follow();
    } catch (err) {
      return this.catchUpFailed(err);
    }
    this.catchUpFailures.succeeded();
    return true;
  }

  private catchUpFailed(err: unknown): false {
    if (!(err instanceof SessionJournalError)) throw err;
    this.catchUpFailures.failed(`${err.code}: ${err.message}`, "reads answer from this process's view");
    return false;
  }

  /**
   * Queues an entry for the next group commit and returns at once; the entry
   * is durable when `flush()` resolves. Deferred entries do not start a commit.
   * A record longer than maxLineBytes is written over several lines (in one
   * commit); one over maxRecordBytes throws RECORD_TOO_LARGE, and nothing is
   * queued.
   */
  append(type: string, payload: unknown, options: AppendOptions = {}): QueuedEntry {
    return this.queueRecord(type, payload, options, undefined);
  }

  /**
   * append(), also returning the record as a replay will decode it: a store
   * applies that to its view, never the caller's objects, so the view equals
   * a replay. `decode` runs once the record is known to fit and before it is
   * queued; what it throws, this throws, with nothing queued.
   */
  appendDecoded<T>(type: string, payload: unknown, decode: RecordDecoder<T>, options: AppendOptions = {}): { entry: QueuedEntry; decoded: T } {
    let decoded: T | undefined;
    const entry = this.queueRecord(type, payload, options, (payloadJson, time) => {
      decoded = decode(payloadJson, time);
    });
    return { entry, decoded: decoded as T };
  }

  private queueRecord(type: string, payload: unknown, options: AppendOptions, admit: RecordDecoder<void> | undefined): QueuedEntry {
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
    if (!this.storage.canWrite(type, bytes)) {
      throw new SessionJournalError(ErrorCodes.LINE_TOO_LONG, `a ${type} record of ${bytes} bytes does not fit in lines of maxLineBytes (${this.maxLineBytes}), not even spread over several: raise maxLineBytes`, {
        details: { type, bytes, limit: this.maxLineBytes },
      });
    }
    const time = options.time ?? this.clock();
    if (!isStorableTime(Math.trunc(time))) {
      // Written, it would be acknowledged and then skipped by every replay (INVALID_DATE).
      throw new SessionJournalError(ErrorCodes.INVALID_DATE, `a ${type} record's time must be within years 0000-9999 (docs/FORMAT.md), and the clock read ${time}: not queued`, { details: { type, time } });
    }
    admit?.(payloadJson, recordTime(time));
    const payloadBytes = bytes + type.length + ENVELOPE_OVERHEAD_BYTES;
    const deferred = options.deferred ?? false;
    const entry = this.queue.push({ type, payloadJson, payloadBytes, time, deferred });
    if (deferred) this.armDeferredTimer();
    else this.kick();
    return entry;
  }

  /** Resolves when every entry appended before the call is durable (under the storage's durability). */
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

  /** Writes and syncs everything queued, blocking; for exit paths and synchronous callers (local storages only). */
  flushSync(): void {
    if (this.closedWithPending) throw this.closedWithPending;
    const commitSync = this.storage.commitSync?.bind(this.storage);
    if (!commitSync) {
      if (this.queue.size > 0 || this.storage.hasDoubt) throw syncUnsupported(this.dir, 'flushSync');
    } else {
      let acknowledged = false;
      while (this.queue.size > 0 || this.storage.hasDoubt) {
        const commit = commitSync(this.commitContext);
        if (!commit) break;
        if (commit.kind === 'again') continue;
        const last = commit.batch[commit.batch.length - 1]!.ticket;
        try {
          commit.durableSync();
        } catch (err) {
          throw this.syncFailed(last, err as SessionJournalError);
        }
        this.queue.markDurable(last);
        this.commitSucceeded();
        acknowledged = true;
      }
      // As after an asynchronous commit: a short-lived process that only ever flushes synchronously (a hook's fork) compacts too.
      if (acknowledged) this.onDurable?.();
    }
    if (this.syncFailure) throw this.syncFailure;
  }

  /** Flushes, then releases files, connections, timers and the exit hook. */
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
    if (this.queue.size === 0 && !this.storage.hasDoubt) return;
    const count = this.queue.size;
    try {
      this.flushSync();
    } catch (err) {
      // Nothing queued, only a doubt (a commit in doubt, or one no replica confirmed): say that, not "0 entries".
      const what = count > 0 ? `${count} queued entries could not be written at exit` : 'a commit whose outcome (or replication) was not known yet could not be settled at exit';
      this.warn({ code: WarningCodes.EXIT_FLUSH_FAILED, message: `${what}: ${(err as Error).message}`, file: this.dir });
    }
  }

  /**
   * Closes the live segment with a rotation marker and makes a new, empty
   * segment live; writers in every process follow the marker (storages with
   * segments only: a directory).
   */
  async rotate(): Promise<{ closed: number; next: number; seq: number; hash: string }> {
    if (this.readOnly || this.closed) throw new SessionJournalError(ErrorCodes.CLOSED, `journal ${this.dir} is closed or read-only`);
    if (!this.storage.rotate) throw new TypeError(`journal ${this.dir} has no segments to rotate`);
    return this.storage.rotate(this.clock(), (failure) => {
      // The marker's sync failing uses up the error a pending commit's sync on the same file would have seen.
      this.syncFailure ??= failure;
      this.queue.failWaiters(failure);
    });
  }

  /**
   * Appends entries chosen in the commit's exclusive section, after every
   * record committed before has been applied, so the choice cannot race
   * another writer (the compactor journals retention this way). Resolves
   * once they are durable.
   *
   * `repeatable`: `decide` returns its entries, or appends them itself and
   * undoes what a run before did (its entries are dropped from the queue
   * before it runs again). A storage
   * whose commits are optimistic (Redis) then runs it again, on the view
   * caught up, when another writer moved the head before the entries were
   * written, and writes only the last run's, so the decision always holds
   * for the head the entries follow. Without it, a lost race writes the
   * entries decided first after what the other writer appended.
   */
  async appendDecided(decide: () => ReadonlyArray<{ type: string; payload: unknown; time?: number }>, options: { repeatable?: boolean } = {}): Promise<number> {
    // Before any exclusion: a read-only journal must not even create journal.lock.
    if (this.readOnly || this.closed) throw new SessionJournalError(ErrorCodes.CLOSED, `journal ${this.dir} is closed or read-only`);
    let count = 0;
    const commit = await this.storage.commit(
      this.contextFor(() => {
        count = 0;
        for (const e of decide()) {
          this.append(e.type, e.payload, { time: e.time, deferred: true });
          count++;
        }
      }, options.repeatable ?? false),
    );
    if (commit?.kind === 'written') await this.acknowledge(commit);
    await this.flush();
    return count;
  }

  // ---- writing -----------------------------------------------------------

  private contextFor(decide: (() => void) | undefined, decideAgain = false): CommitContext {
    return {
      queue: this.queue,
      decide,
      decideAgain,
      committed: (entries, where) => this.tellCommitted(entries, where),
      syncFailed: (ticket, failure) => this.syncFailed(ticket, failure),
    };
  }

  private get wantsCommit(): boolean {
    return this.queue.wantsCommit || this.storage.hasDoubt;
  }

  private kick(): void {
    if (this.committing || this.closed || !this.wantsCommit) return;
    this.committing = true;
    // After the callbacks the event loop is running now, so appends made by
    // all of them share the commit; not by setImmediate, which fake timers
    // (vitest, @sinonjs/fake-timers) hold back until the test ticks. A
    // microtask first: a caller that goes on to flushSync or closeSync in the
    // same turn (a hook's fork) has written everything by then, and never
    // pays for the yield (event-loop-yield.ts).
    this.commitRun = Promise.resolve()
      .then(() => (this.wantsCommit && !this.closed ? yieldToEventLoop() : undefined))
      .then(() => this.runCommits());
  }

  private async runCommits(): Promise<void> {
    try {
      while (this.wantsCommit && !this.closed) {
        const commit = await this.storage.commit(this.commitContext);
        if (!commit) {
          // Nothing left to write, and what the storage owed (a doubt settled, a durability proved) is done: failures are over.
          if (this.failedCommits > 0) this.commitSucceeded();
          break;
        }
        if (commit.kind === 'again') continue;
        await this.acknowledge(commit);
        this.onDurable?.();
      }
    } catch (err) {
      this.onCommitFailure(err);
    } finally {
      this.committing = false;
    }
  }

  /**
   * Waits for a written commit to be durable, then acknowledges it. If that
   * fails, its records are in the store and must not be queued again, but
   * they are not known durable: whoever waits for them gets the error instead.
   */
  private async acknowledge(commit: Extract<Commit, { kind: 'written' }>): Promise<void> {
    const last = commit.batch[commit.batch.length - 1]!.ticket;
    try {
      await commit.durable();
    } catch (err) {
      // Owed: its waiters fail (onCommitFailure) and the storage proves it later; durable up to `last` it is not.
      if (err instanceof DurabilityOwed) throw err.failure;
      throw this.syncFailed(last, err as SessionJournalError);
    }
    this.queue.markDurable(last);
    this.commitSucceeded();
  }

  private tellCommitted(entries: readonly QueuedEntry[], where: string): void {
    try {
      this.consumer.committed?.(entries);
    } catch (err) {
      this.warn({ code: WarningCodes.INVALID_PAYLOAD, message: `reducer failed on own commit: ${(err as Error).message}`, file: where });
    }
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
    const retry = (this.queue.size > 0 || this.storage.hasDoubt) && !this.retryTimer && !this.closed;
    const delay = retry ? this.retryDelayMs(++this.failedCommits) : 0;
    if (this.queue.hasWaiters) {
      this.queue.failWaiters(err);
    } else if (err === this.syncFailure) {
      this.warn({ code: WarningCodes.COMMIT_FAILED, message: `a commit's sync failed; what was written may not be durable, so every later flush() and close() fails until the store is reopened: ${(err as Error).message}`, file: this.dir });
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

  private release(): void {
    const pending = this.queue.size + (this.storage.hasDoubt ? 1 : 0);
    if (pending > 0 && !this.syncFailure) {
      this.closedWithPending = new SessionJournalError(ErrorCodes.CLOSED, `journal ${this.dir} was closed with entries not written (a commit failed before close); they are not in the journal`, { details: { dir: this.dir } });
    }
    this.closed = true;
    clearTimeout(this.deferredTimer);
    clearTimeout(this.retryTimer);
    unregisterForExit(this);
    this.storage.release();
  }
}

const formatDelay = (ms: number): string => (ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`);

function syncUnsupported(where: string, call: string): SessionJournalError {
  return new SessionJournalError(ErrorCodes.SYNC_UNSUPPORTED, `${call} needs a storage with local reads and writes; ${where} is reached over the network: use the async call`, { details: { dir: where } });
}

/** A `journal.repair` record is the engine's note for verify: no reducer sees it. */
function skipRepairRecords(consumer: JournalConsumer): JournalConsumer {
  return {
    reset: () => consumer.reset(),
    restore: (entry) => consumer.restore(entry),
    apply: (record, later) => (record.type === REPAIR_EVENT ? undefined : consumer.apply(record, later)),
    ...(consumer.committed && { committed: (entries: readonly QueuedEntry[]) => consumer.committed!(entries) }),
    ...(consumer.restoreEntry && { restoreEntry: (entry: Parameters<NonNullable<JournalConsumer['restoreEntry']>>[0]) => consumer.restoreEntry!(entry) }),
  };
}

export type { CommitSync };
