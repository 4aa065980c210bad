import { ErrorCodes, SessionJournalError, ioError } from '../../errors.js';
import { readArchivedSnapshotSync, readSnapshotSync, type SnapshotReadResult } from './snapshot-file.js';
import { gunzipReadable, splitBufferLines } from './buffer-lines.js';
import { CHAIN_START, LineDecoder } from '../../engine/record-codec.js';
import { restoreEntries } from '../../engine/commit-apply.js';
import { SegmentReader } from './segment-reader.js';
import { Segment } from './segment.js';
import { archivedSegmentPath, archivedSnapshotPath, closeQuietly, fdSize, fileSizeOrZero, fsyncDirSync, listArchive, listStore, openStoreFile, prepareStoreDir, segmentName, snapshotName, storePath, type StoreListing } from './store-files.js';
import { WarningCodes } from '../../engine/warnings.js';
import { yieldToEventLoop } from '../../engine/event-loop-yield.js';
import { ByteBudget } from './byte-budget.js';
import { ChainReader, StoreChanged, type OpenReplay, type ReadFile } from './chain-reader.js';
const fs = process.getBuiltinModule('node:fs');

const OPEN_ATTEMPTS = 5;
/** loadAsync reads the chain in parts of this many bytes, letting the event loop run between them. */
const ASYNC_READ_BYTES = 64 * 1024;

/**
 * One pass of the replay at open over one listing of the store, made of
 * steps (replayStep): each archived segment, each read of the chain, and
 * after each read to the chain's end, what to make of that end. The
 * fields below the listing are what those decisions must remember from
 * one read to the next.
 */
interface ReplayPass extends OpenReplay {
  /** Archived segments not replayed yet (only when the newest snapshot is unreadable). */
  readonly archived: number[];
  /** The chain was just read as far as it goes: its end is looked at next (afterChainRead). */
  chainRead: boolean;
  /** A damaged end found before the last read: if that read moved nothing, it is read as the rotation to `next`. */
  damaged?: { live: Segment; offset: number; next: number };
  /** The segment whose damaged end was read as the rotation to its successor. */
  rotatedPast?: Segment;
  /** Set for the last read: bytes past the last line with the lock free; what still has no newline before `size` is torn. */
  tail?: { live: Segment; size: number };
}

/** The replay at open: its passes, one per listing (the store may change under it). */
interface Replay {
  attempt: number;
  pass: ReplayPass | undefined;
}

/**
 * Opening a store's chain of segments: the newest readable snapshot (or an
 * older base when it is damaged), then the segments from it on, following
 * rotation markers, reading past damaged ones, and reporting orphans.
 * load() and loadAsync() run the same steps (replayStep); the async one
 * pauses after each step that read something.
 */
export class ChainLoader extends ChainReader {
  // ---- open and replay ---------------------------------------------------

