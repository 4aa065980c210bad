import { stableStringify } from '../engine/canonical-json.js';
import { CHAIN_START, REPAIR_EVENT, ROTATE_EVENT, isChainHash, rotationTarget, type JournalRecord } from '../engine/record-codec.js';
import { WarningCodes, type JournalWarning } from '../engine/warnings.js';
import { SessionEventTypes } from '../sessions/session-events.js';
import { SessionFold } from '../sessions/session-fold.js';
import type { HistoryItem, HistoryLine, HistorySegment } from '../storage/file/history-reader.js';
import { ChainChecker, VerifyCodes, type ChainRecord, type Place } from './verify-chain.js';
import type { Findings, RecordedGap } from './verify-findings.js';
import type { ReadableSnapshot } from './verify-snapshots.js';

export interface RotationMarker {
  seq: number;
  h: string | undefined;
  w: string;
  next: number;
  place: Place;
}

interface SegmentState {
  segment: HistorySegment;
  file: string;
  /** Reached by the chain of rotation markers (readers apply it). */
  reached: boolean;
  /** Records in a segment readers never reach. */
  unreachedRecords: number;
  rotate?: RotationMarker;
  afterRotation: number;
}

const RETENTION_REASONS = new Set(['expired', 'evicted']);
/** Effectively no retention: verify folds the history, it does not expire anything. */
const NEVER = Number.MAX_SAFE_INTEGER;

/**
 * One pass over the history, archive and live segments, as readers apply
 * it: from segment to segment along the rotation markers, through the hash
 * chain, folding the sessions on the way so that each snapshot can then be
 * compared with the state the history had where it was written.
 */
export class HistoryWalk {
  firstAvailableSeq: number | undefined;
  /** The first record with the seq `--expect-head` asks about. */
  wanted: { h: string; ordinal: number } | undefined;
  readonly reachedSegments = new Set<number>();
  /** The rotation marker that closes each segment, by segment number. */
  readonly markers = new Map<number, RotationMarker>();
  /** Fold state captured at the start of segment N (everything below N applied), per snapshot number. */
  readonly checkpoints = new Map<number, Map<string, string>>();
  /** Sessions deleted by retention in each segment, and by which writer. */
  readonly retention = new Map<number, Array<{ id: string; w: string }>>();
  /** Record types that are neither session records nor engine records. */
  readonly otherTypes = new Set<string>();
  /** Gaps named by `journal.repair` records, to explain chain breaks once the whole history is read. */
  readonly repairGaps: RecordedGap[] = [];
  private readonly checker: ChainChecker;
  private readonly fold = new SessionFold(NEVER, NEVER);
  /** A checkpoint needs the whole history before it, not just what is left of it. */
  private foldValid = false;
  /** Records read so far (rotation markers included); a problem found at a record carries it as its place in history. */
  private ordinal = 0;
  private current: SegmentState | undefined;
  private lastReached: SegmentState | undefined;

  constructor(
    private readonly snapshots: readonly ReadableSnapshot[],
    private readonly findings: Findings,
    private readonly wantedSeq: number | undefined,
  ) {
    this.checker = new ChainChecker((problem, ordinal, at) => findings.add(problem, ordinal, at));
  }

  /** Records in the chain (rotation markers included). */
  get records(): number {
    return this.ordinal;
  }

  /** The chain's head. */
  get last(): ChainRecord | undefined {
    return this.checker.last;
  }

  startSegment(segment: HistorySegment): void {
    this.finishSegment();
    const file = this.findings.relative(segment.file);
    const reached = this.reaches(segment, file);
    this.current = { segment, file, reached, unreachedRecords: 0, afterRotation: 0 };
    if (reached) {
      this.reachedSegments.add(segment.number);
      this.captureUpTo(segment.number);
      this.lastReached = this.current;
    }
  }

  /** An unreadable line, placed after the records read so far. */
  problem(warning: JournalWarning): void {
    this.findings.warning(warning, this.ordinal);
  }

  /** False for a record readers never apply, which the chain does not count. */
  record(item: Extract<HistoryItem, { kind: 'record' }>): boolean {
    const seg = this.current!;
    const { record } = item;
    const place: Place = { file: seg.file, line: item.place.line, offset: item.place.offset };
    // A record spread over several lines: each line is a link of the chain.
    if (!this.chainLines(item.lines ?? [item], seg)) return false;
    if (record.type === ROTATE_EVENT) this.rotation(record, seg, place);
    else if (record.type === REPAIR_EVENT) this.repairRecord(record, place);
    else if (record.type.startsWith('session.')) this.sessionRecord(record, seg, place);
    else this.otherTypes.add(record.type);
    return true;
  }

  /** Lines readers pass over without applying them (parts that do not join): still links of the chain. */
  passOver(lines: readonly HistoryLine[]): void {
    this.chainLines(lines, this.current!);
  }

  /** Pushes each line through the hash chain; false when readers never get to them. */
  private chainLines(lines: readonly HistoryLine[], seg: SegmentState): boolean {
    if (!seg.reached) {
      seg.unreachedRecords += lines.length;
      return false;
    }
    if (seg.rotate) {
      const { record, place } = lines[0]!;
      if (seg.afterRotation === 0) {
        this.findings.add({ code: VerifyCodes.RECORD_AFTER_ROTATION, file: seg.file, line: place.line, offset: place.offset, message: `seq ${record.seq} comes after this segment's rotation marker (line ${seg.rotate.place.line}): readers never apply it` }, this.ordinal);
      }
      seg.afterRotation += lines.length;
      return false;
    }
    for (const { record, raw, place } of lines) {
      this.ordinal++;
      this.firstAvailableSeq ??= record.seq;
      this.checker.push({ seq: record.seq, h: record.hash, raw, place: { file: seg.file, line: place.line, offset: place.offset }, ordinal: this.ordinal });
      if (record.seq === this.wantedSeq && !this.wanted) this.wanted = { h: record.hash ?? CHAIN_START, ordinal: this.ordinal };
    }
    return true;
  }

