import path from 'node:path';
import { WarningCodes, type JournalWarning } from '../engine/warnings.js';
import { readArchivedSnapshotSync, readSnapshotSync, type SnapshotHeader } from '../storage/file/snapshot-file.js';
import { listStoreFiles } from '../storage/file/history-reader.js';
import { VerifyCodes } from './verify-chain.js';
import type { Findings } from './verify-findings.js';

/** A snapshot as verify sees it: live in the store, or gzipped in the archive. */
export interface SnapshotInfo {
  /** The number in its name. */
  number: number;
  /** Path relative to the store directory. */
  file: string;
  archived: boolean;
  /** Set when readable. */
  header?: SnapshotHeader;
  entries?: Array<{ value: unknown; line: number; offset: number }>;
  /** Why it is not readable. */
  reason?: string;
}

export type ReadableSnapshot = SnapshotInfo & Required<Pick<SnapshotInfo, 'header' | 'entries'>>;

/** Every snapshot of the store and its archive (both copies of a number), parsed (read-only). Line-level warnings go to `warn`. */
export function readAllSnapshots(dir: string, warn: (w: JournalWarning) => void): SnapshotInfo[] {
  return listStoreFiles(dir, 'snapshot', true).map((s) => {
    const result = s.archived ? readArchivedSnapshotSync(s.file) : readSnapshotSync(s.file, warn);
    const file = path.relative(dir, s.file);
    if (!result.ok) return { number: s.number, file, archived: s.archived, reason: result.reason };
    return { number: s.number, file, archived: s.archived, header: result.header, entries: result.entries.map((e) => ({ value: e.value, line: e.place.line, offset: e.place.offset })) };
  });
}

/** The snapshots the chain can be anchored on and compared with: readable, and named for the segment their header names. The others are problems. */
export function usableSnapshots(snapshots: readonly SnapshotInfo[], findings: Findings): ReadableSnapshot[] {
  for (const s of snapshots) {
    if (!s.header) {
      findings.add({ code: WarningCodes.SNAPSHOT_UNREADABLE, file: s.file, line: null, offset: null, message: `${s.reason}; readers fall back to an older base` });
    } else if (s.header.segment !== s.number) {
      findings.add({ code: VerifyCodes.SNAPSHOT_HEADER_MISMATCH, file: s.file, line: 1, offset: 0, message: `named for segment ${s.number}, but its header says segment ${s.header.segment}` });
    }
  }
  return snapshots.filter((s): s is ReadableSnapshot => s.header !== undefined && s.header.segment === s.number);
}