  /** Opens the store directory (creating it when asked) and replays it. */
  load(create: boolean): void {
    if (!prepareStoreDir(this.dir, create)) return;
    this.markNewStore(create);
    this.replay();
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
   * The same, pausing after each read of 64 KiB of segments (and each
   * archived segment): for work that should overlap a long replay (the
   * compactor's archive gzip runs on libuv's thread pool meanwhile). The
   * pause awaits yieldToEventLoop() and then `pace`, when given, with the
   * bytes of segments replayed so far (the event loop turns at each pause:
   * event-loop-yield.ts).
   * `readBytes`: the budget of each read (smaller in tests, so that reads
   * stop everywhere).
   */
  async loadAsync(create: boolean, pace?: (bytesReplayed: number) => Promise<void> | undefined, readBytes = ASYNC_READ_BYTES): Promise<void> {
    if (!prepareStoreDir(this.dir, create)) return;
    this.markNewStore(create);
    const replay: Replay = { attempt: 1, pass: undefined };
    try {
      for (let step = this.replayStep(replay, new ByteBudget(readBytes)); step !== 'done'; step = this.replayStep(replay, new ByteBudget(readBytes))) {
        if (step !== 'read') continue;
        await yieldToEventLoop();
        await pace?.(replay.pass!.finishedBytes + (this.current?.reader.offset ?? 0));
      }
    } finally {
      this.endReplay();
    }
  }

  /** The replay, without pausing: at load, and at reload. */
  private replay(): void {
    const replay: Replay = { attempt: 1, pass: undefined };
    try {
      while (this.replayStep(replay, ByteBudget.unlimited()) !== 'done');
    } finally {
      this.endReplay();
    }
  }

  private endReplay(): void {
    if (this.current) this.current.reader.onChunk = undefined;
  }

  /**
   * One step of the replay: 'read' when it read something (where loadAsync
   * pauses), 'more' when it only decided what comes next, 'done' at the
   * end. A pass the store changed under (StoreChanged) is started again
   * from a new listing, up to OPEN_ATTEMPTS times.
   */
  private replayStep(replay: Replay, budget: ByteBudget): 'read' | 'more' | 'done' {
    try {
      replay.pass ??= this.beginPass();
      return this.passStep(replay.pass, budget);
    } catch (err) {
      if (!(err instanceof StoreChanged)) throw err;
      if (replay.attempt >= OPEN_ATTEMPTS) {
        throw new SessionJournalError(ErrorCodes.IO_ERROR, `${this.dir} changed under every one of ${OPEN_ATTEMPTS} attempts to read it (compactions running back to back?); try again`, { details: { dir: this.dir } });
      }
      replay.attempt++;
      replay.pass = undefined;
      this.current?.retire();
      this.current = undefined;
      return 'more';
    }
  }

  /** Starts a pass from scratch: a new listing, its base restored. */
  private beginPass(): ReplayPass {
    this.framing.lastSeq = 0;
    this.framing.dropOpen();
    this.chainHead = CHAIN_START;
    this.recordsRead = 0;
    this.bytesBeforeCurrent = 0;
    this.consumer.reset();
    const listing = listStore(this.dir);
    const { base, archived } = this.loadBase(listing);
    const segments = listing.segments.filter((n) => n >= base);
    this.firstSegmentNumber = segments[0] ?? Math.max(base, (archived[archived.length - 1] ?? 0) + 1, 1);
    const totalBytes = this.onReplayProgress ? segments.reduce((sum, n) => sum + fileSizeOrZero(storePath(this.dir, segmentName(n))), 0) : 0;
    return { segments, totalBytes, finishedBytes: 0, archived: [...archived], chainRead: false };
  }

  private passStep(pass: ReplayPass, budget: ByteBudget): 'read' | 'more' | 'done' {
    // Only when the newest snapshot was unreadable: the older base's segments no longer in the store.
    const archived = pass.archived.shift();
    if (archived !== undefined) {
      this.replayArchived(archived);
      return 'read';
    }
    if (pass.chainRead) {
      pass.chainRead = false;
      return this.afterChainRead(pass) ? 'more' : 'done';
    }
    const read = this.readChain(budget, pass);
    // Applied bytes were cut off a segment: this pass's view holds what the store no longer does.
    if (read.stop === 'shrunk') throw new StoreChanged();
    pass.chainRead = read.stop !== 'budget';
    return budget.used > 0 ? 'read' : 'more';
  }

  /**
   * After a read to the end of the chain: true when the chain must be read
   * again. The live segment is the end of the chain of rotation markers,
   * not simply the highest number: a rotation that died after creating its
   * successor but before writing the marker leaves an empty segment nobody
   * may use. Then the rest of the listing is orphans, and a torn tail is
   * looked for.
   */
  private afterChainRead(pass: ReplayPass): boolean {
    if (pass.tail) {
      const { live, size } = pass.tail;
      if (this.current === live && live.reader.offset < size) this.reportIncompleteTail(live);
      return false;
    }
    if (pass.segments.length > 0 && !this.current) throw new StoreChanged();
    if (!this.current) return false;
    if (this.readPastDamagedMarker(pass)) return true;
    const live = this.current;
    for (const n of pass.segments) if (n > live.number) this.reportOrphan(n);
    const size = live.reader.size();
    if (size <= live.reader.offset || this.isLockHeld()) return false;
    // The lock is free, so every byte up to `size` was written by a finished
    // commit; read once more (a writer may have ended its line since), and
    // what still has no newline before `size` is torn.
    pass.tail = { live, size };
    return true;
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
    restoreEntries(this.consumer, result.entries, this.warn);
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
  private replayArchived(n: number): void {
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
  }

  /**
   * At open, the chain of rotation markers may end early: its last segment
   * ends in a line that is not a valid marker (a damaged byte, a cut), or in
   * a marker naming a segment that is not there, while a higher segment of
   * the listing continues the sequence. Such a segment is not an orphan (a
   * rotation that died after creating its successor leaves that one empty):
   * the damaged line is read as the rotation to it, with a warning, so
   * readers apply what follows and writers append at the real end.
   * Called after each read of the chain to its end: true when the chain
   * must be read again (before the damaged line is read as a rotation, and
   * after).
   */
  private readPastDamagedMarker(pass: ReplayPass): boolean {
    const live = this.current!;
    if (pass.rotatedPast === live) return false; // its successor is gone since the listing: the next open looks again
    const checked = pass.damaged;
    pass.damaged = undefined;
    if (checked?.live !== live || checked.offset !== live.reader.offset) {
      const next = this.successorPastDamage(live, pass.segments);
      if (next === undefined) return false;
      // A marker written since the listing is read, not guessed: read once more first.
      pass.damaged = { live, offset: live.reader.offset, next };
      return true;
    }
    const next = checked.next;
    const torn = live.reader.size() > live.reader.offset;
    const place = torn ? { line: live.reader.line + 1, offset: live.reader.offset } : { line: this.lastLine?.file === live.path ? this.lastLine.line : live.reader.line, offset: this.lastLine?.file === live.path ? this.lastLine.offset : undefined };
    const why = live.rotatesTo !== undefined ? `its rotation marker names segment ${live.rotatesTo}, which is not in the store` : torn ? 'it ends in a line cut short' : 'its last line is not a valid rotation marker';
    this.warn({ code: WarningCodes.ROTATION_MARKER_DAMAGED, message: `${why}, and segment ${next} continues the sequence after seq ${this.lastSeq}: read as the rotation to segment ${next}`, file: live.path, ...place });
    live.rotatesTo = next;
    pass.rotatedPast = live;
    return true;
  }

  /** The segment a damaged end of `live` leads to: the lowest non-empty one above it, if its first record continues the sequence. */
  private successorPastDamage(live: Segment, numbers: readonly number[]): number | undefined {
    for (const m of numbers) {
      if (m <= live.number) continue;
      const first = this.firstSeqIn(m);
      if (first === 'empty') continue; // a rotation that died after creating it
      return first !== undefined && first > this.lastSeq ? m : undefined;
    }
    return undefined;
  }

  /**
   * At open, a marker naming a segment beyond the next one: a rotation
   * skips past a non-empty orphan, but a damaged digit does the same. The
   * first non-empty segment in between whose first record is the marker's
   * seq + 1 is the real successor.
   */
  protected skippedSuccessor(segment: Segment, target: number, segments: readonly number[]): number {
    for (const m of segments) {
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

  protected reportOrphan(n: number): void {
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
  protected reload(): void {
    this.current?.retire();
    this.current = undefined;
    this.replay();
  }

}
