import fs from 'node:fs';
import { ErrorCodes, SessionJournalError, ioError } from '../../errors.js';
import { readArchivedSnapshotSync, readSnapshotSync, type SnapshotEntry, type SnapshotReadResult } from './snapshot-file.js';
import { gunzipReadable, splitBufferLines } from './buffer-lines.js';
import { CommitAssembler } from '../../engine/commit-framing.js';
import type { QueuedEntry } from '../../engine/commit-queue.js';
import { CHAIN_START, LineDecoder, PART_EVENT, ROTATE_EVENT, TORN_SEAL, canonicalPayload, encodeRecord, envelopeBytes, newWriterTag, rotationTarget, type CommitHeader, type JournalRecord, type Rejection } from '../../engine/record-codec.js';
import { MAX_PARTS, joinParts, pieceBytesFor, spreadPayload } from '../../engine/record-parts.js';
import { SegmentReader, type LinePlace } from './segment-reader.js';
import type { LockLease } from './store-lock.js';
import { Segment } from './segment.js';
import { archivedSegmentPath, archivedSnapshotPath, closeQuietly, fdSize, fileSizeOrZero, fsyncDirSync, listArchive, listStore, openStoreFile, prepareStoreDir, segmentName, snapshotName, storePath, type StoreListing } from './store-files.js';
import { WarningCodes, type JournalWarning } from '../../engine/warnings.js';
import type { JournalConsumer } from '../../engine/journal-consumer.js';

export type { JournalConsumer } from '../../engine/journal-consumer.js';
import { yieldToEventLoop } from '../../engine/event-loop-yield.js';

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

/**
 * This process's writer tag, the `c` of each of its commits (format 2): a
 * commit is known by (tag, first seq), which no two commits readers apply
 * share, since applied commits begin at increasing seqs.
 */
let writerTag: string | undefined; // drawn at the first commit: a process that only reads never loads node:crypto
const ownWriterTag = (): string => (writerTag ??= newWriterTag());

/** True when a commit holds a part of a spread record: only then are its records joined. */
function hasParts(records: readonly JournalRecord[]): boolean {
  for (const r of records) if (r.type === PART_EVENT) return true;
  return false;
}

/** A listed file vanished between readdir and open: a compaction moved it. */
class StoreChanged extends Error {}

/**
 * A file whose lines are being applied: a live Segment, or an archived one
 * read whole from its gzip (only when the newest snapshot is unreadable).
 */
type ReadFile = Pick<Segment, 'number' | 'path' | 'rotatesTo' | 'lines'> & { reader: { tailReportedAt: number | undefined } };

/**
 * A commit this process wrote but could not prove in place (the fence
 * failed, or the write failed part-way): not acknowledged, not re-queued,
 * until reading the store under the lock shows what readers made of it.
 */
