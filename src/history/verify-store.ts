import fs from 'node:fs';
import path from 'node:path';
import stableStringify from 'fast-json-stable-stringify';
import { ErrorCodes, SessionJournalError } from '../errors.js';
import { DEFAULT_MAX_LINE_BYTES, Journal } from '../journal/journal.js';
import { CHAIN_START, ROTATE_EVENT } from '../journal/record-codec.js';
import { prepareStoreDir } from '../journal/store-files.js';
import { WarningCodes, type JournalWarning } from '../journal/warnings.js';
import { SessionEventTypes } from '../sessions/session-events.js';
import { SessionFold } from '../sessions/session-fold.js';
import { listHistorySegments, readHistory, type HistorySegment } from './history-reader.js';
import { ChainChecker, VerifyCodes, type Place, type VerifyProblem } from './verify-chain.js';
import { readAllSnapshots, type SnapshotInfo } from './verify-snapshots.js';

export { VerifyCodes, type VerifyProblem } from './verify-chain.js';

/** Something verify could not check, which is not a problem (history pruned from the archive, records of another reducer). */
export interface VerifyNote {
  code: string;
  file: string | null;
  line: number | null;
  message: string;
}

export interface ChainHead {
  seq: number;
  /** The last record's hash; empty when it has none (or the store is empty). */
  h: string;
}

export interface ExpectedHeadResult {
  seq: number;
  h: string;
  /** The record (or a snapshot header) with that seq was found. */
  found: boolean;
  /** ...and has that hash. */
  matches: boolean;
  /** No problem at or before that record, and the chain is anchored at its start. */
  chainIntact: boolean;
}

export interface VerifyReport {
  ok: boolean;
  problems: VerifyProblem[];
  notes: VerifyNote[];
  /** Records read in the chain (rotation markers included). */
  records: number;
  /** Segments read, live and archived. */
  segments: number;
  archivedSegments: number;
  snapshots: number;
  head: ChainHead;
  expectedHead?: ExpectedHeadResult;
}

export interface VerifyOptions {
  maxLineBytes?: number;
  /** Prove that the record with this seq still has this hash, and that the chain up to it is intact. */
  expectHead?: { seq: number; h: string };
  /** Called now and then with bytes done and total (compressed bytes for archived segments). */
  onProgress?: (done: number, total: number) => void;
}

interface SegmentState {
  segment: HistorySegment;
  file: string;
  /** Reached by the chain of rotation markers (readers apply it). */
  reached: boolean;
  /** Records in a segment readers never reach. */
  unreachedRecords: number;
  rotate?: { seq: number; h: string | undefined; w: string; next: number; place: Place };
  afterRotation: number;
}

const RETENTION_REASONS = new Set(['expired', 'evicted']);
/** Effectively no retention: verify folds the history, it does not expire anything. */
const NEVER = Number.MAX_SAFE_INTEGER;

function missingStore(dir: string): SessionJournalError {
  return new SessionJournalError(ErrorCodes.STORE_NOT_FOUND, `no store at ${dir}`, { details: { dir } });
}

/**
 * Verifies a store, read-only and without any lock: every line of every
 * segment (archived and live), the hash chain across them, rotation
 * markers, and every snapshot against the segments.
 */
