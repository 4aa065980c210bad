import { CHAIN_START, chainHashOf } from '../engine/record-codec.js';

/** Codes `verify` reports beyond the replay warning codes (docs/OPERATIONS.md, "Verifying integrity"). */
export const VerifyCodes = {
  /** A record's hash does not match its content: it was edited after it was written. */
  RECORD_EDITED: 'RECORD_EDITED',
  /** Sequence numbers are missing before this record and the chain breaks here: records were deleted (or moved). */
  RECORD_MISSING: 'RECORD_MISSING',
  /** A record the chain skips over: inserted or duplicated. */
  RECORD_INSERTED: 'RECORD_INSERTED',
  /** A record found away from its place in the chain (and the place where it is missing). */
  RECORD_MOVED: 'RECORD_MOVED',
  /** A sequence number that goes backwards, with a broken link. */
  RECORD_OUT_OF_ORDER: 'RECORD_OUT_OF_ORDER',
  /** The link to the previous record is broken and no simpler explanation fits (a record changed and rehashed, records replaced). */
  HASH_MISMATCH: 'HASH_MISMATCH',
  /** A record without a (well-formed) hash: unchained (written with hashChain: false, or its `h` was removed). */
  HASH_MISSING: 'HASH_MISSING',
  /** The chain is intact but sequence numbers skip or go backwards (writers under a lost lock). */
  SEQUENCE_GAP: 'SEQUENCE_GAP',
  /** A rotation marker names a segment that is neither in the store nor in archive/. */
  ROTATION_TARGET_MISSING: 'ROTATION_TARGET_MISSING',
  /** A segment no rotation marker leads to: readers never apply it. */
  ORPHAN_SEGMENT: 'ORPHAN_SEGMENT',
  /** Records after a segment's rotation marker: readers never apply them. */
  RECORD_AFTER_ROTATION: 'RECORD_AFTER_ROTATION',
  /** A snapshot's header (seq, h) disagrees with the rotation marker it follows or with the record after it. */
  SNAPSHOT_HEADER_MISMATCH: 'SNAPSHOT_HEADER_MISMATCH',
  /** A snapshot's sessions differ from the state the history folds to. */
  SNAPSHOT_STATE_MISMATCH: 'SNAPSHOT_STATE_MISMATCH',
  /** A store on Redis: `{P}:head`, what the next commit chains from, is not the last record of the stream (or the snapshot's head). */
  HEAD_MISMATCH: 'HEAD_MISMATCH',
  /** `--expect-head`: the record with that seq has another hash. */
  EXPECTED_HEAD_MISMATCH: 'EXPECTED_HEAD_MISMATCH',
  /** `--expect-head`: the store ends before that seq (records removed from the end, or another store). */
  EXPECTED_HEAD_NOT_FOUND: 'EXPECTED_HEAD_NOT_FOUND',
  /** `--expect-head`: that record is no longer available (archive pruned), so nothing can be proven. */
  EXPECTED_HEAD_UNAVAILABLE: 'EXPECTED_HEAD_UNAVAILABLE',
} as const;

export interface VerifyProblem {
  code: string;
  /** Path relative to the store directory (`journal-00000002.ndjson`, `archive/journal-00000001.ndjson.gz`), or null; on Redis a key (`{P}:log`). */
  file: string | null;
  /** 1-based line, or null (always on Redis: `entry` says where). */
  line: number | null;
  /** Byte offset of the line's start (uncompressed, for archived files), or null. */
  offset: number | null;
  /** A store on Redis: the id of the stream entry (`file` then names the stream's key). Absent for a directory. */
  entry?: string;
  message: string;
}

/** Where a record is: a line of a segment, or (`entry` set, `line` and `offset` null) an entry of a Redis stream. */
export interface Place {
  file: string;
  line: number | null;
  offset: number | null;
  entry?: string;
}

/** One record as the chain sees it. */
export interface ChainRecord {
  seq: number;
  /** Its well-formed `h`, if any. */
  h: string | undefined;
  /** The parsed line, as written (the hash is recomputed from it). */
  raw: Record<string, unknown>;
  place: Place;
  /** Position in the history (0-based), to relate problems to a point. */
  ordinal: number;
}

