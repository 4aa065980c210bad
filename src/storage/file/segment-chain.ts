import { ErrorCodes, SessionJournalError, ioError } from '../../errors.js';
import type { QueuedEntry } from '../../engine/commit-queue.js';
import { ROTATE_EVENT, TORN_SEAL, canonicalPayload, newWriterTag } from '../../engine/record-codec.js';
import { commitText, encodeCommit, type RecordToEncode } from '../../engine/commit-encoder.js';
import type { LockLease } from './store-lock.js';
import { Segment } from './segment.js';
import { ChainLoader } from './chain-loader.js';
const fs = process.getBuiltinModule('node:fs');

/**
 * This process's writer tag, the `c` of each of its commits (format 2): a
 * commit is known by (tag, first seq), which no two commits readers apply
 * share, since applied commits begin at increasing seqs.
 */
let writerTag: string | undefined; // drawn at the first commit: a process that only reads never loads node:crypto
const ownWriterTag = (): string => (writerTag ??= newWriterTag());

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
 * wrote. This class is its writing half, under the lock (opening is
 * ChainLoader's, catch-up ChainReader's); locking and durability are
 * FileStorage's, queuing the engine's.
 */
export class SegmentChain extends ChainLoader {

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
  writeLocked(segment: Segment, size: number, records: readonly RecordToEncode[], lease: LockLease, entries?: QueuedEntry[]): WriteOutcome {
    // The lines are the engine's (commit-encoder.ts); `w` only where this segment's lines before would not say it.
    const commit = encodeCommit(records, {
      firstSeq: this.framing.lastSeq + 1,
      prev: this.hashChain ? this.chainHead : undefined,
      tag: ownWriterTag(),
      budget: this.budget,
      linesBefore: segment.lines,
    });
    const { header, firstSeq, seqs } = commit;
    const bytes = Buffer.from(commitText(commit), 'utf8');
    const before = segment.place();
    // Everything before the write must have been read: the framing continues from it, and this process's offset moves past its own bytes.
    if (!before.current || before.size !== size || segment.reader.offset !== size || !lease.stillHeld()) return { kind: 'not-written' };
    const doubt = (): void => {
      if (!entries) return;
      this.inDoubt = { tag: header.id, firstSeq, writer: this.budget.writer, entries, bySeq: new Map(entries.map((e, i) => [seqs[i]!, e])), segment, landed: [], outcome: 'unknown' };
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
    this.framing.ownCommit(firstSeq, header.count, { file: segment.path, line: segment.reader.line + 1, offset: size });
    segment.reader.skip(bytes.length, header.count);
    segment.lines.wrote(header.id, this.budget.writer);
    this.chainHead = commit.hash;
    this.counters.written(commit, bytes.length);
    return { kind: 'written', firstSeq, seqs };
  }

  /**
   * Whether a `type` record with a payload of `payloadBytes` can be written:
   * on one line within maxLineBytes, or spread over lines that each fit.
   */
  canWrite(type: string, payloadBytes: number): boolean {
    return this.budget.canWrite(type, payloadBytes);
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

export type { JournalConsumer } from '../../engine/journal-consumer.js';