  end(): void {
    this.finishSegment();
    this.checker.end();
    this.captureUpTo(Number.MAX_SAFE_INTEGER);
  }

  /** Where readers cannot get to a segment through its predecessor's marker, the chain restarts there. */
  private reaches(segment: HistorySegment, file: string): boolean {
    const last = this.lastReached;
    if (!last) {
      this.foldValid = segment.number === 1;
      this.anchorAt(segment, file);
      return true;
    }
    const m = last.rotate;
    if (!m || segment.number < m.next) return false;
    if (segment.number > m.next) {
      this.findings.add({ code: VerifyCodes.ROTATION_TARGET_MISSING, file: m.place.file, line: m.place.line, offset: m.place.offset, message: `the rotation marker names segment ${m.next}, which is neither in the store nor in archive/` }, this.ordinal);
      this.foldValid = false;
      this.anchorAt(segment, file);
    }
    return true;
  }

  private anchorAt(segment: HistorySegment, file: string): void {
    if (segment.number === 1) {
      this.checker.anchor(CHAIN_START, 0);
      return;
    }
    const snap = this.snapshotFor(segment.number);
    if (snap) {
      this.checker.anchor(snap.header.h ?? CHAIN_START, snap.header.seq, snap.file);
      this.findings.notes.push({ code: 'CHAIN_FROM_SNAPSHOT', file: snap.file, line: 1, message: `the history before segment ${segment.number} is not available (archive pruned, or compacted with --no-archive): the chain is checked from this snapshot's head (seq ${snap.header.seq}) on` });
    } else {
      this.checker.anchor(undefined, undefined);
      this.findings.notes.push({ code: 'CHAIN_UNANCHORED', file, line: null, message: `the history before segment ${segment.number} is not available and no snapshot anchors it: the chain cannot be checked before this segment's first record` });
    }
  }

  private snapshotFor(segment: number): ReadableSnapshot | undefined {
    return this.snapshots.find((s) => s.number === segment && !s.archived) ?? this.snapshots.find((s) => s.number === segment);
  }

  private finishSegment(): void {
    const s = this.current;
    if (!s || s.reached || s.unreachedRecords === 0) return;
    const last = this.lastReached;
    const why = last?.rotate ? `the rotation marker in ${last.file} leads to segment ${last.rotate.next}` : `${last?.file ?? 'the segment before it'} does not end in a rotation marker`;
    this.findings.add({ code: VerifyCodes.ORPHAN_SEGMENT, file: s.file, line: null, offset: null, message: `no rotation marker leads to this segment (${why}): readers never apply its ${s.unreachedRecords} records` });
  }

  private captureUpTo(n: number): void {
    for (const s of this.snapshots) {
      if (s.number <= n && !this.checkpoints.has(s.number) && this.foldValid) {
        this.checkpoints.set(s.number, new Map([...this.fold.sessions].map(([id, session]) => [id, stableStringify(session)])));
      }
    }
  }

  private rotation(record: JournalRecord, seg: SegmentState, place: Place): void {
    const next = rotationTarget(record, seg.segment.number);
    if (next !== undefined) {
      seg.rotate = { seq: record.seq, h: record.hash, w: record.writer, next, place };
      this.markers.set(seg.segment.number, seg.rotate);
    } else {
      this.findings.add({ code: WarningCodes.INVALID_PAYLOAD, ...place, message: 'rotation marker without a valid next segment' }, this.ordinal);
    }
  }

  private repairRecord(record: JournalRecord, place: Place): void {
    const gaps = (record.payload as { gaps?: unknown } | null)?.gaps;
    const valid = Array.isArray(gaps) ? gaps.filter(isRecordedGap) : [];
    if (!Array.isArray(gaps) || valid.length !== gaps.length) {
      this.findings.add({ code: WarningCodes.INVALID_PAYLOAD, ...place, message: 'journal.repair record without a valid list of gaps' }, this.ordinal);
    }
    for (const g of valid) this.repairGaps.push({ ...g, recordedAt: { file: place.file, line: place.line } });
  }

  private sessionRecord(record: JournalRecord, seg: SegmentState, place: Place): void {
    const rejection = this.fold.apply(record);
    if (rejection) this.findings.add({ code: rejection.code, ...place, message: rejection.message }, this.ordinal);
    const p = record.payload as { id?: unknown; reason?: unknown } | null;
    if (record.type === SessionEventTypes.delete && typeof p?.id === 'string' && RETENTION_REASONS.has(String(p.reason))) {
      const list = this.retention.get(seg.segment.number) ?? [];
      list.push({ id: p.id, w: record.writer });
      this.retention.set(seg.segment.number, list);
    }
  }
}

const isSeqHash = (v: unknown): v is { seq: number; h: string } => {
  const o = v as { seq?: unknown; h?: unknown } | null;
  return typeof o === 'object' && o !== null && Number.isSafeInteger(o.seq) && isChainHash(o.h);
};

function isRecordedGap(v: unknown): v is Omit<RecordedGap, 'recordedAt'> {
  const g = v as Partial<Record<keyof RecordedGap, unknown>> | null;
  if (typeof g !== 'object' || g === null || typeof g.file !== 'string' || typeof g.quarantine !== 'string') return false;
  const m = g.missing as unknown[];
  return (g.after === null || isSeqHash(g.after)) && isSeqHash(g.resume) && Array.isArray(m) && m.length === 2 && Number.isSafeInteger(m[0]) && Number.isSafeInteger(m[1]);
}
