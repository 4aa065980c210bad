import { WarningCodes, type WarningCode } from '../engine/warnings.js';
import type { ChainGap } from '../storage/file/segment-scan.js';
import type { QuarantineItem } from '../storage/file/quarantine.js';

export type { QuarantineItem } from '../storage/file/quarantine.js';

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
