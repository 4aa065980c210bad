import fs from 'node:fs';
import path from 'node:path';
import { COMPACTION_LOCK_NAME } from '../storage/file/store-layout.js';
import { ErrorCodes, SessionJournalError } from '../errors.js';
import { DEFAULT_MAX_LINE_BYTES, Journal } from '../storage/journal.js';
import { CHAIN_START } from '../engine/record-codec.js';
import { withStoreConnection } from '../storage/redis/history-reader.js';
import { readRedisChainHead, verifyRedisStore } from './verify-redis.js';
import { archiveDir, fileSizeOrZero, listStore, readStoreSubdir, requireStoreDir } from '../storage/file/store-files.js';
import { listHistorySegments, readHistory, type HistoryItem, type HistorySegment } from '../storage/file/history-reader.js';
import { VerifyCodes, shortHash, type VerifyProblem } from './verify-chain.js';
import { Findings, type VerifyNote } from './verify-findings.js';
import { readAllSnapshots, usableSnapshots, type ReadableSnapshot } from './verify-snapshots.js';
import { checkSnapshotsAgainstHistory } from './verify-snapshots-vs-history.js';
import { HistoryWalk } from './verify-walk.js';
import { writeWarningToStderr, type WarningHandler } from '../engine/warnings.js';
import type { RedisLocation, StoreRef } from '../storage/store-options.js';

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
  /** When the store changed under a check, wait this long for the compaction (compact.lock) to end before checking again (default 30 s). */
  lockTimeoutMs?: number;
  /** On Redis: the connection's warnings (REDIS_DISCONNECTED, REDIS_CONFIG_UNKNOWN; default: one line each on stderr). What verify finds is in the report. */
  onWarning?: WarningHandler;
}

/** Checks of a store that keeps changing under them, before verify gives up with STORE_CHANGING. */
const MAX_ATTEMPTS = 5;
const LOCK_POLL_MS = 50;

/**
 * Verifies a store, read-only and without any lock, as one consistent view.
 * A compaction may archive a segment or a snapshot between the listing and
 * the read (ENOENT), or publish files while the check runs; what verify
 * found then may be an artifact of the move, not of the store. So a check
 * that hit a vanished file, or found problems while the listing changed
 * under it, is thrown away: verify waits for the compaction to end
 * (compact.lock gone, at most `lockTimeoutMs`) and checks again from a fresh
 * listing. A clean check is kept even if files moved meanwhile: every file it
 * read was whole (each is published by rename). After MAX_ATTEMPTS it throws
 * STORE_CHANGING (exit 3: retry later).
 */
export async function verifyStore(store: StoreRef, options: VerifyOptions = {}): Promise<VerifyReport> {
  if (typeof store !== 'string') {
    return withStoreConnection(store.redis, options.onWarning ?? writeWarningToStderr, (conn) => verifyRedisStore(conn, options));
  }
  const dir = store;
  requireStoreDir(dir);
  for (let attempt = 1; ; attempt++) {
    const before = listingOf(dir);
    let report: VerifyReport | undefined;
    let gone: unknown;
    try {
      report = await verifyOnce(dir, options);
    } catch (err) {
      if (!isVanishedFile(err)) throw err;
      gone = err;
    }
    if (report && (report.ok || listingOf(dir) === before)) {
      if (attempt > 1) report.notes.push({ code: 'VERIFY_RETRIED', file: null, line: null, message: `the store changed while it was read (a compaction moved files): checked ${attempt} times, this report is of the last, consistent check` });
      return report;
    }
    if (attempt >= MAX_ATTEMPTS) {
      const why = gone ? (gone as Error).message : 'its files moved while it was read';
      throw new SessionJournalError(ErrorCodes.STORE_CHANGING, `${dir} changed under each of ${MAX_ATTEMPTS} checks (${why}); nothing is known to be wrong with it`, { cause: gone, details: { dir, attempts: attempt } });
    }
    await compactionEnded(dir, options.lockTimeoutMs ?? 30_000);
  }
}

/** The names of every store file, live and archived: it changes whenever a compaction rotates, publishes or archives. */
function listingOf(dir: string): string {
  const { segments, snapshots } = listStore(dir);
  return JSON.stringify([segments, snapshots, readStoreSubdir(archiveDir(dir)).sort()]);
}

/** A file listed a moment ago is gone: a compaction archived it (or a repair replaced it). */
function isVanishedFile(err: unknown): boolean {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | undefined;
  return e?.code === 'ENOENT' || (err instanceof SessionJournalError && err.code === ErrorCodes.IO_ERROR && e?.cause?.code === 'ENOENT');
}

/** Resolves once no compaction holds compact.lock, or after `timeoutMs` (a stale lock of a dead compactor must not stop verify). */
async function compactionEnded(dir: string, timeoutMs: number): Promise<void> {
  const lock = path.join(dir, COMPACTION_LOCK_NAME);
  for (let waited = 0; fs.existsSync(lock) && waited < timeoutMs; waited += LOCK_POLL_MS) {
    await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
  }
}


/**
 * One check: every line of every segment (archived and live), the hash
 * chain across them, rotation markers, and every snapshot against the
 * segments.
 */
async function verifyOnce(dir: string, options: VerifyOptions): Promise<VerifyReport> {
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const findings = new Findings(dir);
  // Snapshots first: they anchor the chain where the history before them is gone.
  const snapshots = readAllSnapshots(dir, (w) => findings.warning(w));
  const usable = usableSnapshots(snapshots, findings);
  const segments = listHistorySegments(dir);
  const walk = new HistoryWalk(usable, findings, options.expectHead?.seq);
  await walkHistory(walk, readHistory(dir, { maxLineBytes, segments }), new SegmentProgress(segments, options.onProgress));
  findings.explainGaps(walk.repairGaps);
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
    } else if (item.kind === 'parts') {
      walk.passOver(item.lines);
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

/** Where the record is pruned, a snapshot header with that seq still carries its hash. (Also verify-redis.ts's, with its one snapshot.) */
export function checkExpectedHead(
  expect: { seq: number; h: string },
  head: ChainHead,
  walk: Pick<HistoryWalk, 'firstAvailableSeq' | 'wanted'>,
  snapshots: ReadonlyArray<{ header: { seq: number; h?: string } }>,
  findings: Findings,
): ExpectedHeadResult {
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
 * segments): the seq and hash the next record will chain from, as
 * `session-journal verify --head` prints it; keep it elsewhere and pass it
 * back as `expectHead` to prove nothing up to it changed. Read-only, no lock.
 */
export function readChainHead(dir: string, options?: { maxLineBytes?: number }): ChainHead;
/** The same for a store on Redis: the head writers chain from, after the snapshot and the stream. */
export function readChainHead(store: { readonly redis: RedisLocation }, options?: { maxLineBytes?: number; onWarning?: WarningHandler }): Promise<ChainHead>;
/** Either (`await` it): for code that takes any StoreRef. */
export function readChainHead(store: StoreRef, options?: { maxLineBytes?: number; onWarning?: WarningHandler }): ChainHead | Promise<ChainHead>;
export function readChainHead(store: StoreRef, options: { maxLineBytes?: number; onWarning?: WarningHandler } = {}): ChainHead | Promise<ChainHead> {
  if (typeof store !== 'string') {
    const { redis } = store;
    return withStoreConnection(redis, options.onWarning ?? writeWarningToStderr, () => readRedisChainHead(redis, options));
  }
  const dir = store;
  requireStoreDir(dir);
  const journal = Journal.openSync({
    dir,
    readOnly: true,
    create: false,
    maxLineBytes: options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES,
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
