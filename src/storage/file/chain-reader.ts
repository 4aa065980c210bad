import { CommitAssembler } from '../../engine/commit-framing.js';
import type { QueuedEntry } from '../../engine/commit-queue.js';
import { applyCommitRecords, chainHeadAfter, isCommitInDoubt, type CommitInDoubt } from '../../engine/commit-apply.js';
import { CommitCounters, LineBudget } from '../../engine/commit-encoder.js';
import { CHAIN_START, ROTATE_EVENT, rotationTarget, type CommitHeader, type JournalRecord, type Rejection } from '../../engine/record-codec.js';
import { ByteBudget } from './byte-budget.js';
import { type LinePlace } from './segment-reader.js';
import { Segment } from './segment.js';
import { closeQuietly, fsyncDirSync, listStore, openStoreFile, segmentName, storePath } from './store-files.js';
import { WarningCodes, type JournalWarning } from '../../engine/warnings.js';
import type { JournalConsumer, LaterRejection } from '../../engine/journal-consumer.js';

export interface SegmentChainOptions {
  dir: string;
  consumer: JournalConsumer;
  readOnly: boolean;
  maxLineBytes: number;
  /** Largest record joined from parts (record-parts.ts). */
  maxRecordBytes: number;
  warn: (w: JournalWarning) => void;
  /** True when some process holds the journal lock (an unfinished line may be in progress). */
  isLockHeld: () => boolean;
  /** `pid@host`, JSON-encoded, for the envelopes this process writes. */
  writerJson: string;
  hashChain: boolean;
  /** Progress of the replay at open: bytes of segments read so far, out of `total`. */
  onReplayProgress?: (done: number, total: number) => void;
}


/** A listed file vanished between readdir and open: a compaction moved it. */
export class StoreChanged extends Error {}

/**
 * A file whose lines are being applied: a live Segment, or an archived one
 * read whole from its gzip (only when the newest snapshot is unreadable).
 */
export type ReadFile = Pick<Segment, 'number' | 'path' | 'rotatesTo' | 'lines'> & { reader: { tailReportedAt: number | undefined } };

/** How a read of the chain (readChain) stopped. */
export type ChainRead =
  /** At the end of the chain; `size`: the size last seen of the segment it ends on (undefined when the chain was replaced meanwhile). */
  | { stop: 'end'; size: number | undefined }
  /** The budget is spent: reading again goes on exactly where this read stopped. */
  | { stop: 'budget' }
  /** Segment `segment` (the first, or the one a rotation marker names) is not in the store. */
  | { stop: 'missing'; segment: number }
  /** Bytes already applied were cut off the segment (SEGMENT_SHRANK): only a new replay helps. */
  | { stop: 'shrunk' };

/**
 * What the replay at open does differently from a catch-up, given to each
 * of its reads of the chain (ChainLoader) rather than kept as a mode: it
 * reports progress, counts the segments before the live one as not yet
 * folded (a catch-up that rotates knows a compaction is folding them), and
 * checks a marker that skips segments against the listing it was opened on.
 */
export interface OpenReplay {
  /** The live segments the listing showed at or above the base. */
  readonly segments: readonly number[];
  /** Bytes of those segments, for onReplayProgress (0 without it). */
  readonly totalBytes: number;
  /** Bytes of the segments read to their end so far. */
  finishedBytes: number;
}

/**
 * A commit this process wrote but could not prove in place (the fence
 * failed, or the write failed part-way): not acknowledged, not re-queued,
 * until reading the store under the lock shows what readers made of it.
 */
export interface InDoubtCommit extends CommitInDoubt {
  entries: QueuedEntry[];
  /** Each entry by the seq of its record's last line: what a reader applies it as. */
  bySeq: Map<number, QueuedEntry>;
  /** The segment written to: its descriptor stays open until the doubt is resolved. */
  segment: Segment;
  /** Entries whose records readers applied (set once the commit was read back). */
  landed: QueuedEntry[];
  /** Where the applied records were read: synced before they are acknowledged. */
  landedIn?: Segment;
  outcome: 'unknown' | 'applied' | 'rejected';
}