export async function verifyStore(dir: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  if (!prepareStoreDir(dir, false)) throw missingStore(dir);
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const rel = (file: string | undefined): string | null => (file === undefined ? null : path.relative(dir, file) || file);
  const problems: Array<{ problem: VerifyProblem; ordinal: number }> = [];
  const notes: VerifyNote[] = [];
  const addProblem = (problem: VerifyProblem, ordinal = Number.MAX_SAFE_INTEGER) => problems.push({ problem, ordinal });
  const fromWarning = (w: JournalWarning, ordinal?: number) =>
    addProblem({ code: w.code, file: rel(w.file), line: w.line ?? null, offset: w.offset ?? null, message: w.message }, ordinal);

  // Snapshots first: they anchor the chain where the history before them is gone.
  const snapshots = readAllSnapshots(dir, maxLineBytes, (w) => fromWarning(w));
  for (const s of snapshots) {
    if (!s.header) {
      addProblem({ code: WarningCodes.SNAPSHOT_UNREADABLE, file: s.file, line: null, offset: null, message: `${s.reason}; readers fall back to an older base` });
    } else if (s.header.segment !== s.number) {
      addProblem({ code: VerifyCodes.SNAPSHOT_HEADER_MISMATCH, file: s.file, line: 1, offset: 0, message: `named for segment ${s.number}, but its header says segment ${s.header.segment}` });
    }
  }
  const readable = snapshots.filter((s): s is SnapshotInfo & Required<Pick<SnapshotInfo, 'header' | 'entries'>> => s.header !== undefined && s.header.segment === s.number);
  const snapshotFor = (segment: number) => readable.find((s) => s.number === segment && !s.archived) ?? readable.find((s) => s.number === segment);

  const segments = listHistorySegments(dir);
  const sizes = segments.map((s) => {
    try {
      return fs.statSync(s.file).size;
    } catch {
      return 0;
    }
  });
  const totalBytes = sizes.reduce((a, b) => a + b, 0);
  let doneBytes = 0;

  const checker = new ChainChecker((problem, ordinal) => addProblem(problem, ordinal));
  const fold = new SessionFold(NEVER, NEVER);
  let foldValid = false;
  /** Fold state captured at the start of segment N (everything below N applied), per snapshot number. */
  const checkpoints = new Map<number, Map<string, string>>();
  const retention = new Map<number, Array<{ id: string; w: string }>>();
  const markers = new Map<number, NonNullable<SegmentState['rotate']>>();
  const reachedSegments = new Set<number>();
  const otherTypes = new Set<string>();
  let firstAvailableSeq: number | undefined;
  let records = 0;
  let ordinal = 0;
  let current: SegmentState | undefined;
  let lastReached: SegmentState | undefined;
  const expect = options.expectHead;
  let expectFound: { h: string; ordinal: number } | undefined;

  const captureUpTo = (n: number) => {
    for (const s of readable) {
      if (s.number <= n && !checkpoints.has(s.number) && foldValid) {
        checkpoints.set(s.number, new Map([...fold.sessions].map(([id, session]) => [id, stableStringify(session)])));
      }
    }
  };

  const anchorAt = (segment: HistorySegment, file: string) => {
    if (segment.number === 1) {
      checker.anchor(CHAIN_START, 0);
      return;
    }
    const snap = snapshotFor(segment.number);
    if (snap) {
      checker.anchor(snap.header.h ?? CHAIN_START, snap.header.seq, snap.file);
      notes.push({ code: 'CHAIN_FROM_SNAPSHOT', file: snap.file, line: 1, message: `the history before segment ${segment.number} is not available (archive pruned, or compacted with --no-archive): the chain is checked from this snapshot's head (seq ${snap.header.seq}) on` });
    } else {
      checker.anchor(undefined, undefined);
      notes.push({ code: 'CHAIN_UNANCHORED', file, line: null, message: `the history before segment ${segment.number} is not available and no snapshot anchors it: the chain cannot be checked before this segment's first record` });
    }
  };

  const finishSegment = (s: SegmentState | undefined) => {
    if (!s) return;
    if (!s.reached && s.unreachedRecords > 0) {
      const why = lastReached?.rotate ? `the rotation marker in ${lastReached.file} leads to segment ${lastReached.rotate.next}` : `${lastReached?.file ?? 'the segment before it'} does not end in a rotation marker`;
      addProblem({ code: VerifyCodes.ORPHAN_SEGMENT, file: s.file, line: null, offset: null, message: `no rotation marker leads to this segment (${why}): readers never apply its ${s.unreachedRecords} records` });
    }
  };

  const startSegment = (segment: HistorySegment) => {
    finishSegment(current);
    const file = rel(segment.file)!;
    let reached = false;
    if (!lastReached) {
      reached = true;
      foldValid = segment.number === 1;
      anchorAt(segment, file);
    } else if (lastReached.rotate) {
      const next = lastReached.rotate.next;
      if (segment.number === next) reached = true;
      else if (segment.number > next) {
        const m = lastReached.rotate;
        addProblem({ code: VerifyCodes.ROTATION_TARGET_MISSING, file: m.place.file, line: m.place.line, offset: m.place.offset, message: `the rotation marker names segment ${next}, which is neither in the store nor in archive/` }, ordinal);
        reached = true;
        foldValid = false;
        anchorAt(segment, file);
      }
    }
    current = { segment, file, reached, unreachedRecords: 0, afterRotation: 0 };
    if (reached) {
      reachedSegments.add(segment.number);
      captureUpTo(segment.number);
      lastReached = current;
    }
  };

  const history = readHistory(dir, { maxLineBytes, segments });
  let segIndex = -1;
  for await (const item of history) {
    if (item.kind === 'segment') {
      if (segIndex >= 0) doneBytes += sizes[segIndex] ?? 0;
      segIndex++;
      startSegment(item.segment);
      options.onProgress?.(doneBytes, totalBytes);
      continue;
    }
    if (item.kind === 'problem') {
      fromWarning(item.warning, ordinal);
      continue;
    }
    const seg = current!;
    const { record, raw } = item;
    const place: Place = { file: seg.file, line: item.place.line, offset: item.place.offset };
    if (!seg.reached) {
      seg.unreachedRecords++;
      continue;
    }
    if (seg.rotate) {
      if (seg.afterRotation++ === 0) {
        addProblem({ code: VerifyCodes.RECORD_AFTER_ROTATION, ...place, message: `seq ${record.seq} comes after this segment's rotation marker (line ${seg.rotate.place.line}): readers never apply it` }, ordinal);
      }
      continue;
    }
    records++;
    ordinal++;
    firstAvailableSeq ??= record.seq;
    checker.push({ seq: record.seq, h: record.hash, raw, place, ordinal });
    if (expect && record.seq === expect.seq && !expectFound) expectFound = { h: record.hash ?? CHAIN_START, ordinal };
    if (record.type === ROTATE_EVENT) {
      const next = (record.payload as { next?: unknown } | null)?.next;
      if (typeof next === 'number' && Number.isSafeInteger(next) && next > seg.segment.number) {
        seg.rotate = { seq: record.seq, h: record.hash, w: record.writer, next, place };
        markers.set(seg.segment.number, seg.rotate);
      } else {
        addProblem({ code: WarningCodes.INVALID_PAYLOAD, ...place, message: 'rotation marker without a valid next segment' }, ordinal);
      }
    } else if (record.type.startsWith('session.')) {
      const rejection = fold.apply(record);
      if (rejection) addProblem({ code: rejection.code, ...place, message: rejection.message }, ordinal);
      const p = record.payload as { id?: unknown; reason?: unknown } | null;
      if (record.type === SessionEventTypes.delete && typeof p?.id === 'string' && RETENTION_REASONS.has(String(p.reason))) {
        const list = retention.get(seg.segment.number) ?? [];
        list.push({ id: p.id, w: record.writer });
        retention.set(seg.segment.number, list);
      }
    } else {
      otherTypes.add(record.type);
    }
    if (records % 4096 === 0) options.onProgress?.(doneBytes + (seg.segment.archived ? 0 : item.place.offset), totalBytes);
  }
  finishSegment(current);
  checker.end();
  captureUpTo(Number.MAX_SAFE_INTEGER);
  options.onProgress?.(totalBytes, totalBytes);

  // ---- snapshots against the segments -------------------------------------
  const sessionStore = otherTypes.size === 0;
  if (!sessionStore) {
    notes.push({ code: 'NOT_SESSION_RECORDS', file: null, line: null, message: `records of types ${[...otherTypes].sort().join(', ')} are not session records: the chain is checked, snapshot contents are not compared` });
  }
  for (const snap of readable) {
    const { header } = snap;
    const closed = header.segment - 1;
    if (reachedSegments.has(closed)) {
      const marker = markers.get(closed);
      if (!marker || marker.next !== header.segment) {
        addProblem({ code: VerifyCodes.SNAPSHOT_HEADER_MISMATCH, file: snap.file, line: 1, offset: 0, message: `it folds segment ${closed}, but that segment does not end in a rotation marker to segment ${header.segment}` });
      } else if (marker.seq !== header.seq || (marker.h ?? CHAIN_START) !== (header.h ?? CHAIN_START)) {
        addProblem({
          code: VerifyCodes.SNAPSHOT_HEADER_MISMATCH,
          file: snap.file,
          line: 1,
          offset: 0,
          message: `the header says seq ${header.seq} h ${shortHash(header.h)}, but the rotation marker that closed segment ${closed} (${marker.place.file}:${marker.place.line}) has seq ${marker.seq} h ${shortHash(marker.h)}`,
        });
      }
    }
    if (!sessionStore) continue;
    const expected = checkpoints.get(snap.number);
    if (!expected) {
      if (header.segment > 1) notes.push({ code: 'STATE_NOT_COMPARED', file: snap.file, line: null, message: `the history before segment ${header.segment} is not complete, so the sessions in this snapshot are not compared with it` });
      continue;
    }
    const marker = markers.get(closed);
    const retained = new Set((retention.get(header.segment) ?? []).filter((d) => !marker || d.w === marker.w).map((d) => d.id));
    compareState(snap, expected, retained, addProblem);
  }

  // ---- the expected head --------------------------------------------------
  const ordered = problems.sort((a, b) => a.ordinal - b.ordinal || (a.problem.file === b.problem.file ? (a.problem.line ?? 0) - (b.problem.line ?? 0) : 0)).map((p) => p.problem);
  let expectedHead: ExpectedHeadResult | undefined;
  const last = checker.last;
  const head: ChainHead = last ? { seq: last.seq, h: last.h ?? CHAIN_START } : headFromSnapshots(readable);
  if (expect) {
    const anchoredAtStart = firstAvailableSeq === 1 || notes.every((n) => n.code !== 'CHAIN_UNANCHORED');
    let found = false;
    let matches = false;
    let chainIntact = false;
    if (expectFound) {
      found = true;
      matches = expectFound.h === expect.h;
      chainIntact = anchoredAtStart && problems.every((p) => p.ordinal > expectFound!.ordinal);
    } else {
      const snap = readable.find((s) => s.header.seq === expect.seq);
      if (snap) {
        found = true;
        matches = (snap.header.h ?? CHAIN_START) === expect.h;
        chainIntact = anchoredAtStart;
      }
    }
    if (!found) {
      const code = expect.seq > head.seq ? VerifyCodes.EXPECTED_HEAD_NOT_FOUND : VerifyCodes.EXPECTED_HEAD_UNAVAILABLE;
      const message =
        code === VerifyCodes.EXPECTED_HEAD_NOT_FOUND
          ? `the store ends at seq ${head.seq}, before the expected head seq ${expect.seq}: records were removed from the end, or this is another store`
          : `seq ${expect.seq} is no longer in the store or its archive (pruned): it cannot be checked`;
      ordered.push({ code, file: null, line: null, offset: null, message });
    } else if (!matches) {
      ordered.push({ code: VerifyCodes.EXPECTED_HEAD_MISMATCH, file: null, line: null, offset: null, message: `seq ${expect.seq} has another hash than the one recorded (${shortHash(expect.h)}): the history up to it was changed (and possibly rehashed)` });
    }
    if (found && !anchoredAtStart) {
      notes.push({ code: 'EXPECTED_HEAD_PARTIAL', file: null, line: null, message: 'the history before the first available record is gone: the expected head proves nothing about records before it' });
    }
    expectedHead = { seq: expect.seq, h: expect.h, found, matches, chainIntact };
  }

  return {
    ok: ordered.length === 0,
    problems: ordered,
    notes,
    records,
    segments: segments.length,
    archivedSegments: segments.filter((s) => s.archived).length,
    snapshots: snapshots.length,
    head,
    ...(expectedHead && { expectedHead }),
  };
}