interface Pending {
  rec: ChainRecord;
  /** The hash it should have chained from. */
  prev: string;
  prevSeq: number;
  /** Snapshot file whose header gave `prev`, when the record is the first after it. */
  snapshot: string | undefined;
}

/** Where a RECORD_MISSING break lies: the record before it and the record the chain resumes at (a `journal.repair` record may explain it). */
export interface ChainBreak {
  afterSeq: number;
  afterHash: string;
  seq: number;
  h: string;
}

export type ProblemSink = (problem: VerifyProblem, ordinal: number, at?: ChainBreak) => void;

export const shortHash = (h: string | undefined): string => (h ? `${h.slice(0, 12)}…` : '(none)');
const at = (p: Place): string => (p.entry !== undefined ? `${p.file} entry ${p.entry}` : `${p.file}:${p.line}`);
const problemAt = (code: string, place: Place, message: string): VerifyProblem => ({ code, file: place.file, line: place.line, offset: place.offset, ...(place.entry !== undefined && { entry: place.entry }), message });

/**
 * Checks the hash chain record by record, in commit order, and explains each
 * break once: a record edited in place (the next record still chains from
 * its stored hash), deleted (a sequence gap), inserted (the chain skips over
 * it), moved (its sequence number turns up away from the gap it left), or
 * unchained. After a break it goes on from the stored hashes, so one edit is
 * one problem, not a cascade.
 */
export class ChainChecker {
  /** The hash the next record must chain from; undefined while nothing anchors the chain. */
  private prev: string | undefined;
  private prevSeq: number | undefined;
  /** The hash the previous record chained from (to recognise an inserted record after the fact). */
  private beforePrev: string | undefined;
  private previous: ChainRecord | undefined;
  /** The hash a record without `h` would have had: the next record may chain from it. */
  private alt: string | undefined;
  private anchorSnapshot: string | undefined;
  private pending: Pending | undefined;
  private readonly missing = new Map<number, { problem: VerifyProblem; place: Place }>();
  /** Hashes of records found moved ahead of their place, by seq: the record after their place chains from them. */
  private readonly moved = new Map<number, string>();
  private previousVerified = false;
  private unchainedRun: { problem: VerifyProblem; first: ChainRecord; count: number; last: ChainRecord } | undefined;
  /** The last record seen: the chain head. */
  last: ChainRecord | undefined;

  constructor(private readonly report: ProblemSink) {}

  /** True once a start point is known (segment 1, or a snapshot header). */
  get anchored(): boolean {
    return this.prev !== undefined;
  }

  /**
   * Sets where the chain continues from: the start of the history
   * (CHAIN_START, seq 0), a snapshot header, or nothing known (undefined:
   * the next record is taken on trust).
   */
  anchor(prev: string | undefined, prevSeq: number | undefined, snapshotFile?: string): void {
    this.resolvePending(undefined);
    this.prev = prev;
    this.prevSeq = prevSeq;
    this.beforePrev = undefined;
    this.previous = undefined;
    this.alt = undefined;
    this.anchorSnapshot = prev === undefined ? undefined : snapshotFile;
    this.unchainedRun = undefined;
  }