/**
 * The reading half of a store's chain of segments, as one process sees it:
 * the state (the segment followed, the framing, the chain head), catch-up
 * by reading only new bytes and following rotation markers, and how read
 * lines are applied. Opening is ChainLoader's (chain-loader.ts), writing
 * SegmentChain's (segment-chain.ts).
 */
export abstract class ChainReader {
  /** The segment appended to: the end of the chain of rotation markers. */
  protected current: Segment | undefined;
  protected readonly dir: string;
  protected readonly consumer: JournalConsumer;
  protected readonly readOnly: boolean;
  protected readonly maxLineBytes: number;
  private readonly maxRecordBytes: number;
  /** This writer (`w`) and how long its lines may be: what its commits are encoded with (commit-encoder.ts). */
  protected readonly budget: LineBudget;
  protected readonly warn: (w: JournalWarning) => void;
  protected readonly isLockHeld: () => boolean;
  protected readonly hashChain: boolean;
  protected readonly onReplayProgress: ((done: number, total: number) => void) | undefined;
  protected firstSegmentNumber = 1;
  /** The commit framing rule (commit-framing.ts): which records readers apply. Its lastSeq is the chain's. */
  protected readonly framing: CommitAssembler<JournalRecord>;
  /** Set while a segment's lines are read: where applied records come from. */
  private reading: ReadFile | undefined;
  /** The last line handed to applyLine: where a damaged rotation marker is reported. */
  protected lastLine: LinePlace | undefined;
  /** A rotation marker was applied: the read stops right after it. */
  private stopReading = false;
  protected inDoubt: InDoubtCommit | undefined;
  /** Hash of the last record applied or written: the next record's `prev`. */
  protected chainHead = CHAIN_START;
  protected recordsRead = 0;
  /** Bytes of the segments before the live one that are not yet folded into a snapshot. */
  protected bytesBeforeCurrent = 0;
  protected snapshotBytes = 0;
  protected readonly counters = new CommitCounters();

  constructor(options: SegmentChainOptions) {
    this.dir = options.dir;
    this.consumer = options.consumer;
    this.readOnly = options.readOnly;
    this.maxLineBytes = options.maxLineBytes;
    this.maxRecordBytes = options.maxRecordBytes;
    this.budget = new LineBudget(options.writerJson, options.maxLineBytes);
    this.warn = options.warn;
    this.isLockHeld = options.isLockHeld;
    this.hashChain = options.hashChain;
    this.onReplayProgress = options.onReplayProgress;
    this.framing = new CommitAssembler<JournalRecord>(0, {
      applied: (records, places, header) => this.applyCommit(records, places, header),
      rejected: (records, header) => {
        if (isCommitInDoubt(this.inDoubt, header, records[0])) this.inDoubt!.outcome = 'rejected';
      },
      warn: (w) => this.warnAt(w),
    });
  }

  get lastSeq(): number {
    return this.framing.lastSeq;
  }

  /** True while a commit of this process waits to be proved or written again. */
  get hasDoubt(): boolean {
    return this.inDoubt !== undefined;
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
    return this.counters.stats;
  }

  // ---- following the chain -----------------------------------------------

  /**
   * Reads the current segment to its end, following rotation markers.
   * Returns the size it last saw of the segment it ends on (under the lock,
   * still the size when the caller writes), or undefined.
   */
  follow(createNext: boolean): number | undefined {
    for (;;) {
      const read = this.readChain(ByteBudget.unlimited(), undefined);
      if (read.stop === 'end') return read.size;
      if (read.stop === 'shrunk') {
        this.reload();
        return undefined;
      }
      if (read.stop === 'missing') {
        // Already folded and archived by a later compaction: only a reload
        // from the new base helps (and it must not be re-created). Otherwise
        // it is not there yet: look again next time, or, under the lock,
        // create it, as the marker promises it.
        if (this.storeMovedPast(read.segment)) {
          this.reload();
          return undefined;
        }
        if (!createNext || !this.current) return undefined; // an empty store: the first commit creates the segment
        this.enterSegment(this.openSegment(read.segment, true)!, undefined);
      }
    }
  }

