import type { CommitHeader } from './record-codec.js';
import type { LinePlace } from './line-place.js';
import { WarningCodes, type JournalWarning } from './warnings.js';

/**
 * Where a line was read, as warnings give it: a segment's file, line and
 * offset (LinePlace), or a Redis stream's key and entry id. The rule only
 * passes places through, so every reader keeps its own kind.
 */
export type RecordPlace = Pick<JournalWarning, 'file' | 'line' | 'offset' | 'entry'> & { file: string };

/** How a place reads in a message: "line 12" or "entry 12-0". */
const placeName = (p: RecordPlace): string => (p.entry !== undefined ? `entry ${p.entry}` : `line ${p.line}`);

/** What the framing rule needs of a record: its sequence number and, on a commit's first record, the header. */
export interface FramedRecord {
  seq: number;
  commit?: CommitHeader;
}

/** Where the framing rule reports its decisions. */
export interface CommitSink<R extends FramedRecord, P extends RecordPlace = LinePlace> {
  /**
   * A commit every reader applies: its readable records, in file order, and
   * where each was read. Both arrays are only lent for the call (a commit of
   * one record reuses them): copy what must be kept.
   */
  applied(records: readonly R[], places: readonly P[], commit: CommitHeader | undefined): void;
  /** A commit no reader applies (an incomplete one replaced by a later commit, or a stale writer's). */
  rejected(records: R[], commit: CommitHeader, why: 'incomplete' | 'stale'): void;
  warn(warning: JournalWarning): void;
}

interface OpenCommit<R, P> {
  header: CommitHeader;
  first: number;
  /** Highest seq among the records seen so far. */
  lastSeen: number;
  records: R[];
  places: P[];
  /** Lines read since the commit began, its first included, readable or not. */
  lines: number;
  /** Where its first record starts: a reader that finds the file shorter rewinds here. */
  place: P;
  /** A stale writer's commit: its records are consumed and dropped. */
  stale: boolean;
}

/**
 * The one rule that decides which records readers apply (docs/FORMAT.md,
 * "Commits"). Every reader uses it, in file order: the journal's replay and
 * catch-up, a writer checking where its own bytes landed, verify, replay and
 * repair. It never looks at a clock or at the lock, only at the bytes, so
 * every process decides the same.
 *
 * - A record without a commit header that is not part of an open commit is
 *   a commit of its own (older writers wrote only those).
 * - A header with `count` > 1 opens a commit. It is complete, and its
 *   readable records are applied together, once `count` lines have been read
 *   since it began (a damaged line counts: its bytes were written), or once a
 *   later record shows the writer finished it: a header whose seq is above
 *   every seq of the open commit, or any record numbered past its end.
 * - A header whose seq does not go above the open commit's records means the
 *   open commit was never finished: its writer (or the next one) numbered
 *   again from the last applied record. So does a sealed torn line (the
 *   remains of a failed write, ended by the next writer). The open commit is
 *   dropped whole. An open commit at the end of the file is not applied yet:
 *   its write may be in progress.
 * - A header numbered at or below the last applied record is a stale
 *   writer's (it numbered from an out-of-date view): dropped whole.
 */
export class CommitAssembler<R extends FramedRecord, P extends RecordPlace = LinePlace> {
  private open: OpenCommit<R, P> | undefined;
  /** Lent to the sink for every commit of one record (the common case at replay): no allocation per record. */
  private readonly single: R[] = [];
  private readonly singlePlace: P[] = [];

  constructor(
    /** Seq of the last applied record (the snapshot's, before any). */
    public lastSeq: number,
    private readonly sink: CommitSink<R, P>,
  ) {}

  /** Where the unfinished commit began, if one is open (nothing of it applied yet). */
  get openSince(): P | undefined {
    return this.open?.place;
  }