function headFromSnapshots(snapshots: ReadonlyArray<{ header: { seq: number; h?: string } }>): ChainHead {
  const newest = snapshots[snapshots.length - 1];
  return newest ? { seq: newest.header.seq, h: newest.header.h ?? CHAIN_START } : { seq: 0, h: CHAIN_START };
}

function shortHash(h: string | undefined): string {
  return h ? `${h.slice(0, 12)}…` : '(none)';
}

/** The snapshot's sessions must be exactly the folded history's, but for sessions retention removed when it was written. */
function compareState(snap: SnapshotInfo & { entries: NonNullable<SnapshotInfo['entries']> }, expected: Map<string, string>, retained: Set<string>, addProblem: (p: VerifyProblem) => void): void {
  const seen = new Set<string>();
  for (const entry of snap.entries) {
    const id = (entry.value as { id?: unknown } | null)?.id;
    const where = { file: snap.file, line: entry.line, offset: entry.offset };
    if (typeof id !== 'string') {
      addProblem({ code: VerifyCodes.SNAPSHOT_STATE_MISMATCH, ...where, message: 'an entry without a session id' });
      continue;
    }
    seen.add(id);
    const want = expected.get(id);
    if (want === undefined) {
      addProblem({ code: VerifyCodes.SNAPSHOT_STATE_MISMATCH, ...where, message: `session ${JSON.stringify(id)} is in the snapshot but not in the history it folds` });
      continue;
    }
    const got = stableStringify(entry.value);
    if (got !== want) {
      addProblem({ code: VerifyCodes.SNAPSHOT_STATE_MISMATCH, ...where, message: `session ${JSON.stringify(id)} differs from the history it folds (${differingFields(JSON.parse(want), entry.value)})` });
    }
  }
  for (const id of expected.keys()) {
    if (!seen.has(id) && !retained.has(id)) {
      addProblem({ code: VerifyCodes.SNAPSHOT_STATE_MISMATCH, file: snap.file, line: null, offset: null, message: `session ${JSON.stringify(id)} is missing from the snapshot, and no retention record removed it` });
    }
  }
}

function differingFields(want: unknown, got: unknown): string {
  const a = (want ?? {}) as Record<string, unknown>;
  const b = (got ?? {}) as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort().filter((k) => stableStringify(a[k]) !== stableStringify(b[k]));
  return `field${keys.length === 1 ? '' : 's'} ${keys.join(', ')}`;
}

/**
 * The chain head as writers see it (newest snapshot, then the live
 * segments): the seq and hash the next record will chain from. Read-only,
 * no lock.
 */
export function readChainHead(dir: string, maxLineBytes = DEFAULT_MAX_LINE_BYTES): ChainHead {
  if (!prepareStoreDir(dir, false)) throw missingStore(dir);
  const journal = Journal.openSync({
    dir,
    readOnly: true,
    create: false,
    maxLineBytes,
    flushOnExit: false,
    onWarning: () => undefined,
    consumer: { reset: () => undefined, restore: () => undefined, apply: () => undefined },
  });
  try {
    return { seq: journal.lastSeq, h: journal.lastHash };
  } finally {
    journal.closeSync();
  }
}
