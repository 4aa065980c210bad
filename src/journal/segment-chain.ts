import fs from 'node:fs';
import { ErrorCodes, SessionJournalError, ioError } from '../errors.js';
import { readSnapshotSync } from '../snapshot/snapshot-file.js';
import type { QueuedEntry } from './commit-queue.js';
import { CHAIN_START, ROTATE_EVENT, canonicalPayload, decodeRecord, encodeRecord, type JournalRecord, type Rejection } from './record-codec.js';
import type { LinePlace } from './segment-reader.js';
import { Segment } from './segment.js';
import { closeQuietly, fileSizeOrZero, fsyncDirSync, listStore, openStoreFile, prepareStoreDir, segmentName, snapshotName, storePath } from './store-files.js';
import { WarningCodes, type JournalWarning } from './warnings.js';

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

export interface SegmentChainOptions {
  dir: string;
  consumer: JournalConsumer;
  readOnly: boolean;
  maxLineBytes: number;
  warn: (w: JournalWarning) => void;
  /** True when some process holds the journal lock (an unfinished line may be in progress). */
  isLockHeld: () => boolean;
  /** `pid@host`, JSON-encoded, for the envelopes this process writes. */
  writerJson: string;
  hashChain: boolean;
  /** Progress of the replay at open: bytes of segments read so far, out of `total`. */
  onReplayProgress?: (done: number, total: number) => void;
}

const OPEN_ATTEMPTS = 5;
/** While loading, segments are read in steps of this many bytes (see loadAsync). */
const LOAD_STEP_BYTES = 64 * 1024;