interface InDoubtCommit {
  id: string;
  /** Seq of its first line: with the id, what tells it from this process's other commits. */
  firstSeq: number;
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

/** What reading the store back decided about an in-doubt commit. */
export interface DoubtResolution {
  /** Entries readers apply: acknowledged once `landedIn` is synced. */
  landed: QueuedEntry[];
  landedIn?: Segment;
  /** Entries no reader applies: written again, by the commit that follows. */
  requeue: QueuedEntry[];
}

/** How a fenced write ended. */
export type WriteOutcome =
  /**
   * Proved whole at the end of the live segment under the lock: acknowledge
   * after the sync. `seqs`: each record's seq, that of its last line (a record
   * spread over several lines takes one seq per line).
   */
  | { kind: 'written'; firstSeq: number; seqs: number[] }
  /** Nothing written: the segment or the lock changed before the write (re-read, then try again). */
  | { kind: 'not-written' }
  /** Written, but not proved where readers apply it: resolved by the next locked section. */
  | { kind: 'in-doubt' };

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
  private readonly maxRecordBytes: number;
  /** Bytes a line of this writer leaves for the payload of a `journal.part`. */
  private readonly partRoom: number;
  /** Bytes of a line of this writer besides its payload, for a type with an empty name. */
  private readonly envelopeBase: number;
  private readonly warn: (w: JournalWarning) => void;
  private readonly isLockHeld: () => boolean;
  private readonly writerJson: string;
  private readonly writer: string;
  private readonly hashChain: boolean;
  private readonly onReplayProgress: ((done: number, total: number) => void) | undefined;
  /** While loading: bytes of the segments to replay, and of those finished. */
  private replayBytes = { total: 0, finished: 0 };
  private firstSegmentNumber = 1;
  /** The commit framing rule (commit-framing.ts): which records readers apply. Its lastSeq is the chain's. */
  private readonly framing: CommitAssembler<JournalRecord>;
  /** Set while a segment's lines are read: where applied records come from. */
  private reading: ReadFile | undefined;
  /** The last line handed to applyLine: where a damaged rotation marker is reported. */
  private lastLine: LinePlace | undefined;
  /** While loading: the live segments the listing showed at or above the base. */
  private loadSegments: number[] = [];
  /** A rotation marker was applied: the read stops right after it. */
  private stopReading = false;
  private inDoubt: InDoubtCommit | undefined;
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
    this.maxRecordBytes = options.maxRecordBytes;
    this.partRoom = options.maxLineBytes - envelopeBytes(options.writerJson, PART_EVENT);
    this.envelopeBase = envelopeBytes(options.writerJson, '');
    this.warn = options.warn;
    this.isLockHeld = options.isLockHeld;
    this.writerJson = options.writerJson;
    this.writer = JSON.parse(options.writerJson) as string;
    this.hashChain = options.hashChain;
    this.onReplayProgress = options.onReplayProgress;
    this.framing = new CommitAssembler<JournalRecord>(0, {
      applied: (records, places, header) => this.applyCommit(records, places, header),
      rejected: (records, header) => {
        if (this.isInDoubt(header, records[0])) this.inDoubt!.outcome = 'rejected';
      },
      warn: (w) => this.warnAt(w),
    });
  }

  get lastSeq(): number {
    return this.framing.lastSeq;
  }

  /** True when a commit read from the files is the one this process left in doubt: same tag, same first seq, and attributed to this writer. */
  private isInDoubt(header: CommitHeader, first: JournalRecord | undefined): boolean {
    const doubt = this.inDoubt;
    return doubt !== undefined && doubt.id === header.id && first?.seq === doubt.firstSeq && first.writer === this.writer;
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
    return { ...this.counters };
  }

  // ---- open and replay ---------------------------------------------------

  /** Opens the store directory (creating it when asked) and replays it. */
  load(create: boolean): void {
    if (!prepareStoreDir(this.dir, create)) return;
    this.markNewStore(create);
    runSteps(this.loadSteps());
  }

  /**
   * A writer that opens a store holding no segment yet makes segment 1, empty
   * (the first commit would), so that from then on the directory shows that
   * it is a store: the command-line tools tell it from an empty or unrelated
   * directory by its names (isStoreName), and refuse those (NOT_A_STORE).
   */
  private markNewStore(create: boolean): void {
    if (!create || this.readOnly) return;
    const { segments, snapshots } = listStore(this.dir);
    if (segments.length > 0 || snapshots.length > 0 || listArchive(this.dir).segments.length > 0) return;
    const fd = openStoreFile(storePath(this.dir, segmentName(1)), 'append-create');
    if (fd !== undefined) closeQuietly(fd);
    fsyncDirSync(this.dir);
  }

  /**
   * The same, letting the event loop run between steps of 64 KiB:
   * for work that should overlap a long replay (the compactor's archive gzip
   * runs on libuv's thread pool meanwhile). `pace`, when given, is awaited
   * after each step with the bytes of segments replayed so far.
   */
  async loadAsync(create: boolean, pace?: (bytesReplayed: number) => Promise<void> | undefined): Promise<void> {
    if (!prepareStoreDir(this.dir, create)) return;
    this.markNewStore(create);
    this.loadStepBytes = LOAD_STEP_BYTES;
    try {
      for (const _ of this.loadSteps()) {
        await yieldToEventLoop();
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
        this.framing.lastSeq = 0;
        this.framing.dropOpen();
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
    const { base, archived } = this.loadBase(listing);
    const numbers = listing.segments.filter((n) => n >= base);
    this.loadSegments = numbers;
    this.firstSegmentNumber = numbers[0] ?? Math.max(base, (archived[archived.length - 1] ?? 0) + 1, 1);
    this.replayBytes = { total: this.onReplayProgress ? numbers.reduce((sum, n) => sum + fileSizeOrZero(storePath(this.dir, segmentName(n))), 0) : 0, finished: 0 };
    // Only when the newest snapshot was unreadable: the older base's segments no longer in the store.
    for (const n of archived) yield* this.replayArchivedSteps(n);
    // The live segment is the end of the chain of rotation markers, not simply
    // the highest number: a rotation that died after creating its successor
    // but before writing the marker leaves an empty segment nobody may use.
    yield* this.followSteps(false);
    if (numbers.length > 0 && !this.current) throw new StoreChanged();
    if (!this.current) return;
    yield* this.followPastDamagedMarkers(numbers);
    const live = this.current;
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

  /**
   * Restores the base replay starts from: the newest snapshot when it is
   * readable (the normal case: nothing else is read). When it is not, the
   * newest older base, from the store or archive/, whose first segment still
   * exists; its segments no longer in the store are returned as `archived`,
   * to be replayed first. Only when no such base exists is the state empty
   * with history missing, and that is said loudly.
   */
  private loadBase(listing: StoreListing): { base: number; archived: number[] } {
    this.snapshotBytes = 0;
    const newest = listing.snapshots[listing.snapshots.length - 1];
    if (newest === undefined) return { base: 0, archived: [] };
    const file = storePath(this.dir, snapshotName(newest));
    const result = this.readBase(file, () => readSnapshotSync(file, (w) => this.warn(w)));
    if (result) {
      this.restoreBase(result);
      return { base: newest, archived: [] };
    }
    return this.loadOlderBase(listing, newest);
  }

  /** A snapshot read for a base, or undefined (and SNAPSHOT_UNREADABLE) when it fails its checks. */
  private readBase(file: string, read: () => SnapshotReadResult): Extract<SnapshotReadResult, { ok: true }> | undefined {
    const result = read();
    if (result.ok) return result;
    if (result.reason === 'file disappeared') throw new StoreChanged();
    this.warn({ code: WarningCodes.SNAPSHOT_UNREADABLE, message: `${result.reason}; trying an older base`, file });
    return undefined;
  }

  private restoreBase(result: Extract<SnapshotReadResult, { ok: true }>): void {
    for (const entry of result.entries) {
      const rejection = this.guard(() => (this.consumer.restoreEntry ? this.consumer.restoreEntry(entry) : this.consumer.restore(entry.value)));
      if (rejection) this.warn({ ...rejection, ...entry.place });
    }
    this.framing.lastSeq = result.header.seq;
    this.chainHead = result.header.h ?? CHAIN_START;
    this.snapshotBytes = result.bytes;
  }

  /** See loadBase: the newest base below snapshot `failed` whose history is all there. */
  private loadOlderBase(listing: StoreListing, failed: number): { base: number; archived: number[] } {
    const archive = listArchive(this.dir);
    const exists = (n: number) => listing.segments.includes(n) || archive.segments.includes(n);
    const archivedFrom = (n: number) => {
      const firstLive = listing.segments.find((m) => m >= n) ?? Number.POSITIVE_INFINITY;
      return archive.segments.filter((m) => m >= n && m < firstLive);
    };
    const bases = [...new Set([...listing.snapshots, ...archive.snapshots])].filter((n) => n < failed).sort((a, b) => b - a);
    for (const n of bases) {
      if (!exists(n)) continue; // its first segment was pruned or deleted: it would skip records
      const live = listing.snapshots.includes(n);
      const file = live ? storePath(this.dir, snapshotName(n)) : archivedSnapshotPath(this.dir, n);
      const result = this.readBase(file, () => (live ? readSnapshotSync(file, (w) => this.warn(w)) : readArchivedSnapshotSync(file)));
      if (!result) continue;
      this.restoreBase(result);
      const archived = archivedFrom(n);
      this.warn({ code: WarningCodes.SNAPSHOT_UNREADABLE, message: `snapshot ${failed} is unreadable: using this older base and replaying segments from ${n} on${archived.length > 0 ? ` (${archived.length} from archive/)` : ''}`, file });
      return { base: n, archived };
    }
    // The whole history is there: replayed from segment 1 (from archive/ where folded), nothing is missing.
    if (exists(1)) return { base: 1, archived: archivedFrom(1) };
    this.warn({
      code: WarningCodes.SNAPSHOT_UNREADABLE,
      message: `no readable snapshot, and the history before segment ${listing.segments[0] ?? '(none)'} is not in the store nor in archive/: the state starts EMPTY and every session folded before it is missing (restore a snapshot or archive/ from a backup)`,
      file: this.dir,
    });
    return { base: 0, archived: [] };
  }

  /**
   * Replays one archived segment (gzip, read whole: this is the fallback
   * path, never the normal open) through the same framing as a live one.
   * What no longer inflates is reported and skipped; the history goes on.
   */
  private *replayArchivedSteps(n: number): Generator<void, void> {
    const file = archivedSegmentPath(this.dir, n);
    const fd = openStoreFile(file, 'read');
    if (fd === undefined) throw new StoreChanged(); // pruned since the listing: list again
    let compressed: Buffer;
    try {
      compressed = fs.readFileSync(fd);
    } catch (err) {
      throw ioError('read', file, err);
    } finally {
      closeQuietly(fd);
    }
    const { bytes, damaged } = gunzipReadable(compressed);
    const part: ReadFile = { number: n, path: file, rotatesTo: undefined, lines: new LineDecoder(), reader: { tailReportedAt: undefined } };
    const tail = splitBufferLines(
      bytes,
      file,
      this.maxLineBytes,
      (text, place) => this.applyLine(part, text, place),
      (place, length) => {
        this.framing.unreadableLine(place, false);
        this.warn({ code: WarningCodes.LINE_TOO_LONG, message: `line of ${length} bytes exceeds maxLineBytes (${this.maxLineBytes}); skipped`, ...place });
        return 'continue';
      },
    );
    if (damaged) {
      this.warn({ code: WarningCodes.UNPARSABLE_LINE, message: `archived segment is not valid gzip after this point (${damaged}); the rest of it is skipped`, file, line: tail.lines + 1 });
    } else if (tail.bytes > 0) {
      this.warn({ code: WarningCodes.INCOMPLETE_TAIL, message: `last ${tail.bytes} bytes have no newline (a torn write); not applied`, file, line: tail.lines + 1, offset: tail.offset });
    }
    yield;
  }

  /**
   * At open, the chain of rotation markers may end early: its last segment
   * ends in a line that is not a valid marker (a damaged byte, a cut), or in
   * a marker naming a segment that is not there, while a higher segment of
   * the listing continues the sequence. Such a segment is not an orphan (a
   * rotation that died after creating its successor leaves that one empty):
   * the damaged line is read as the rotation to it, with a warning, so
   * readers apply what follows and writers append at the real end.
   */
  private *followPastDamagedMarkers(numbers: number[]): Generator<void, void> {
    for (;;) {
      const live = this.current!;
      const next = this.successorPastDamage(live, numbers);
      if (next === undefined) return;
      const read = live.reader.offset;
      yield* this.followSteps(false); // a marker written since the listing is read, not guessed
      if (this.current !== live || live.reader.offset !== read) continue;
      const torn = live.reader.size() > live.reader.offset;
      const place = torn ? { line: live.reader.line + 1, offset: live.reader.offset } : { line: this.lastLine?.file === live.path ? this.lastLine.line : live.reader.line, offset: this.lastLine?.file === live.path ? this.lastLine.offset : undefined };
      const why = live.rotatesTo !== undefined ? `its rotation marker names segment ${live.rotatesTo}, which is not in the store` : torn ? 'it ends in a line cut short' : 'its last line is not a valid rotation marker';
      this.warn({ code: WarningCodes.ROTATION_MARKER_DAMAGED, message: `${why}, and segment ${next} continues the sequence after seq ${this.lastSeq}: read as the rotation to segment ${next}`, file: live.path, ...place });
      live.rotatesTo = next;
      yield* this.followSteps(false);
      if (this.current === live) return; // gone since the listing: the next open looks again
    }
  }

  /** The segment a damaged end of `live` leads to: the lowest non-empty one above it, if its first record continues the sequence. */
  private successorPastDamage(live: Segment, numbers: number[]): number | undefined {
    for (const m of numbers) {
      if (m <= live.number) continue;
      const first = this.firstSeqIn(m);
      if (first === 'empty') continue; // a rotation that died after creating it
      return first !== undefined && first > this.lastSeq ? m : undefined;
    }
    return undefined;
  }

  /**
   * While loading, a marker naming a segment beyond the next one: a rotation
   * skips past a non-empty orphan, but a damaged digit does the same. The
   * first non-empty segment in between whose first record is the marker's
   * seq + 1 is the real successor.
   */
  private skippedSuccessor(segment: Segment, target: number): number {
    for (const m of this.loadSegments) {
      if (m <= segment.number || m >= target) continue;
      const first = this.firstSeqIn(m);
      if (first === 'empty') continue;
      if (first !== this.lastSeq + 1) return target;
      this.warn({ code: WarningCodes.ROTATION_MARKER_DAMAGED, message: `the rotation marker names segment ${target}, but segment ${m} continues the sequence right after it (seq ${first}): read as the rotation to segment ${m}`, ...this.lastLine!, file: segment.path });
      return m;
    }
    return target;
  }

  /** The seq of the first readable record of live segment m, 'empty' for an empty file, undefined when none. */
  private firstSeqIn(m: number): number | 'empty' | undefined {
    const path = storePath(this.dir, segmentName(m));
    let fd: number | undefined;
    try {
      fd = openStoreFile(path, 'read');
    } catch {
      return undefined; // not a regular file: reported where it is opened
    }
    if (fd === undefined) return undefined;
    try {
      const size = fdSize(fd, path);
      if (size === 0) return 'empty';
      let seq: number | undefined;
      const lines = new LineDecoder();
      new SegmentReader(fd, path, this.maxLineBytes, () => undefined).readTo(size, (text) => {
        const decoded = lines.decode(text);
        if (!decoded.ok) return 'continue';
        seq = decoded.record.seq;
        return 'stop';
      });
      return seq;
    } finally {
      closeQuietly(fd);
    }
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
        if (size < segment.reader.offset && !this.rewindAfterShrink(segment, size)) {
          this.reload();
          return undefined;
        }
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
      if (this.loading && segment.rotatesTo > segment.number + 1) segment.rotatesTo = this.skippedSuccessor(segment, segment.rotatesTo);
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
    segment.reader.onSkippedLine = (place) => this.framing.unreadableLine(place, false);
    if (this.loading && this.onReplayProgress) {
      const report = this.onReplayProgress;
      segment.reader.onChunk = (offset) => report(this.replayBytes.finished + offset, this.replayBytes.total);
    }
    return segment;
  }

  private applyLine(segment: ReadFile, text: string, place: LinePlace): 'continue' | 'stop' {
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
    const own = header && this.isInDoubt(header, records[0]) ? this.inDoubt : undefined;
    // Readers pass every line of the commit, parts that do not join included: the chain goes on from its last.
    const last = records[records.length - 1];
    if (last) this.chainHead = last.hash ?? CHAIN_START;
    if (!hasParts(records)) {
      for (let i = 0; i < records.length; i++) this.applyRecord(records[i]!, places, i, i, segment, own);
    } else {
      joinParts(records.length, (i) => records[i]!, this.maxRecordBytes, {
        whole: (record, first, end) => this.applyRecord(record, places, first, end, segment, own),
        broken: (first, end, rejection) => {
          for (let i = first; i <= end; i++) this.warn({ ...rejection, ...places[i]! });
        },
      });
    }
    if (own) {
      own.outcome = 'applied';
      // Read back from archive/ (a reload from an older base): synced where it was written.
      own.landedIn = segment instanceof Segment ? segment : own.segment;
    }
  }

  /** One record readers apply, read from places[first..last] (more than one line when it was spread). */
  private applyRecord(record: JournalRecord, places: readonly LinePlace[], first: number, last: number, segment: ReadFile, own: InDoubtCommit | undefined): void {
    const place = places[first]!;
    if (own) {
      // Our own commit, read back after a doubt: it is in the journal for every reader.
      const entry = own.bySeq.get(record.seq);
      if (entry) {
        entry.seq = record.seq;
        own.landed.push(entry);
      }
      return;
    }
    if (record.type === ROTATE_EVENT) {
      const next = rotationTarget(record, segment.number);
      if (next === undefined) {
        this.warn({ code: WarningCodes.INVALID_PAYLOAD, message: 'rotation marker without a valid next segment', ...place });
      } else {
        segment.rotatesTo = next;
        this.stopReading = true;
      }
      return;
    }
    const rejection = this.guard(() => this.consumer.apply(record));
    if (!rejection) return;
    if (first === last) {
      this.warn({ ...rejection, ...place });
      return;
    }
    // Each line of a spread record is reported, so that compaction keeps every one of them aside (kept-aside.ts).
    for (let i = first; i <= last; i++) this.warn({ ...rejection, message: `${rejection.message} (line ${i - first + 1} of the ${last - first + 1} the record is spread over)`, ...places[i]! });
  }

  /** A warning the framing rule gives at a line: once per line, like every other. */
  private warnAt(w: JournalWarning): void {
    if (this.reading && this.reading.reader.tailReportedAt === w.offset && w.file === this.reading.path) return;
    this.warn(w);
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
   * Under the lock, after catching up: ends a torn last line with TORN_SEAL
   * (nobody is appending, so it is a failed write's remains) and reads it,
   * so the next commit starts on a line of its own and every reader knows
   * the torn commit never finished. Returns the segment's size after.
   */
  sealTornTailLocked(segment: Segment, size: number): number {
    if (!segment.reader.hasIncompleteTail(size)) return size;
    segment.append(Buffer.from(TORN_SEAL, 'latin1'));
    const sealed = size + TORN_SEAL.length;
    segment.reader.readTo(sealed, segment.onLine);
    return sealed;
  }

  /**
   * Under the lock, after catching up and sealing: what readers made of the
   * commit left in doubt, if any. Its records that readers apply are
   * acknowledged; the rest are written again by the next commit, whose
   * header (numbered from the last applied record) also ends an unfinished
   * copy for every reader. So each entry is applied exactly once.
   */
  resolveDoubtLocked(): DoubtResolution | undefined {
    const doubt = this.inDoubt;
    if (!doubt) return undefined;
    this.inDoubt = undefined;
    doubt.segment.settle();
    const landed = doubt.outcome === 'applied' ? doubt.landed : [];
    const requeue = doubt.entries.filter((e) => !landed.includes(e));
    for (const e of requeue) e.seq = 0;
    return { landed, landedIn: doubt.landedIn, requeue };
  }

  /**
   * Writes one commit at the end of `segment` (caught up and sealed to
   * `size` under the lock) in one O_APPEND write, fenced: it counts as
   * written only if, before and after the write, the segment is still the
   * store's, its size is exactly what this process read (then that plus the
   * commit) and the lock is still this holder's. Anything else leaves the
   * commit in doubt (or, before the write, unwritten).
   */
  writeLocked(segment: Segment, size: number, records: ReadonlyArray<Pick<QueuedEntry, 'time' | 'type' | 'payloadJson'>>, lease: LockLease, entries?: QueuedEntry[]): WriteOutcome {
    // A record too long for one line goes as parts, all in this commit (record-parts.ts): `n` counts lines.
    const parts = records.map((r) => this.partsOf(r.type, r.payloadJson));
    let lines = 0;
    for (const p of parts) lines += p?.length ?? 1;
    const header: CommitHeader = { id: ownWriterTag(), count: lines };
    const firstSeq = this.framing.lastSeq + 1;
    // `w` only where the lines before would not say it (LineDecoder): the other lines of the commit are the first one's.
    const firstWriterJson = segment.lines.needsWriter(header.id, this.writer) ? this.writerJson : undefined;
    const seqs: number[] = [];
    let text = '';
    let head = this.chainHead;
    let seq = firstSeq;
    const writeLine = (time: number, type: string, payloadJson: string) => {
      const first = seq === firstSeq;
      const encoded = encodeRecord(seq, time, first ? firstWriterJson : undefined, type, payloadJson, this.hashChain ? head : undefined, first ? header : undefined);
      text += encoded.line;
      head = encoded.hash;
      seq++;
    };
    records.forEach((r, i) => {
      const spread = parts[i];
      if (spread) for (const part of spread) writeLine(r.time, PART_EVENT, part);
      else writeLine(r.time, r.type, r.payloadJson);
      seqs.push(seq - 1);
    });
    const bytes = Buffer.from(text, 'utf8');
    const before = segment.place();
    // Everything before the write must have been read: the framing continues from it, and this process's offset moves past its own bytes.
    if (!before.current || before.size !== size || segment.reader.offset !== size || !lease.stillHeld()) return { kind: 'not-written' };
    const doubt = (): void => {
      if (!entries) return;
      this.inDoubt = { id: header.id, firstSeq, entries, bySeq: new Map(entries.map((e, i) => [seqs[i]!, e])), segment, landed: [], outcome: 'unknown' };
      segment.expectSync(); // keeps the descriptor until the doubt is resolved
    };
    try {
      segment.append(bytes);
    } catch (err) {
      doubt(); // part of it may be in the file
      throw err;
    }
    const after = segment.place();
    if (!after.current || after.size !== size + bytes.length || !lease.stillHeld()) {
      doubt();
      return { kind: 'in-doubt' };
    }
    this.framing.ownCommit(firstSeq, lines, { file: segment.path, line: segment.reader.line + 1, offset: size });
    segment.reader.skip(bytes.length, lines);
    segment.lines.wrote(header.id, this.writer);
    this.chainHead = head;
    this.counters.commits++;
    this.counters.recordsWritten += records.length;
    this.counters.bytesWritten += bytes.length;
    return { kind: 'written', firstSeq, seqs };
  }

  /**
   * Whether a `type` record with a payload of `payloadBytes` can be written:
   * on one line within maxLineBytes, or spread over lines that each fit.
   */
  canWrite(type: string, payloadBytes: number): boolean {
    if (this.fitsOneLine(type, payloadBytes)) return true;
    const pieceBytes = pieceBytesFor(type, this.partRoom);
    // A piece fills at least a third of its room (a character of payload JSON takes 1 to 3 bytes as a JSON string), so this many parts at most.
    return pieceBytes !== undefined && Math.ceil((3 * payloadBytes) / (pieceBytes - 2)) + 1 <= MAX_PARTS;
  }

  private fitsOneLine(type: string, payloadBytes: number): boolean {
    // Most records are far below the limit: a character of the type takes at most 6 bytes as JSON.
    if (payloadBytes + 6 * type.length + this.envelopeBase <= this.maxLineBytes) return true;
    return payloadBytes + envelopeBytes(this.writerJson, type) <= this.maxLineBytes;
  }

  /** The part payloads a record is written as, or undefined when it fits on one line. */
  private partsOf(type: string, payloadJson: string): string[] | undefined {
    // A character is at most 3 bytes of UTF-8: most records are known to fit without measuring them.
    if (3 * payloadJson.length + 6 * type.length + this.envelopeBase <= this.maxLineBytes) return undefined;
    if (this.fitsOneLine(type, Buffer.byteLength(payloadJson))) return undefined;
    const pieceBytes = pieceBytesFor(type, this.partRoom);
    // append() refused what cannot be spread; a record of the engine's own (a rotation marker) is always short.
    return pieceBytes === undefined ? undefined : spreadPayload(type, payloadJson, pieceBytes);
  }


  /**
   * Under the lock: closes the live segment with a rotation marker and makes
   * a new, empty segment live. The marker is fsynced before the lock is
   * released, so no write can land in the new segment without it.
   */
  rotateLocked(time: number, lease: LockLease, onSyncFailure: (failure: SessionJournalError) => void): { closed: number; next: number; seq: number; hash: string } {
    const seen = this.follow(true);
    const segment = this.liveSegmentLocked();
    const size = this.sealTornTailLocked(segment, seen ?? segment.reader.size());
    let nextNumber = segment.number + 1;
    let next = this.openSegment(nextNumber, true)!;
    while (next.reader.size() > 0) {
      this.reportOrphan(nextNumber);
      next.retire();
      next = this.openSegment(++nextNumber, true)!;
    }
    let outcome: WriteOutcome;
    try {
      outcome = this.writeLocked(segment, size, [{ time, type: ROTATE_EVENT, payloadJson: canonicalPayload({ next: nextNumber })! }], lease);
    } catch (err) {
      next.retire(); // left empty: the next rotation reuses it
      throw err;
    }
    if (outcome.kind !== 'written') {
      next.retire();
      // Readers may or may not follow the marker; either is a store as a compaction that stopped after its rotation leaves it.
      throw new SessionJournalError(ErrorCodes.LOCK_COMPROMISED, `the rotation marker of ${segment.path} could not be proved in place (the lock was lost or the segment changed); the rotation is abandoned`, { details: { dir: this.dir } });
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
    return { closed: segment.number, next: nextNumber, seq: outcome.firstSeq, hash: this.chainHead };
  }

  /** Closes the live segment now, or when the fsync pending on it settles. */
  release(): void {
    // Retired like a segment moved past: a commit's fsync still pending (a closeSync
    // during a background commit) closes the descriptor when it settles.
    this.current?.retire();
    this.current = undefined;
  }
}