  /**
   * Reads along the chain from where the last read stopped, following
   * rotation markers, until its end, a missing segment, or the budget is
   * spent. It never reloads nor creates a segment: follow() decides that,
   * and the replay at open (`replay`, see OpenReplay) starts a new pass.
   */
  protected readChain(budget: ByteBudget, replay: OpenReplay | undefined): ChainRead {
    if (!this.current) {
      const first = this.openSegment(this.firstSegmentNumber, false);
      if (!first) return { stop: 'missing', segment: this.firstSegmentNumber };
      this.current = this.reportProgress(first, replay);
    }
    for (;;) {
      const segment: Segment = this.current;
      if (segment.rotatesTo === undefined) {
        const size = segment.reader.size();
        if (size < segment.reader.offset && !this.rewindAfterShrink(segment, size)) return { stop: 'shrunk' };
        if (!this.readSegment(segment, size, budget)) return { stop: 'budget' };
        if (segment.rotatesTo === undefined) return { stop: 'end', size: this.current === segment ? size : undefined };
      }
      // Only at open is there a listing to find the real successor in; a catch-up follows the marker as written.
      if (replay && segment.rotatesTo > segment.number + 1) segment.rotatesTo = this.skippedSuccessor(segment, segment.rotatesTo, replay.segments);
      const next = this.openSegment(segment.rotatesTo, false);
      if (!next) return { stop: 'missing', segment: segment.rotatesTo };
      this.enterSegment(next, replay);
    }
  }

  /**
   * Applies the complete lines of `segment` up to `size`, or up to its
   * rotation marker, within the budget; false when the budget ran out first.
   * A line is never cut: one that does not fit in what is left of the
   * budget starts the next read, and one longer than a whole budget is read
   * alone, past it.
   */
  private readSegment(segment: Segment, size: number, budget: ByteBudget): boolean {
    while (segment.rotatesTo === undefined && size > segment.reader.offset) {
      if (budget.spent) return false;
      const before = segment.reader.offset;
      const end = budget.endFor(before, size);
      segment.reader.readTo(end, segment.onLine);
      if (segment.reader.offset === before && end < size) {
        if (budget.used > 0) {
          budget.giveUp();
          return false;
        }
        // A line longer than a whole budget: read it, and stop right after it.
        segment.reader.readTo(size, (text, place) => {
          segment.onLine(text, place);
          return 'stop';
        });
      }
      if (segment.reader.offset === before) break; // an unfinished last line
      budget.spend(segment.reader.offset - before);
    }
    return true;
  }

  /** Moves on to `next`, the segment the current one's rotation marker leads to. */
  private enterSegment(next: Segment, replay: OpenReplay | undefined): void {
    const segment = this.current!;
    // At open, the segments before the live one are not folded yet; outside
    // it, a rotation means a compaction is folding what came before.
    this.bytesBeforeCurrent = replay ? this.bytesBeforeCurrent + segment.reader.offset : 0;
    if (replay) replay.finishedBytes += segment.reader.offset;
    segment.reader.onChunk = undefined;
    segment.retire();
    this.current = this.reportProgress(next, replay);
  }

  /** At open, a segment read reports the replay's progress after each chunk. */
  private reportProgress(segment: Segment, replay: OpenReplay | undefined): Segment {
    const report = this.onReplayProgress;
    if (replay && report) segment.reader.onChunk = (offset) => report(replay.finishedBytes + offset, replay.totalBytes);
    return segment;
  }

