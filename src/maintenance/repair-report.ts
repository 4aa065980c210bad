import { WarningCodes, type WarningCode } from '../engine/warnings.js';
import type { BadSpan, ChainGap } from './segment-scan.js';

/**
 * A gap in the hash chain that moving damage out left (the damage stood for
 * committed records), as the `journal.repair` record names it.
 */
export interface RepairGap extends ChainGap {
  /** The segment the records were in. */
  file: string;
  /** Where their bytes are now. */
  quarantine: string;
}

/** One run of bad bytes moved out of a segment. Paths are relative to the store directory. */
export interface QuarantineItem {
  /** The segment the bytes came from. */
  file: string;
  /** 1-based line number in the segment before the repair. */
  line: number;
  /** Byte offset in the segment before the repair. */
  offset: number;
  /** Bytes moved (the line with its newline; a torn tail as it was). */
  length: number;
  /** The warning code replay gave these bytes. */
  reason: WarningCode;
  message: string;
  /** Where these bytes start in the quarantine file. */
  quarantineOffset: number;
}

export interface RepairedFile {
  /** The segment rewritten (or, with dryRun, that would be). */
  file: string;
  /** `quarantine/<segment>.<time>.bad`: the bad bytes, back to back, exactly as they were; null with dryRun. */
  quarantine: string | null;
  /** `quarantine/<segment>.<time>.json`: the index of the items; null with dryRun. */
  index: string | null;
  bytesBefore: number;
  bytesAfter: number;
  items: QuarantineItem[];
}

/** A problem repair saw and left alone, with why. */
export interface LeftProblem {
  file: string;
  line: number;
  offset: number;
  reason: WarningCode;
  message: string;
}

export interface RepairResult {
  /**
   * `clean`: nothing to do; `repaired`: bytes were moved (or only a whole-record tail was ended by a rotation); `would-repair`: dryRun found work;
   * `damage-left`: nothing could be moved, but `left` holds damage repair cannot undo (a damaged rotation marker).
   */
  status: 'clean' | 'repaired' | 'would-repair' | 'damage-left';
  dryRun: boolean;
  /** The live segment was closed by a rotation marker so it could be rewritten. */
  rotated: { closed: string; next: string } | null;
  /** With dryRun: the live segment a repair would rotate first. */
  wouldRotate?: string | null;
  files: RepairedFile[];
  /** Chain gaps journaled in a `journal.repair` record (empty when the chain needed none, and with dryRun). */
  gaps: RepairGap[];
  itemsMoved: number;
  bytesMoved: number;
  left: LeftProblem[];
}

export function summarize(files: RepairedFile[], left: LeftProblem[], rotated: RepairResult['rotated'], dryRun: boolean, wouldRotate = false, gaps: RepairGap[] = []): RepairResult {
  const itemsMoved = files.reduce((n, f) => n + f.items.length, 0);
  const bytesMoved = files.reduce((n, f) => n + total(f.items), 0);
  const changes = itemsMoved > 0 || rotated !== null || wouldRotate;
  const status = !changes ? (left.some(isDamageLeft) ? 'damage-left' : 'clean') : dryRun ? 'would-repair' : 'repaired';
  return { status, dryRun, rotated, files, gaps, itemsMoved, bytesMoved, left };
}

/** Left problems that mean the store is not clean after the repair: only a backup undoes them. */
export const isDamageLeft = (l: LeftProblem): boolean => l.reason === WarningCodes.ROTATION_MARKER_DAMAGED;

export const total = (spans: readonly { length: number }[]): number => spans.reduce((n, s) => n + s.length, 0);

/** In offset order, because the quarantine file holds the bytes back to back in that order. */
export function itemsOf(file: string, spans: readonly BadSpan[]): QuarantineItem[] {
  let at = 0;
  return [...spans]
    .sort((a, b) => a.offset - b.offset)
    .map((s) => {
      const item = { file, line: s.line, offset: s.offset, length: s.length, reason: s.reason, message: s.message, quarantineOffset: at };
      at += s.length;
      return item;
    });
}