  /** Takes the next readable record in file order. */
  record(r: R, place: P): void {
    const open = this.open;
    if (open) {
      const end = open.first + open.header.count - 1;
      if (!r.commit && r.seq > open.lastSeen && r.seq <= end) {
        open.records.push(r);
        open.places.push(place);
        open.lastSeen = r.seq;
        this.countLine(open);
        return;
      }
      if (!r.commit && r.seq <= open.lastSeen) {
        // A line repeated inside a commit (damage, a copy-paste): neither ends the commit nor counts twice.
        this.sink.warn({ code: WarningCodes.SEQUENCE_REGRESSION, message: `seq ${r.seq} repeats a record of commit ${open.header.id}; skipped`, ...place });
        this.countLine(open);
        return;
      }
      // Not one of its records: what comes next decides what the open commit was.
      if (r.commit ? r.seq > open.lastSeen : r.seq > end) this.close(open, 'complete');
      else this.close(open, 'incomplete', place);
    }
    if (!r.commit) {
      // A commit of its own, as older writers wrote every record.
      if (r.seq <= this.lastSeq) {
        this.sink.warn({ code: WarningCodes.SEQUENCE_REGRESSION, message: `seq ${r.seq} follows seq ${this.lastSeq} (a duplicated line, or writers of an older version under a lost lock); applied`, ...place });
      }
      this.applySingle(r, place, undefined);
      return;
    }
    const stale = r.seq <= this.lastSeq;
    if (r.commit.count === 1 && !stale) {
      this.applySingle(r, place, r.commit);
      return;
    }
    const opened: OpenCommit<R, P> = { header: r.commit, first: r.seq, lastSeen: r.seq, records: [r], places: [place], lines: 0, place, stale };
    this.open = opened;
    this.countLine(opened);
  }

  /**
   * Takes a line that is not a readable record. Damage (a flipped byte, an
   * editor) counts as one of the open commit's lines: its bytes were
   * written. A sealed torn line (TORN_SEAL) is what a failed write left: the
   * commit it belonged to never finished.
   */
  unreadableLine(place: P, sealedTorn: boolean): void {
    if (!this.open) return;
    if (sealedTorn) this.close(this.open, 'incomplete', place);
    else this.countLine(this.open);
  }

  /**
   * The writer's own commit, just proved to have landed whole right after
   * everything this assembler has read: as if its records had been read.
   */
  ownCommit(firstSeq: number, count: number, place: P): void {
    if (this.open) this.close(this.open, firstSeq > this.open.lastSeen ? 'complete' : 'incomplete', place);
    this.lastSeq = firstSeq + count - 1;
  }

  /** Forgets the open commit (the reader rewinds to where it began). */
  dropOpen(): void {
    this.open = undefined;
  }

  private countLine(open: OpenCommit<R, P>): void {
    if (++open.lines >= open.header.count) this.close(open, 'complete');
  }

  private close(open: OpenCommit<R, P>, how: 'complete' | 'incomplete', at?: P): void {
    this.open = undefined;
    if (open.stale) {
      this.sink.warn({ code: WarningCodes.STALE_COMMIT, message: `commit ${open.header.id} (seq ${open.first}-${open.first + open.header.count - 1}) was numbered from an out-of-date view (seq ${this.lastSeq} was already applied): a writer that lost the lock; not applied (its writer wrote it again)`, ...open.place });
      this.sink.rejected(open.records, open.header, 'stale');
      return;
    }
    if (how === 'incomplete') {
      const where = at ? ` (replaced at ${placeName(at)})` : '';
      this.sink.warn({ code: WarningCodes.INCOMPLETE_COMMIT, message: `commit ${open.header.id} has ${open.records.length} of its ${open.header.count} records${where}: a write that failed or was cut short; not applied (never acknowledged)`, ...open.place });
      this.sink.rejected(open.records, open.header, 'incomplete');
      return;
    }
    this.applyCommit(open.records, open.places, open.header);
  }

  private applySingle(r: R, place: P, header: CommitHeader | undefined): void {
    this.single[0] = r;
    this.singlePlace[0] = place;
    this.applyCommit(this.single, this.singlePlace, header);
  }

  private applyCommit(records: R[], places: P[], header: CommitHeader | undefined): void {
    for (const r of records) if (r.seq > this.lastSeq) this.lastSeq = r.seq;
    this.sink.applied(records, places, header);
  }
}