/** Drives a stepped operation to its end without pausing. */
function runSteps<T>(steps: Generator<void, T>): T {
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/** A listed file vanished between readdir and open: a compaction moved it. */
class StoreChanged extends Error {}

/**
 * The store's chain of segments as one process sees it: replayed at open
 * (newest snapshot, then segments, following rotation markers), caught up by
 * reading only new bytes, and appended to at its end under the lock. It keeps
 * the sequence number and hash-chain head of the last record it read or
 * wrote. Locking, queuing and durability are the Journal's.
 */
export class SegmentChain {
  /** The segment appended to: the end of the chain of rotation markers. */
  private current: Segment | undefined;
  private readonly dir: string;
  private readonly consumer: JournalConsumer;
  private readonly readOnly: boolean;
  private readonly maxLineBytes: number;
  private readonly warn: (w: JournalWarning) => void;
  private readonly isLockHeld: () => boolean;
  private readonly writerJson: string;
  private readonly hashChain: boolean;
  private readonly onReplayProgress: ((done: number, total: number) => void) | undefined;
  /** While loading: bytes of the segments to replay, and of those finished. */
  private replayBytes = { total: 0, finished: 0 };
  private firstSegmentNumber = 1;
  private seq = 0;
  /** Hash of the last record applied or written: the next record's `prev`. */
  private chainHead = CHAIN_START;
  private recordsRead = 0;
  private loading = false;
  /** Bytes read between pauses while loading: a step for loadAsync, everything at once otherwise. */
  private loadStepBytes = Number.POSITIVE_INFINITY;
  /** Bytes of the segments before the live one that are not yet folded into a snapshot. */
  private bytesBeforeCurrent = 0;
  private snapshotBytes = 0;
  private readonly counters = { commits: 0, recordsWritten: 0, bytesWritten: 0 };

  constructor(options: SegmentChainOptions) {
    this.dir = options.dir;
    this.consumer = options.consumer;
    this.readOnly = options.readOnly;
    this.maxLineBytes = options.maxLineBytes;
    this.warn = options.warn;
    this.isLockHeld = options.isLockHeld;
    this.writerJson = options.writerJson;
    this.hashChain = options.hashChain;
    this.onReplayProgress = options.onReplayProgress;
  }

  get lastSeq(): number {
    return this.seq;
  }

  get lastHash(): string {
    return this.chainHead;
  }

  get recordsSinceBase(): number {
    return this.recordsRead;
  }

  get growth(): { journalBytes: number; snapshotBytes: number } {
    return { journalBytes: this.bytesBeforeCurrent + (this.current?.reader.offset ?? 0), snapshotBytes: this.snapshotBytes };
  }

  get stats(): Readonly<{ commits: number; recordsWritten: number; bytesWritten: number }> {
    return { ...this.counters };
  }

  // ---- open and replay ---------------------------------------------------

  /** Opens the store directory (creating it when asked) and replays it. */
  load(create: boolean): void {
    if (prepareStoreDir(this.dir, create)) runSteps(this.loadSteps());
  }

  /**
   * The same, letting the event loop run between steps of 64 KiB:
   * for work that should overlap a long replay (the compactor's archive gzip
   * runs on libuv's thread pool meanwhile). `pace`, when given, is awaited
   * after each step with the bytes of segments replayed so far.
   */
  async loadAsync(create: boolean, pace?: (bytesReplayed: number) => Promise<void> | undefined): Promise<void> {
    if (!prepareStoreDir(this.dir, create)) return;
    this.loadStepBytes = LOAD_STEP_BYTES;
    try {
      for (const _ of this.loadSteps()) {
        await new Promise((resolve) => setImmediate(resolve));
        await pace?.(this.replayBytes.finished + (this.current?.reader.offset ?? 0));
      }
    } finally {
      this.loadStepBytes = Number.POSITIVE_INFINITY;
    }
  }

  private *loadSteps(): Generator<void, void> {
    this.loading = true;
    try {
      for (let attempt = 1; ; attempt++) {
        this.seq = 0;
        this.chainHead = CHAIN_START;
        this.recordsRead = 0;
        this.bytesBeforeCurrent = 0;
        this.consumer.reset();
        try {
          yield* this.loadOnceSteps();
          return;
        } catch (err) {
          if (!(err instanceof StoreChanged)) throw err;
          if (attempt >= OPEN_ATTEMPTS) {
            throw new SessionJournalError(ErrorCodes.IO_ERROR, `${this.dir} changed under every one of ${OPEN_ATTEMPTS} attempts to read it (compactions running back to back?); try again`, { details: { dir: this.dir } });
          }
          this.current?.retire();
          this.current = undefined;
        }
      }
    } finally {
      this.loading = false;
      if (this.current) this.current.reader.onChunk = undefined;
    }
  }

  private *loadOnceSteps(): Generator<void, void> {
    const listing = listStore(this.dir);
    const base = this.loadNewestSnapshot(listing.snapshots);
    const numbers = listing.segments.filter((n) => n >= base);
    this.firstSegmentNumber = numbers[0] ?? Math.max(base, 1);
    this.replayBytes = { total: this.onReplayProgress ? numbers.reduce((sum, n) => sum + fileSizeOrZero(storePath(this.dir, segmentName(n))), 0) : 0, finished: 0 };
    // The live segment is the end of the chain of rotation markers, not simply
    // the highest number: a rotation that died after creating its successor
    // but before writing the marker leaves an empty segment nobody may use.
    yield* this.followSteps(false);
    if (numbers.length > 0 && !this.current) throw new StoreChanged();
    const live = this.current;
    if (!live) return;
    for (const n of numbers) if (n > live.number) this.reportOrphan(n);
    const size = live.reader.size();
    if (size > live.reader.offset && !this.isLockHeld()) {
      // The lock is free, so every byte up to `size` was written by a finished
      // commit; read once more (a writer may have ended its line since), and
      // what still has no newline before `size` is torn.
      yield* this.followSteps(false);
      if (this.current === live && live.reader.offset < size) this.reportIncompleteTail(live);
    }
  }

  /** Restores the newest readable snapshot; returns the first segment it does not cover. */
  private loadNewestSnapshot(snapshots: number[]): number {
    this.snapshotBytes = 0;
    for (let i = snapshots.length - 1; i >= 0; i--) {
      const file = storePath(this.dir, snapshotName(snapshots[i]!));
      const result = readSnapshotSync(file, (w) => this.warn(w));
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

  private reportOrphan(n: number): void {
    const path = storePath(this.dir, segmentName(n));
    const size = fileSizeOrZero(path);
    if (size > 0) {
      this.warn({ code: WarningCodes.ORPHAN_SEGMENT, message: `segment is not reached by any rotation marker; its ${size} bytes are not applied (left in place)`, file: path });
    }
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

  /** Starts over from the newest snapshot; the consumer keeps what it has not committed. */
  private reload(): void {
    this.current?.retire();
    this.current = undefined;
    runSteps(this.loadSteps());
  }

  // ---- following the chain -----------------------------------------------

  /**
   * Reads the current segment to its end, following rotation markers.
   * Returns the size it last saw of the segment it ends on (under the lock,
   * still the size when the caller writes), or undefined.
   */
  follow(createNext: boolean): number | undefined {
    return runSteps(this.followSteps(createNext));
  }

  /** follow(), in steps while loading (see loadAsync). */
  private *followSteps(createNext: boolean): Generator<void, number | undefined> {
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
        while (segment.rotatesTo === undefined && size > segment.reader.offset) {
          const before = segment.reader.offset;
          const stepEnd = this.loading ? Math.min(size, before + this.loadStepBytes) : size;
          segment.reader.readTo(stepEnd, segment.onLine);
          if (segment.reader.offset === before) {
            if (stepEnd === size) break; // an unfinished last line
            segment.reader.readTo(size, segment.onLine); // a line longer than a step
            if (segment.reader.offset === before) break;
          }
          if (this.loading) yield;
        }
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
      if (this.loading) this.replayBytes.finished += segment.reader.offset;
      segment.reader.onChunk = undefined;
      segment.retire();
      this.current = next;
    }
  }

  /** True when a snapshot or segment numbered above `n` exists: segment n is history. */
  private storeMovedPast(n: number): boolean {
    if (this.loading) return false;
    const { segments, snapshots } = listStore(this.dir);
    return segments.some((m) => m > n) || snapshots.some((m) => m > n);
  }

  private openSegment(n: number, create: boolean): Segment | undefined {
    const path = storePath(this.dir, segmentName(n));
    const fd = openStoreFile(path, this.readOnly ? 'read' : create ? 'append-create' : 'append');
    if (fd === undefined) return undefined;
    if (create) {
      try {
        fsyncDirSync(this.dir);
      } catch (err) {
        closeQuietly(fd); // the caller may retry: one descriptor per attempt would pile up
        throw err;
      }
    }
    const segment: Segment = new Segment(n, path, fd, this.maxLineBytes, (w) => this.warn(w), (text, place) => this.applyLine(segment, text, place));
    if (this.loading && this.onReplayProgress) {
      const report = this.onReplayProgress;
      segment.reader.onChunk = (offset) => report(this.replayBytes.finished + offset, this.replayBytes.total);
    }
    return segment;
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

  /** A consumer that throws is a bug; it must still not break replay. */
  private guard(fn: () => Rejection | undefined): Rejection | undefined {
    try {
      return fn();
    } catch (err) {
      return { code: WarningCodes.INVALID_PAYLOAD, message: `reducer failed: ${(err as Error).message}` };
    }
  }

  // ---- writing under the lock --------------------------------------------

  liveSegmentLocked(): Segment {
    return (this.current ??= this.openSegment(this.firstSegmentNumber, true)!);
  }

  /**
   * Writes records at the end of `segment` under the lock, never glued onto
   * a torn line; returns the first sequence number used.
   */
  writeLocked(segment: Segment, records: ReadonlyArray<Pick<QueuedEntry, 'time' | 'type' | 'payloadJson'>>, knownSize?: number): number {
    let size = knownSize ?? segment.reader.size();
    if (segment.reader.hasIncompleteTail(size)) {
      // Under the lock nobody is appending, so an unfinished last line is
      // torn: end it with its own newline and apply it (if it happens to be a
      // whole record, its sequence number counts) before numbering ours.
      segment.append(Buffer.from('\n'), size);
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
    segment.append(bytes, size);
    segment.reader.skip(bytes.length, records.length);
    this.seq = firstSeq + records.length - 1;
    this.chainHead = head;
    this.counters.commits++;
    this.counters.recordsWritten += records.length;
    this.counters.bytesWritten += bytes.length;
    return firstSeq;
  }

  /**
   * Under the lock: closes the live segment with a rotation marker and makes
   * a new, empty segment live. The marker is fsynced before the lock is
   * released, so no write can land in the new segment without it.
   */
  rotateLocked(time: number, onSyncFailure: (failure: SessionJournalError) => void): { closed: number; next: number; seq: number; hash: string } {
    this.follow(true);
    const segment = this.liveSegmentLocked();
    let nextNumber = segment.number + 1;
    let next = this.openSegment(nextNumber, true)!;
    while (next.reader.size() > 0) {
      this.reportOrphan(nextNumber);
      next.retire();
      next = this.openSegment(++nextNumber, true)!;
    }
    let seq: number;
    try {
      seq = this.writeLocked(segment, [{ time, type: ROTATE_EVENT, payloadJson: canonicalPayload({ next: nextNumber })! }]);
    } catch (err) {
      next.retire(); // left empty: the next rotation reuses it
      throw err;
    }
    try {
      fs.fdatasyncSync(segment.fd);
    } catch (err) {
      const failure = ioError('fdatasync', segment.path, err);
      onSyncFailure(failure);
      throw failure;
    } finally {
      // The marker is written: readers follow it even if its sync failed, so this
      // process moves on too (its next records after the marker would be unread).
      segment.rotatesTo = nextNumber;
      segment.retire();
      this.current = next;
    }
    return { closed: segment.number, next: nextNumber, seq, hash: this.chainHead };
  }

  /** Closes the live segment now, or when the fsync pending on it settles. */
  release(): void {
    // Retired like a segment moved past: a commit's fsync still pending (a closeSync
    // during a background commit) closes the descriptor when it settles.
    this.current?.retire();
    this.current = undefined;
  }
}