  push(rec: ChainRecord): void {
    this.resolvePending(rec);
    const expectedSeq = this.prevSeq === undefined ? undefined : this.prevSeq + 1;
    const prev = this.prev;
    const snapshot = this.anchorSnapshot;
    this.anchorSnapshot = undefined;
    if (rec.h === undefined) {
      this.unchained(rec, expectedSeq);
    } else if (prev === undefined) {
      this.advance(rec, prev);
    } else if (chainHashOf(prev, rec.raw) === rec.h || (this.alt !== undefined && chainHashOf(this.alt, rec.raw) === rec.h)) {
      // Intact (or the record before lost its `h`, which was reported there).
      if (expectedSeq !== undefined && rec.seq !== expectedSeq) {
        this.report(problemAt(VerifyCodes.SEQUENCE_GAP, rec.place, `seq ${rec.seq} follows seq ${this.prevSeq} although the hash chain is intact (writers under a lost lock)`), rec.ordinal);
      }
      this.advance(rec, prev);
    } else if (this.previous && this.previous.seq === rec.seq && this.previous.h === rec.h && this.previousVerified) {
      // The same record again: a duplicated line. The chain goes on from the first copy.
      this.report(problemAt(VerifyCodes.RECORD_INSERTED, rec.place, `seq ${rec.seq} is a duplicate of ${at(this.previous.place)}: the chain skips over it`), rec.ordinal);
      return;
    } else if (this.movedHere(rec, expectedSeq)) {
      // The record moved away from here was already reported; this one chains from it, as it should.
      this.prevSeq = rec.seq - 1;
      this.advance(rec, prev);
    } else if (this.previousVerified && this.previous && this.beforePrev !== undefined && this.previous.h !== undefined && chainHashOf(this.beforePrev, rec.raw) === rec.h) {
      // This record chains from the one before the previous: the previous one was inserted.
      const inserted = this.previous;
      this.report(
        problemAt(VerifyCodes.RECORD_INSERTED, inserted.place, `seq ${inserted.seq} was inserted: the next record (${at(rec.place)}) chains from the record before it, not from it`),
        inserted.ordinal,
      );
      this.prevSeq = rec.seq - 1;
      this.advance(rec, this.beforePrev);
    } else {
      this.pending = { rec, prev, prevSeq: this.prevSeq ?? rec.seq - 1, snapshot };
      this.advance(rec, prev);
      this.previousVerified = false;
    }
    this.last = rec;
  }

  /** No more records. */
  end(): void {
    this.resolvePending(undefined);
  }

  /** True when `rec` chains from a record that was moved away from just before it (and is expected here by seq). */
  private movedHere(rec: ChainRecord, expectedSeq: number | undefined): boolean {
    if (expectedSeq === undefined || rec.seq !== expectedSeq + 1) return false;
    const m = this.moved.get(expectedSeq);
    if (!m || chainHashOf(m, rec.raw) !== rec.h) return false;
    this.moved.delete(expectedSeq);
    return true;
  }

  private advance(rec: ChainRecord, chainedFrom: string | undefined): void {
    this.previousVerified = true;
    this.beforePrev = chainedFrom;
    this.previous = rec;
    this.prev = rec.h ?? CHAIN_START;
    this.prevSeq = this.prevSeq === undefined ? rec.seq : Math.max(this.prevSeq, rec.seq);
    if (rec.h !== undefined) {
      this.alt = undefined;
      this.unchainedRun = undefined;
    }
  }

  private unchained(rec: ChainRecord, expectedSeq: number | undefined): void {
    const run = this.unchainedRun;
    if (run && run.last.ordinal === rec.ordinal - 1 && run.first.place.file === rec.place.file) {
      run.count++;
      run.last = rec;
      run.problem.message = `${run.count} consecutive records have no hash (lines ${run.first.place.line}-${rec.place.line}, seq ${run.first.seq}-${rec.seq}): unchained (written with hashChain: false, or their "h" was removed)`;
    } else {
      const malformed = 'h' in rec.raw ? ' (its "h" is malformed)' : '';
      const problem = problemAt(VerifyCodes.HASH_MISSING, rec.place, `seq ${rec.seq} has no hash${malformed}: unchained (written with hashChain: false, or its "h" was removed)`);
      this.report(problem, rec.ordinal);
      this.unchainedRun = { problem, first: rec, count: 1, last: rec };
    }
    if (expectedSeq !== undefined && rec.seq !== expectedSeq) {
      const code = rec.seq > expectedSeq ? VerifyCodes.RECORD_MISSING : VerifyCodes.RECORD_OUT_OF_ORDER;
      this.report(problemAt(code, rec.place, `seq ${rec.seq} follows seq ${this.prevSeq}`), rec.ordinal);
    }
    // If only the hash was removed, the next record still chains from the hash this one had.
    const prev = this.prev;
    this.alt = prev === undefined ? undefined : chainHashOf(prev, rec.raw);
    const alt = this.alt;
    this.advance(rec, prev);
    this.alt = alt;
  }