  /**
   * The segment is shorter than what was read of it: something outside the
   * protocol truncated it (writers never take bytes back). If only bytes of
   * a commit not yet applied are gone, read again from where it began; if
   * applied bytes are gone, this view holds what the file no longer does:
   * false, and the caller replays the store again.
   */
  private rewindAfterShrink(segment: Segment, size: number): boolean {
    const open = this.framing.openSince;
    const canRewind = open !== undefined && open.file === segment.path && open.offset <= size;
    this.warn({
      code: WarningCodes.SEGMENT_SHRANK,
      message: `segment is now ${size} bytes, shorter than the ${segment.reader.offset} already read (truncated outside the protocol); ${canRewind ? 'reading again from the unfinished commit' : 'replaying the store again'}`,
      file: segment.path,
    });
    if (!canRewind) return false;
    segment.reader.rewindTo(open.offset, open.line - 1);
    this.framing.dropOpen();
    return true;
  }

  /** True when a snapshot or segment numbered above `n` exists: segment n is history. */
  private storeMovedPast(n: number): boolean {
    const { segments, snapshots } = listStore(this.dir);
    return segments.some((m) => m > n) || snapshots.some((m) => m > n);
  }

  protected openSegment(n: number, create: boolean): Segment | undefined {
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
    segment.reader.onSkippedLine = (place) => this.framing.unreadableLine(place, false);
    return segment;
  }

  protected applyLine(segment: ReadFile, text: string, place: LinePlace): 'continue' | 'stop' {
    this.reading = segment;
    this.lastLine = place;
    const decoded = segment.lines.decode(text);
    if (!decoded.ok) {
      if (segment.reader.tailReportedAt !== place.offset) this.warn({ ...decoded.rejection, ...place });
      this.framing.unreadableLine(place, 'sealed' in decoded);
      return 'continue';
    }
    this.recordsRead++;
    this.framing.record(decoded.record, place);
    if (!this.stopReading) return 'continue';
    this.stopReading = false;
    return 'stop';
  }

  /** The framing rule decided that readers apply these records (one commit). */
  private applyCommit(records: readonly JournalRecord[], places: readonly LinePlace[], header: CommitHeader | undefined): void {
    const segment = this.reading!;
    const own = isCommitInDoubt(this.inDoubt, header, records[0]) ? this.inDoubt : undefined;
    this.chainHead = chainHeadAfter(records, this.chainHead);
    applyCommitRecords(
      records,
      places,
      this.maxRecordBytes,
      (record, later) => this.applyRecord(record, segment, later),
      this.warn,
      own &&
        ((record) => {
          // Our own commit, read back after a doubt: it is in the journal for every reader.
          const entry = own.bySeq.get(record.seq);
          if (entry) {
            entry.seq = record.seq;
            own.landed.push(entry);
          }
        }),
    );
    if (own) {
      own.outcome = 'applied';
      // Read back from archive/ (a reload from an older base): synced where it was written.
      own.landedIn = segment instanceof Segment ? segment : own.segment;
    }
  }

  /** One record readers apply (joined when it was spread): a rotation marker is followed, any other goes to the consumer; a rejection is warned at its lines by applyCommitRecords. */
  private applyRecord(record: JournalRecord, segment: ReadFile, later: LaterRejection): Rejection | undefined {
    if (record.type !== ROTATE_EVENT) return this.consumer.apply(record, later);
    const next = rotationTarget(record, segment.number);
    if (next === undefined) return { code: WarningCodes.INVALID_PAYLOAD, message: 'rotation marker without a valid next segment' };
    segment.rotatesTo = next;
    this.stopReading = true;
    return undefined;
  }

  /** A warning the framing rule gives at a line: once per line, like every other. */
  private warnAt(w: JournalWarning): void {
    if (this.reading && this.reading.reader.tailReportedAt === w.offset && w.file === this.reading.path) return;
    this.warn(w);
  }

  /** Starts over from the newest snapshot (ChainLoader): the store changed under this process. */
  protected abstract reload(): void;
  /** At open, the real successor of a marker that names a segment beyond the next one, among the listed `segments` (ChainLoader). */
  protected abstract skippedSuccessor(segment: Segment, target: number, segments: readonly number[]): number;
}
