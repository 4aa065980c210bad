import path from 'node:path';
import type { JournalWarning } from '../journal/warnings.js';
import { readArchivedSnapshotSync, readSnapshotSync, type SnapshotHeader } from '../snapshot/snapshot-file.js';
import { listStoreFiles } from './history-reader.js';

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

/** Every snapshot of the store and its archive (both copies of a number), parsed (read-only). Line-level warnings go to `warn`. */
export function readAllSnapshots(dir: string, maxLineBytes: number, warn: (w: JournalWarning) => void): SnapshotInfo[] {
  return listStoreFiles(dir, 'snapshot', true).map((s) => {
    const result = s.archived ? readArchivedSnapshotSync(s.file) : readSnapshotSync(s.file, maxLineBytes, warn);
    const file = path.relative(dir, s.file);
    if (!result.ok) return { number: s.number, file, archived: s.archived, reason: result.reason };
    return { number: s.number, file, archived: s.archived, header: result.header, entries: result.entries.map((e) => ({ value: e.value, line: e.place.line, offset: e.place.offset })) };
  });
}
