import fs from 'node:fs';
import os from 'node:os';
import { promisify } from 'node:util';
import { ErrorCodes, SessionJournalError, ioError } from '../errors.js';
import { readSnapshotSync } from '../snapshot/snapshot-file.js';
import { CommitQueue, type QueuedEntry } from './commit-queue.js';
import { CHAIN_START, ENVELOPE_OVERHEAD_BYTES, ROTATE_EVENT, canonicalPayload, decodeRecord, encodeRecord, type JournalRecord, type Rejection } from './record-codec.js';
import { SegmentReader, type LinePlace } from './segment-reader.js';
import { LOCK_NAME, closeQuietly, fsyncDirSync, listStore, openStoreFile, prepareStoreDir, segmentName, snapshotName, storePath } from './store-files.js';
import { StoreLock } from './store-lock.js';
import { WarningCodes, writeWarningToStderr, type JournalWarning, type WarningHandler } from './warnings.js';
import { registerForExit, unregisterForExit } from './exit-flush.js';

const fdatasync = promisify(fs.fdatasync);

/**
 * What the engine drives. A reducer turns records into state; the engine only
 * knows envelopes, order and durability. No method may throw on bad content:
 * return a Rejection and the engine reports it with file and line.
 */
export interface JournalConsumer {
  /** Drop all state: replay is starting again (the store changed under an open). */
  reset(): void;
  /** Restore one snapshot entry. */
  restore(entry: unknown): Rejection | undefined;
  /** Apply one record read from the files: another writer's, or any at open. */
  apply(record: JournalRecord): Rejection | undefined;
  /** This journal's own entries were just written, right after every record before them was applied. */
  committed?(entries: readonly QueuedEntry[]): void;
}

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
  /** Longest line written or read (default 1 MiB). */
  maxLineBytes?: number;
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
}

export const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;
/** Stale after 10 s (+ up to 1 s of mtime rounding); waiting writers hold on for 20 s. */
const DEFAULT_LOCK_TIMEOUT_MS = 20_000;
const MAX_BATCH_BYTES = 8 * 1024 * 1024;
const RETRY_AFTER_FAILURE_MS = 1000;
const OPEN_ATTEMPTS = 5;

interface Segment {
  number: number;
  path: string;
  fd: number;
  reader: SegmentReader;
  onLine: (text: string, place: LinePlace) => 'continue' | 'stop';
  /** Set when a rotation marker was read: the number of the segment that follows. */
  rotatesTo?: number;
  /** Commits written here whose fsync has not finished. */
  inflight: number;
  retired: boolean;
}

interface Commit {
  segment: Segment;
  batch: QueuedEntry[];
}

