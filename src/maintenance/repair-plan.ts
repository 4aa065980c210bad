import path from 'node:path';
import { journalLockHeld } from '../storage/file/store-lock.js';
import { WarningCodes } from '../engine/warnings.js';
import { closeQuietly, listStore, openStoreFile, segmentName } from '../storage/file/store-files.js';
import { summarize, total, type LeftProblem, type RepairResult, type RepairedFile } from './repair-report.js';
import { scanSegment, type BadSpan, type SegmentScan } from '../storage/file/segment-scan.js';
import { itemsOf } from '../storage/file/quarantine.js';

export interface NamedScan {
  name: string;
  scan: SegmentScan;
}

export function scanStore(dir: string, maxLineBytes: number): NamedScan[] {
  const out: NamedScan[] = [];
  let lastSeq = 0; // carried from segment to segment, as readers do: a stale commit is numbered at or below it
  for (const n of listStore(dir).segments) {
    const name = segmentName(n);
    const file = path.join(dir, name);
    const fd = openStoreFile(file, 'read');
    if (fd === undefined) continue;
    try {
      const scan = scanSegment(fd, file, maxLineBytes, undefined, lastSeq);
      lastSeq = scan.endSeq;
      out.push({ name, scan });
    } finally {
      closeQuietly(fd); // only read
    }
  }
  return out;
}

/** `tailCounts`: no writer holds the journal lock, so an unfinished last line cannot be an append in progress. */
export function liveDamage(scan: SegmentScan, tailCounts: boolean): boolean {
  return scan.bad.length > 0 || (scan.tail !== undefined && tailCounts);
}

/** What a repair would do, read without any lock. */
export function planRepair(dir: string, maxLineBytes: number): RepairResult {
  const scans = scanStore(dir, maxLineBytes);
  const tailCounts = !journalLockHeld(dir);
  const files: RepairedFile[] = [];
  const left: LeftProblem[] = [];
  let wouldRotate: string | null = null;
  for (const { name, scan } of scans) {
    const live = !scan.closed;
    const spans: BadSpan[] = [...scan.bad];
    if (scan.tail && (!live || tailCounts)) spans.push(scan.tail);
    left.push(...leftProblems(name, scan, tailCounts, true), ...damagedMarker(scans, name, scan));
    if (spans.length === 0) continue;
    if (live) wouldRotate = name;
    // A whole record with no newline is kept: the rotation ends it and replay applies it.
    const moved = spans.filter((s) => !(live && s === scan.tail && scan.tail.wholeRecord));
    if (moved.length > 0) files.push({ file: name, quarantine: null, index: null, bytesBefore: scan.size, bytesAfter: scan.size - total(moved), items: itemsOf(name, moved) });
  }
  const result = summarize(files, left, null, true, wouldRotate !== null);
  result.wouldRotate = wouldRotate;
  return result;
}

/**
 * A segment that no valid rotation marker closes, below a segment that holds
 * records: its marker was damaged (readers go on to the next segment when
 * it continues the sequence, ROTATION_MARKER_DAMAGED) or the later segment
 * is an orphan. Repair cannot write the lost marker back (its seq and hash
 * are gone with it), so it reports it: the store is not clean.
 */
export function damagedMarker(scans: readonly NamedScan[], name: string, scan: SegmentScan): LeftProblem[] {
  const below = scans.findIndex((s) => s.name === name);
  if (scan.closed || !scans.slice(below + 1).some((s) => s.scan.size > 0)) return [];
  const at = scan.tail ?? scan.lastLine ?? { line: 1, offset: 0 };
  return [{ file: name, line: at.line, offset: at.offset, reason: WarningCodes.ROTATION_MARKER_DAMAGED, message: 'this segment does not end in a valid rotation marker, yet a later segment holds records: its marker was damaged (readers go on to the next segment when it continues the sequence) or that segment is an orphan; left in place (restore the segment from a backup, or keep it: nothing is lost)' }];
}

/**
 * Problems a repair leaves alone. `moving`: the segment's damage is being (or
 * would be) moved, so only kept lines and a tail that may be in progress remain.
 */
export function leftProblems(name: string, scan: SegmentScan, tailCounts: boolean, moving: boolean): LeftProblem[] {
  const left: LeftProblem[] = scan.kept.map((k) => ({ file: name, ...k }));
  if (scan.closed) return left;
  if (!moving) {
    // Still not closed after the rotation: not the live segment (an orphan no marker leads to).
    for (const b of scan.bad) left.push({ file: name, line: b.line, offset: b.offset, reason: b.reason, message: `${b.message}; left in place: no rotation marker closes this segment` });
  }
  if (scan.tail && (!tailCounts || !moving)) {
    const why = tailCounts ? 'no rotation marker closes this segment' : 'a writer holds the journal lock, so it may be an append in progress';
    left.push({ file: name, line: scan.tail.line, offset: scan.tail.offset, reason: scan.tail.reason, message: `${scan.tail.message}; left in place: ${why}` });
  }
  return left;
}


