import path from 'node:path';
import { COMPACTION_LOCK_NAME, CompactionLock } from '../storage/file/compaction-lock.js';
import { removeAbandonedTempFiles } from '../storage/file/leftovers.js';
import { DEFAULT_MAX_LINE_BYTES, Journal, type JournalConsumer } from '../storage/journal.js';
import { requireStoreDir, segmentName } from '../storage/file/store-files.js';
import type { WarningHandler } from '../engine/warnings.js';
import { REPAIR_EVENT } from '../engine/record-codec.js';
import { QUARANTINE_DIR } from '../storage/file/quarantine.js';
import { journalLockHeld } from '../storage/file/store-lock.js';
import { damagedMarker, leftProblems, liveDamage, planRepair, scanStore } from './repair-plan.js';
import { summarize, type RepairGap, type RepairResult, type RepairedFile } from './repair-report.js';
import { rewriteSegment } from './segment-rewrite.js';

export { QUARANTINE_DIR } from '../storage/file/quarantine.js';
export type { LeftProblem, QuarantineItem, RepairGap, RepairResult, RepairedFile } from './repair-report.js';

export interface RepairOptions {
  /** The store directory (must exist). */
  dir: string;
  /** Only report what would move; takes no lock and changes nothing. */
  dryRun?: boolean;
  /** Wait this long for a running compaction and for the journal lock (default 30 s). */
  lockTimeoutMs?: number;
  /** The longest line a record may have (default 1 MiB, as the store's). */
  maxLineBytes?: number;
  /** Clock for the quarantine file names (default Date.now). */
  now?: () => number;
  /** Replay warnings of the journal opened to rotate the live segment (default: ignored; the result says what moved). */
  onWarning?: WarningHandler;
}

const NOOP_CONSUMER: JournalConsumer = { reset: () => undefined, restore: () => undefined, apply: () => undefined };

/**
 * Appends one `journal.repair` record naming the gaps (docs/FORMAT.md,
 * "Engine record types"), under the journal lock at the end of the live
 * segment, like any commit: it is chained, so it cannot be edited unseen
 * either, and verify accepts a gap only where such a record explains it.
 */
async function recordGaps(dir: string, gaps: readonly RepairGap[], lockTimeoutMs: number, maxLineBytes: number, onWarning: WarningHandler | undefined): Promise<void> {
  const journal = Journal.openSync({ dir, consumer: NOOP_CONSUMER, create: false, flushOnExit: false, lockTimeoutMs, maxLineBytes, onWarning: onWarning ?? (() => undefined) });
  try {
    await journal.appendDecided(() => [{ type: REPAIR_EVENT, payload: { gaps } }]);
  } finally {
    await journal.close();
  }
}

/**
 * Moves torn and corrupt bytes out of a store's segments into
 * `DIR/quarantine/`, never deleting them, so that replay finds nothing to
 * skip. Safe beside live writers:
 *
 * - the compaction lock is held throughout, so no compaction runs meanwhile;
 * - a live segment with damage is first closed by a rotation (under the
 *   journal lock), so writers move on to a new segment and nobody appends to
 *   the file about to be replaced; an unfinished last line is counted as
 *   damage only when no writer holds the journal lock (otherwise it may be an
 *   append in progress), and the rotation ends it with a newline under the lock;
 * - each closed segment with damage is rewritten: the good lines, byte for
 *   byte, to a unique temporary file (fsync), the bad bytes and their index
 *   to the quarantine (fsync), then the temporary file is renamed over the
 *   segment and the directory fsynced. A process still reading the old file
 *   keeps its descriptor on the old inode, which is unchanged.
 *
 * Most removed lines were never part of the hash chain (writers chain from
 * the last valid record). Where they stood for committed records (a record
 * damaged after it was written), the gap they leave is journaled in a
 * `journal.repair` record, which verify reads as the explanation.
 */
export async function repairStore(options: RepairOptions): Promise<RepairResult> {
  const dir = options.dir;
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  requireStoreDir(dir);
  if (options.dryRun) return planRepair(dir, maxLineBytes);

  const timeoutMs = options.lockTimeoutMs ?? 30_000;
  const lock = new CompactionLock(dir, path.join(dir, COMPACTION_LOCK_NAME));
  await lock.acquire(timeoutMs);
  try {
    removeAbandonedTempFiles(dir);
    removeAbandonedTempFiles(path.join(dir, QUARANTINE_DIR));
    let scans = scanStore(dir, maxLineBytes);
    let rotated: RepairResult['rotated'] = null;
    const tailCounts = !journalLockHeld(dir);
    if (scans.some((s) => !s.scan.closed && liveDamage(s.scan, tailCounts))) {
      const journal = Journal.openSync({ dir, consumer: NOOP_CONSUMER, create: false, flushOnExit: false, lockTimeoutMs: timeoutMs, maxLineBytes, onWarning: options.onWarning ?? (() => undefined) });
      try {
        lock.check('rotation');
        const r = await journal.rotate();
        rotated = { closed: segmentName(r.closed), next: segmentName(r.next) };
      } finally {
        await journal.close();
      }
      scans = scanStore(dir, maxLineBytes);
    }
    const stamp = new Date((options.now ?? Date.now)()).toISOString().replace(/:/g, '-');
    const files: RepairedFile[] = [];
    const gaps: RepairGap[] = [];
    for (const { name, scan } of scans) {
      if (!scan.closed || (scan.bad.length === 0 && !scan.tail)) continue;
      lock.check(`rewriting ${name}`);
      const repaired = rewriteSegment(dir, name, maxLineBytes, stamp, scan.startSeq);
      if (repaired) {
        files.push(repaired.file);
        gaps.push(...repaired.gaps);
      }
    }
    if (gaps.length > 0) {
      lock.check('recording the repaired gaps');
      await recordGaps(dir, gaps, timeoutMs, maxLineBytes, options.onWarning);
    }
    const left = scans.flatMap(({ name, scan }) => [...leftProblems(name, scan, tailCounts, false), ...damagedMarker(scans, name, scan)]);
    return summarize(files, left, rotated, false, false, gaps);
  } finally {
    await lock.releaseQuietly();
  }
}