/** A listed file vanished between readdir and open: a compaction moved it. */
class StoreChanged extends Error {}

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
  private readonly writerJson = JSON.stringify(this.writer);
  private readonly consumer: JournalConsumer;
  private readonly lock: StoreLock;
  private readonly queue = new CommitQueue();
  private readonly report: WarningHandler;
  private readonly clock: () => number;
  private readonly deferredFlushMs: number;
  private readonly onDurable: (() => void) | undefined;
  private readonly hashChain: boolean;
  private current: Segment | undefined;
  private firstSegmentNumber = 1;
  private seq = 0;
  /** Hash of the last record applied or written: the next record's `prev`. */
  private chainHead = CHAIN_START;
  private committing = false;
  private closed = false;
  private deferredTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private lastCommit: Commit | undefined;
  private readonly counters = { commits: 0, recordsWritten: 0, bytesWritten: 0 };
  private recordsRead = 0;
  private loading = false;
  /** Bytes of the segments before the live one that are not yet folded into a snapshot. */
  private bytesBeforeCurrent = 0;
  private snapshotBytes = 0;

  private constructor(options: JournalOptions) {
    this.dir = options.dir;
    this.consumer = options.consumer;
    this.fsync = options.fsync ?? true;
    this.readOnly = options.readOnly ?? false;
    this.maxLineBytes = checkPositive('maxLineBytes', options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES);
    this.report = options.onWarning ?? writeWarningToStderr;
    this.clock = options.clock ?? Date.now;
    this.deferredFlushMs = checkPositive('deferredFlushMs', options.deferredFlushMs ?? 1000);
    this.onDurable = options.onDurable;
    this.hashChain = options.hashChain ?? true;
    this.lock = new StoreLock({
      dir: this.dir,
      lockPath: storePath(this.dir, LOCK_NAME),
      timeoutMs: checkPositive('lockTimeoutMs', options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS),
      staleMs: Math.max(2000, options.lockStaleMs ?? 10_000),
      onCompromised: (err) => this.reportCompromise(err),
    });
  }

  /** Opens the store and replays snapshot + journal. Throws only for the directory or I/O, never for content. */
  static openSync(options: JournalOptions): Journal {
    const journal = new Journal(options);
    journal.load(options.create ?? !journal.readOnly);
    if (!journal.readOnly && (options.flushOnExit ?? true)) registerForExit(journal);
    return journal;
  }

  /** Sequence number of the last record applied or written. */
  get lastSeq(): number {
    return this.seq;
  }

  /** The chain head: hash of the last record applied or written (empty before any). */
  get lastHash(): string {
    return this.chainHead;
  }

  /** What this process has written since it opened the journal. */
  get stats(): Readonly<{ commits: number; recordsWritten: number; bytesWritten: number }> {
    return { ...this.counters };
  }

  /** Records read from segments (not the snapshot) since open: 0 means the snapshot is the whole story. */
  get recordsSinceBase(): number {
    return this.recordsRead;
  }

  /**
   * Bytes the journal has grown since the snapshot it was opened on, and that
   * snapshot's size: the inputs of the auto-compaction trigger.
   */
  get growth(): { journalBytes: number; snapshotBytes: number } {
    return { journalBytes: this.bytesBeforeCurrent + (this.current?.reader.offset ?? 0), snapshotBytes: this.snapshotBytes };
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
    this.followJournal(false);
  }

  /**
   * Queues an entry for the next group commit and returns at once; the entry
   * is durable when `flush()` resolves. Deferred entries do not start a commit.
   */
  append(type: string, payload: unknown, options: { time?: number; deferred?: boolean } = {}): QueuedEntry {
    if (this.closed) throw new SessionJournalError(ErrorCodes.CLOSED, `journal ${this.dir} is closed`);
    if (this.readOnly) throw new TypeError('append on a read-only journal');
    const payloadJson = canonicalPayload(payload);
    if (payloadJson === undefined) throw new TypeError(`payload of ${type} is not JSON-serializable`);
    const payloadBytes = Buffer.byteLength(payloadJson) + type.length + ENVELOPE_OVERHEAD_BYTES;
    if (payloadBytes > this.maxLineBytes) {
      throw new SessionJournalError(ErrorCodes.LINE_TOO_LONG, `a ${type} entry of about ${payloadBytes} bytes exceeds maxLineBytes (${this.maxLineBytes})`, {
        details: { type, bytes: payloadBytes, limit: this.maxLineBytes },
      });
    }
    const deferred = options.deferred ?? false;
    const entry = this.queue.push({ type, payloadJson, payloadBytes, time: options.time ?? this.clock(), deferred });
    if (deferred) this.armDeferredTimer();
    else this.kick();
    return entry;
  }

  /** Resolves when every entry appended before the call is durable (under the fsync policy). */
  flush(): Promise<void> {
    if (this.closed) return Promise.resolve();
    const done = this.queue.waitForAll();
    this.kick();
    return done;
  }

  /** Writes and syncs everything queued, blocking; for exit paths and synchronous callers. */
  flushSync(): void {
    while (this.queue.size > 0) {
      const commit = this.lock.runLockedSync(() => this.commitLocked());
      if (!commit) break;
      try {
        if (this.fsync) fs.fdatasyncSync(commit.segment.fd);
      } catch (err) {
        throw ioError('fdatasync', commit.segment.path, err);
      } finally {
        this.settle(commit.segment);
      }
      this.queue.markDurable(commit.batch[commit.batch.length - 1]!.ticket);
    }
  }

  /** Flushes, then releases files, timers and the exit hook. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.flush();
      while (this.committing) await new Promise((resolve) => setImmediate(resolve));
    } finally {
      this.release();
    }
  }

  closeSync(): void {
    if (this.closed) return;
    try {
      this.flushSync();
    } finally {
      this.release();
    }
  }

  /** Called by the exit hook: write what is queued, or say loudly what was not. */
  flushAtExit(): void {
    if (this.queue.size === 0) return;
    const count = this.queue.size;
    try {
      this.flushSync();
    } catch (err) {
      this.warn({ code: WarningCodes.EXIT_FLUSH_FAILED, message: `${count} queued entries could not be written at exit: ${(err as Error).message}`, file: this.dir });
    }
  }

  // ---- open and replay ---------------------------------------------------

  private load(create: boolean): void {
    if (prepareStoreDir(this.dir, create)) this.loadWithRetries();
  }

  private loadWithRetries(): void {
    this.loading = true;
    try {
      for (let attempt = 1; ; attempt++) {
        this.seq = 0;
        this.chainHead = CHAIN_START;
        this.recordsRead = 0;
        this.bytesBeforeCurrent = 0;
        this.consumer.reset();
        try {
          this.loadOnce();
          return;
        } catch (err) {
          if (!(err instanceof StoreChanged) || attempt >= OPEN_ATTEMPTS) throw err;
          if (this.current) this.retire(this.current);
          this.current = undefined;
        }
      }
    } finally {
      this.loading = false;
    }
  }

  private loadOnce(): void {
    const listing = listStore(this.dir);
    const base = this.loadNewestSnapshot(listing.snapshots);
    const numbers = listing.segments.filter((n) => n >= base);
    this.firstSegmentNumber = numbers[0] ?? Math.max(base, 1);
    // The live segment is the end of the chain of rotation markers, not simply
    // the highest number: a rotation that died after creating its successor
    // but before writing the marker leaves an empty segment nobody may use.
    this.followJournal(false);
    if (numbers.length > 0 && !this.current) throw new StoreChanged();
    const live = this.current;
    if (!live) return;
    for (const n of numbers) if (n > live.number) this.reportOrphan(n);
    const size = live.reader.size();
    if (size > live.reader.offset && !this.lock.isHeld()) {
      // The lock is free, so every byte up to `size` was written by a finished
      // commit; read once more (a writer may have ended its line since), and
      // what still has no newline before `size` is torn.
      this.followJournal(false);
      if (this.current === live && live.reader.offset < size) this.reportIncompleteTail(live);
    }
  }

  private reportOrphan(n: number): void {
    const path = storePath(this.dir, segmentName(n));
    let size = 0;
    try {
      size = fs.lstatSync(path).size;
    } catch {
      return;
    }
    if (size > 0) {
      this.warn({ code: WarningCodes.ORPHAN_SEGMENT, message: `segment is not reached by any rotation marker; its ${size} bytes are not applied (left in place)`, file: path });
    }
  }

  /** Restores the newest readable snapshot; returns the first segment it does not cover. */
  private loadNewestSnapshot(snapshots: number[]): number {
    this.snapshotBytes = 0;
    for (let i = snapshots.length - 1; i >= 0; i--) {
      const file = storePath(this.dir, snapshotName(snapshots[i]!));
      const result = readSnapshotSync(file, this.maxLineBytes, (w) => this.warn(w));
      if (!result.ok) {
        if (result.reason === 'file disappeared') throw new StoreChanged();
        this.warn({ code: WarningCodes.SNAPSHOT_UNREADABLE, message: `${result.reason}; trying an older base`, file });
        continue;
      }
      for (const entry of result.entries) {
        const rejection = this.guard(() => this.consumer.restore(entry.value));
        if (rejection) this.warn({ ...rejection, ...entry.place });
      }
      this.seq = result.header.seq;
      this.chainHead = result.header.h ?? CHAIN_START;
      this.snapshotBytes = result.bytes;
      return result.header.segment;
    }
    return 0;
  }

  // ---- reading -----------------------------------------------------------

  private openSegment(n: number, create: boolean): Segment | undefined {
    const path = storePath(this.dir, segmentName(n));
    const fd = openStoreFile(path, this.readOnly ? 'read' : create ? 'append-create' : 'append');
    if (fd === undefined) return undefined;
    if (create) fsyncDirSync(this.dir);
    const segment: Segment = {
      number: n,
      path,
      fd,
      reader: new SegmentReader(fd, path, this.maxLineBytes, (w) => this.warn(w)),
      onLine: (text, place) => this.applyLine(segment, text, place),
      inflight: 0,
      retired: false,
    };
    return segment;
  }

  /**
   * Reads the current segment to its end, following rotation markers.
   * Returns the size it last saw of the segment it ends on (under the lock,
   * still the size when the caller writes), or undefined.
   */
  private followJournal(createNext: boolean): number | undefined {
    if (!this.current) {
      this.current = this.openSegment(this.firstSegmentNumber, false);
      if (!this.current) {
        if (this.storeMovedPast(this.firstSegmentNumber)) this.reload();
        return undefined; // an empty store: the first commit creates the segment
      }
    }
    for (;;) {
      const segment: Segment = this.current;
      if (segment.rotatesTo === undefined) {
        const size = segment.reader.size();
        if (size > segment.reader.offset) segment.reader.readTo(size, segment.onLine);
        if (segment.rotatesTo === undefined) return this.current === segment ? size : undefined;
      }
      let next = this.openSegment(segment.rotatesTo, false);
      if (!next) {
        // Already folded and archived by a later compaction: only a reload
        // from the new base helps (and it must not be re-created). Otherwise
        // it is not there yet: look again next time, or, under the lock,
        // create it, as the marker promises it.
        if (this.storeMovedPast(segment.rotatesTo)) {
          this.reload();
          return undefined;
        }
        if (!createNext) return undefined;
        next = this.openSegment(segment.rotatesTo, true)!;
      }
      // Outside open, a rotation means a compaction is folding what came before.
      this.bytesBeforeCurrent = this.loading ? this.bytesBeforeCurrent + segment.reader.offset : 0;
      this.retire(segment);
      this.current = next;
    }
  }

  /** True when a snapshot or segment numbered above `n` exists: segment n is history. */
  private storeMovedPast(n: number): boolean {
    if (this.loading) return false;
    const { segments, snapshots } = listStore(this.dir);
    return segments.some((m) => m > n) || snapshots.some((m) => m > n);
  }

  /** Starts over from the newest snapshot; the consumer keeps what it has not committed. */
  private reload(): void {
    if (this.current) this.retire(this.current);
    this.current = undefined;
    this.loadWithRetries();
  }

  private applyLine(segment: Segment, text: string, place: LinePlace): 'continue' | 'stop' {
    const decoded = decodeRecord(text);
    if (!decoded.ok) {
      if (segment.reader.tailReportedAt !== place.offset) this.warn({ ...decoded.rejection, ...place });
      return 'continue';
    }
    const record = decoded.record;
    this.recordsRead++;
    this.chainHead = record.hash ?? CHAIN_START;
    if (record.seq <= this.seq) {
      this.warn({ code: WarningCodes.SEQUENCE_REGRESSION, message: `seq ${record.seq} follows seq ${this.seq} (a duplicated line, or two writers under a lost lock); applied`, ...place });
    } else {
      this.seq = record.seq;
    }
    if (record.type === ROTATE_EVENT) {
      const next = (record.payload as { next?: unknown } | null)?.next;
      if (typeof next === 'number' && Number.isSafeInteger(next) && next > segment.number) {
        segment.rotatesTo = next;
        return 'stop';
      }
      this.warn({ code: WarningCodes.INVALID_PAYLOAD, message: 'rotation marker without a valid next segment', ...place });
      return 'continue';
    }
    const rejection = this.guard(() => this.consumer.apply(record));
    if (rejection) this.warn({ ...rejection, ...place });
    return 'continue';
  }

  private reportIncompleteTail(segment: Segment): void {
    segment.reader.tailReportedAt = segment.reader.offset;
    const zeroFilled = segment.reader.peekTail(64 * 1024).every((b) => b === 0);
    this.warn({
      code: zeroFilled ? WarningCodes.ZERO_FILLED : WarningCodes.INCOMPLETE_TAIL,
      message: zeroFilled
        ? 'file ends in NUL bytes with no newline (a zero-filled tail after power loss); not applied'
        : 'last line has no newline and no writer holds the lock (a torn write); not applied',
      file: segment.path,
      line: segment.reader.line + 1,
      offset: segment.reader.offset,
    });
  }

  /** A consumer that throws is a bug; it must still not break replay. */
  private guard(fn: () => Rejection | undefined): Rejection | undefined {
    try {
      return fn();
    } catch (err) {
      return { code: WarningCodes.INVALID_PAYLOAD, message: `reducer failed: ${(err as Error).message}` };
    }
  }

  // ---- writing -----------------------------------------------------------

  private kick(): void {
    if (this.committing || this.closed || !this.queue.wantsCommit) return;
    this.committing = true;
    setImmediate(() => void this.runCommits());
  }

  private async runCommits(): Promise<void> {
    try {
      while (this.queue.wantsCommit) {
        const commit = await this.lock.runLocked(() => this.commitLocked());
        if (!commit) break;
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
   * Runs under the lock: catch up, let `decide` queue entries that depend on
   * the caught-up state, then write one batch in one O_APPEND write.
   */
  private commitLocked(decide?: () => void): Commit | undefined {
    const seenSize = this.followJournal(true);
    decide?.();
    const batch = this.queue.take(MAX_BATCH_BYTES);
    if (batch.length === 0) return undefined;
    const segment = this.liveSegmentLocked();
    let firstSeq: number;
    try {
      firstSeq = this.writeLocked(segment, batch, segment === this.current ? seenSize : undefined);
    } catch (err) {
      this.queue.restore(batch);
      throw err;
    }
    batch.forEach((entry, i) => (entry.seq = firstSeq + i));
    segment.inflight++;
    this.lastCommit = { segment, batch };
    try {
      this.consumer.committed?.(batch);
    } catch (err) {
      this.warn({ code: WarningCodes.INVALID_PAYLOAD, message: `reducer failed on own commit: ${(err as Error).message}`, file: segment.path });
    }
    return this.lastCommit;
  }

  private liveSegmentLocked(): Segment {
    return (this.current ??= this.openSegment(this.firstSegmentNumber, true)!);
  }

  /**
   * Writes records at the end of `segment` under the lock, never glued onto
   * a torn line; returns the first sequence number used.
   */
  private writeLocked(segment: Segment, records: ReadonlyArray<Pick<QueuedEntry, 'time' | 'type' | 'payloadJson'>>, knownSize?: number): number {
    let size = knownSize ?? segment.reader.size();
    if (segment.reader.hasIncompleteTail(size)) {
      // Under the lock nobody is appending, so an unfinished last line is
      // torn: end it with its own newline and apply it (if it happens to be a
      // whole record, its sequence number counts) before numbering ours.
      this.writeBytes(segment, Buffer.from('\n'), size);
      segment.reader.readTo(++size, segment.onLine);
    }
    let text = '';
    const firstSeq = this.seq + 1;
    let head = this.chainHead;
    records.forEach((r, i) => {
      const encoded = encodeRecord(firstSeq + i, r.time, this.writerJson, r.type, r.payloadJson, this.hashChain ? head : undefined);
      text += encoded.line;
      head = encoded.hash;
    });
    const bytes = Buffer.from(text, 'utf8');
    this.writeBytes(segment, bytes, size);
    segment.reader.skip(bytes.length, records.length);
    this.seq = firstSeq + records.length - 1;
    this.chainHead = head;
    this.counters.commits++;
    this.counters.recordsWritten += records.length;
    this.counters.bytesWritten += bytes.length;
    return firstSeq;
  }

  /** One O_APPEND write (completed if short); on failure our partial bytes are cut back to `size`. */
  private writeBytes(segment: Segment, bytes: Buffer, size: number): void {
    try {
      writeFully(segment.fd, bytes);
    } catch (err) {
      try {
        fs.ftruncateSync(segment.fd, size); // only our own partial bytes, under the lock
      } catch {
        // The next writer's newline check isolates whatever remains.
      }
      throw ioError('write', segment.path, err);
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
    return this.lock.runLocked(() => {
      this.followJournal(true);
      const segment = this.liveSegmentLocked();
      let nextNumber = segment.number + 1;
      let next = this.openSegment(nextNumber, true)!;
      while (next.reader.size() > 0) {
        this.reportOrphan(nextNumber);
        closeQuietly(next.fd);
        next = this.openSegment(++nextNumber, true)!;
      }
      const seq = this.writeLocked(segment, [{ time: this.clock(), type: ROTATE_EVENT, payloadJson: canonicalPayload({ next: nextNumber })! }]);
      try {
        fs.fdatasyncSync(segment.fd);
      } catch (err) {
        throw ioError('fdatasync', segment.path, err);
      }
      segment.rotatesTo = nextNumber;
      this.retire(segment);
      this.current = next;
      return { closed: segment.number, next: nextNumber, seq, hash: this.chainHead };
    });
  }

  /**
   * Appends entries chosen under the lock, after every record committed
   * before has been applied, so the choice cannot race another writer (the
   * compactor journals retention this way). Resolves once they are durable.
   */
  async appendDecided(decide: () => ReadonlyArray<{ type: string; payload: unknown; time?: number }>): Promise<number> {
    let count = 0;
    const commit = await this.lock.runLocked(() =>
      this.commitLocked(() => {
        for (const e of decide()) {
          this.append(e.type, e.payload, { time: e.time, deferred: true });
          count++;
        }
      }),
    );
    if (commit) await this.syncCommit(commit);
    await this.flush();
    return count;
  }

  /**
   * fdatasync a written commit, then acknowledge it. If the sync fails, the
   * bytes are in the file and must not be queued again, but they are not
   * known durable: whoever waits for them gets the error instead.
   */
  private async syncCommit(commit: Commit): Promise<void> {
    const last = commit.batch[commit.batch.length - 1]!.ticket;
    try {
      if (this.fsync) await fdatasync(commit.segment.fd);
    } catch (err) {
      const failure = ioError('fdatasync', commit.segment.path, err);
      this.queue.markFailed(last, failure);
      throw failure;
    } finally {
      this.settle(commit.segment);
    }
    this.queue.markDurable(last);
  }

  private settle(segment: Segment): void {
    segment.inflight--;
    if (segment.retired && segment.inflight === 0) closeQuietly(segment.fd);
  }

  private retire(segment: Segment): void {
    segment.retired = true;
    if (segment.inflight === 0) closeQuietly(segment.fd);
  }

  private onCommitFailure(err: unknown): void {
    if (this.queue.hasWaiters) {
      this.queue.failWaiters(err);
    } else {
      this.warn({ code: WarningCodes.COMMIT_FAILED, message: `background commit failed, will retry: ${(err as Error).message}`, file: this.dir });
    }
    if (this.queue.size > 0 && !this.retryTimer && !this.closed) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.kick();
      }, RETRY_AFTER_FAILURE_MS).unref();
    }
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
      message: `store lock lost around ${range} (${err.message}); the lines were written whole, but another writer may have written at the same time`,
      file: this.dir,
    });
  }

  private release(): void {
    this.closed = true;
    clearTimeout(this.deferredTimer);
    clearTimeout(this.retryTimer);
    unregisterForExit(this);
    if (this.current && this.current.inflight === 0) closeQuietly(this.current.fd);
    this.current = undefined;
  }
}

function writeFully(fd: number, bytes: Buffer): void {
  let written = 0;
  while (written < bytes.length) written += fs.writeSync(fd, bytes, written, bytes.length - written);
}

function checkPositive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new SessionJournalError(ErrorCodes.INVALID_OPTION, `${name} must be a positive number, got ${value}`, { details: { option: name, value } });
  }
  return value;
}