  /** Explains the break at `pending.rec` now that the record after it (if any) is known. */
  private resolvePending(next: ChainRecord | undefined): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    const { rec } = p;
    const expected = p.prevSeq + 1;
    const nextFromStored = next?.h !== undefined && rec.h !== undefined && chainHashOf(rec.h, next.raw) === next.h;
    const nextFromPrev = next?.h !== undefined && chainHashOf(p.prev, next.raw) === next.h;
    const report = (code: string, message: string, place = rec.place) => this.report(problemAt(code, place, message), rec.ordinal);
    if (p.snapshot !== undefined) {
      // With the history before the snapshot gone, its header is the only link: a changed header and an edited first record look alike.
      const orEdited = nextFromStored ? ` (or that record was edited: the record after it chains from it)` : '';
      this.report(
        {
          code: VerifyCodes.SNAPSHOT_HEADER_MISMATCH,
          file: p.snapshot,
          line: 1,
          offset: 0,
          message: `the snapshot's head (seq ${p.prevSeq}, h ${shortHash(p.prev)}) is not what the first record after it (${at(rec.place)}, seq ${rec.seq}) chains from${orEdited}`,
        },
        rec.ordinal,
      );
      return;
    }
    if (rec.seq > expected && next !== undefined && next.seq === expected && nextFromPrev && rec.h !== undefined) {
      report(VerifyCodes.RECORD_MOVED, `seq ${rec.seq} is out of place: it was moved before seq ${next.seq} (${at(next.place)}), which the chain expects first`);
      this.moved.set(rec.seq, rec.h);
      this.skip(p);
    } else if (rec.seq > expected) {
      const range = rec.seq - 1 === expected ? `seq ${expected} is` : `seq ${expected}-${rec.seq - 1} are`;
      const problem = problemAt(VerifyCodes.RECORD_MISSING, rec.place, `${range} missing before seq ${rec.seq}: deleted (or moved elsewhere); the hash chain breaks here`);
      this.report(problem, rec.ordinal, rec.h === undefined ? undefined : { afterSeq: p.prevSeq, afterHash: p.prev, seq: rec.seq, h: rec.h });
      for (let s = expected; s < rec.seq && s < expected + 1000; s++) this.missing.set(s, { problem, place: rec.place });
    } else if (rec.seq < expected) {
      const gap = this.missing.get(rec.seq);
      if (gap) {
        this.missing.delete(rec.seq);
        gap.problem.code = VerifyCodes.RECORD_MOVED;
        gap.problem.message = `seq ${rec.seq} belongs before seq ${rec.seq + 1} here but was moved to ${at(rec.place)}; the hash chain breaks here`;
        report(VerifyCodes.RECORD_MOVED, `seq ${rec.seq} is out of place: it belongs before ${at(gap.place)} (moved here)`);
        this.skip(p);
      } else if (nextFromPrev) {
        report(VerifyCodes.RECORD_INSERTED, `seq ${rec.seq} after seq ${p.prevSeq} was inserted or duplicated: the chain skips over it`);
        this.skip(p);
      } else {
        report(VerifyCodes.RECORD_OUT_OF_ORDER, `seq ${rec.seq} follows seq ${p.prevSeq} and does not chain from it (moved, or inserted)`);
      }
    } else if (nextFromStored) {
      report(VerifyCodes.RECORD_EDITED, `seq ${rec.seq} was edited: its hash does not match its content (the next record still chains from its hash)`);
    } else if (nextFromPrev) {
      report(VerifyCodes.RECORD_INSERTED, `seq ${rec.seq} was inserted: the next record chains from the record before it`);
      this.skip(p);
    } else {
      const why = next ? 'a record before it was changed and rehashed, or records were replaced' : 'the last record: edited, or replaced';
      report(VerifyCodes.HASH_MISMATCH, `seq ${rec.seq} does not chain from the record before it (h ${shortHash(rec.h)}): ${why}`);
    }
  }

  /** The chain goes on as if the inserted record were not there. */
  private skip(p: Pending): void {
    this.prev = p.prev;
    this.prevSeq = p.prevSeq;
    this.previous = undefined;
    this.beforePrev = undefined;
  }
}
