import { DEFAULT_MAX_LINE_BYTES, Journal } from '../journal/journal.js';
import { CHAIN_START } from '../journal/record-codec.js';
import { fileSizeOrZero, requireStoreDir } from '../journal/store-files.js';
import { listHistorySegments, readHistory, type HistoryItem, type HistorySegment } from './history-reader.js';
import { VerifyCodes, shortHash, type VerifyProblem } from './verify-chain.js';
import { Findings, type VerifyNote } from './verify-findings.js';
import { readAllSnapshots, usableSnapshots, type ReadableSnapshot } from './verify-snapshots.js';
import { checkSnapshotsAgainstHistory } from './verify-snapshots-vs-history.js';
import { HistoryWalk } from './verify-walk.js';

export { VerifyCodes, type VerifyProblem } from './verify-chain.js';
export type { VerifyNote } from './verify-findings.js';

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
  /**
   * No problem at or before that record, and the chain is anchored: at seq 1,
   * or, where the archive was pruned, at a snapshot header (note
   * CHAIN_FROM_SNAPSHOT). Records folded into that snapshot are then vouched
   * for by its header's hash alone; without either anchor this is false and
   * the note EXPECTED_HEAD_PARTIAL says so.
   */
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


/**
 * Verifies a store, read-only and without any lock: every line of every
 * segment (archived and live), the hash chain across them, rotation
 * markers, and every snapshot against the segments.
 */
export async function verifyStore(dir: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  requireStoreDir(dir);
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const findings = new Findings(dir);
  // Snapshots first: they anchor the chain where the history before them is gone.
  const snapshots = readAllSnapshots(dir, (w) => findings.warning(w));
  const usable = usableSnapshots(snapshots, findings);
  const segments = listHistorySegments(dir);
  const walk = new HistoryWalk(usable, findings, options.expectHead?.seq);
  await walkHistory(walk, readHistory(dir, { maxLineBytes, segments }), new SegmentProgress(segments, options.onProgress));
  checkSnapshotsAgainstHistory(usable, walk, findings);
  const last = walk.last;
  const head: ChainHead = last ? { seq: last.seq, h: last.h ?? CHAIN_START } : headFromSnapshots(usable);
  const expectedHead = options.expectHead && checkExpectedHead(options.expectHead, head, walk, usable, findings);
  const problems = findings.problems();
  return {
    ok: problems.length === 0,
    problems,
    notes: findings.notes,
    records: walk.records,
    segments: segments.length,
    archivedSegments: segments.filter((s) => s.archived).length,
    snapshots: snapshots.length,
    head,
    ...(expectedHead && { expectedHead }),
  };
}

async function walkHistory(walk: HistoryWalk, history: AsyncIterable<HistoryItem>, progress: SegmentProgress): Promise<void> {
  for await (const item of history) {
    if (item.kind === 'segment') {
      walk.startSegment(item.segment);
      progress.startSegment();
    } else if (item.kind === 'problem') {
      walk.problem(item.warning);
    } else if (walk.record(item) && walk.records % 4096 === 0) {
      progress.at(item.segment, item.place.offset);
    }
  }
  walk.end();
  progress.end();
}

/** Progress in bytes of the segment files as stored: offsets in an archived segment are uncompressed, so it counts only once done. */
class SegmentProgress {
  private readonly sizes: number[];
  private readonly total: number;
  private done = 0;
  private index = -1;

  constructor(
    segments: readonly HistorySegment[],
    private readonly onProgress: VerifyOptions['onProgress'],
  ) {
    this.sizes = segments.map((s) => fileSizeOrZero(s.file));
    this.total = this.sizes.reduce((a, b) => a + b, 0);
  }

  startSegment(): void {
    if (this.index >= 0) this.done += this.sizes[this.index] ?? 0;
    this.index++;
    this.onProgress?.(this.done, this.total);
  }

  at(segment: HistorySegment, offset: number): void {
    this.onProgress?.(this.done + (segment.archived ? 0 : offset), this.total);
  }

  end(): void {
    this.onProgress?.(this.total, this.total);
  }
}

/** Where the record is pruned, a snapshot header with that seq still carries its hash. */
function checkExpectedHead(expect: { seq: number; h: string }, head: ChainHead, walk: HistoryWalk, snapshots: readonly ReadableSnapshot[], findings: Findings): ExpectedHeadResult {
  const anchoredAtStart = walk.firstAvailableSeq === 1 || !findings.hasNote('CHAIN_UNANCHORED');
  const record = walk.wanted;
  const snap = record ? undefined : snapshots.find((s) => s.header.seq === expect.seq);
  const found = record !== undefined || snap !== undefined;
  const matches = record ? record.h === expect.h : snap !== undefined && (snap.header.h ?? CHAIN_START) === expect.h;
  const chainIntact = found && anchoredAtStart && (!record || findings.noneUpTo(record.ordinal));
  if (!found) {
    const code = expect.seq > head.seq ? VerifyCodes.EXPECTED_HEAD_NOT_FOUND : VerifyCodes.EXPECTED_HEAD_UNAVAILABLE;
    const message =
      code === VerifyCodes.EXPECTED_HEAD_NOT_FOUND
        ? `the store ends at seq ${head.seq}, before the expected head seq ${expect.seq}: records were removed from the end, or this is another store`
        : `seq ${expect.seq} is no longer in the store or its archive (pruned): it cannot be checked`;
    findings.addOverall({ code, file: null, line: null, offset: null, message });
  } else if (!matches) {
    findings.addOverall({ code: VerifyCodes.EXPECTED_HEAD_MISMATCH, file: null, line: null, offset: null, message: `seq ${expect.seq} has another hash than the one recorded (${shortHash(expect.h)}): the history up to it was changed (and possibly rehashed)` });
  }
  if (found && !anchoredAtStart) {
    findings.notes.push({ code: 'EXPECTED_HEAD_PARTIAL', file: null, line: null, message: 'the history before the first available record is gone: the expected head proves nothing about records before it' });
  }
  return { seq: expect.seq, h: expect.h, found, matches, chainIntact };
}

function headFromSnapshots(snapshots: ReadonlyArray<{ header: { seq: number; h?: string } }>): ChainHead {
  const newest = snapshots[snapshots.length - 1];
  return newest ? { seq: newest.header.seq, h: newest.header.h ?? CHAIN_START } : { seq: 0, h: CHAIN_START };
}

/**
 * The chain head as writers see it (newest snapshot, then the live
 * segments): the seq and hash the next record will chain from. Read-only,
 * no lock.
 */
export function readChainHead(dir: string, maxLineBytes = DEFAULT_MAX_LINE_BYTES): ChainHead {
  requireStoreDir(dir);
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
