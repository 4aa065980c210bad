import fs from 'node:fs';
import { SegmentReader, type LinePlace } from '../journal/segment-reader.js';
import { closeQuietly, openStoreFile } from '../journal/store-files.js';
import { FORMAT_VERSION } from '../journal/record-codec.js';
import type { JournalWarning } from '../journal/warnings.js';

/**
 * A snapshot is NDJSON too: a header line, one line per state entry (the
 * reducer decides what an entry is), and a footer that counts the entries.
 * It is only ever published by rename, so a reader sees all of one or none;
 * the footer also catches a copy truncated by some other tool.
 */
export interface SnapshotHeader {
  v: number;
  kind: 'snapshot';
  /** The snapshot folds every segment numbered below this one. */
  segment: number;
  /** Sequence number of the last record folded in (0 for none). */
  seq: number;
  /** Hash of that record: the hash chain continues from here. */
  h?: string;
}

export interface SnapshotEntry {
  value: unknown;
  place: LinePlace;
}

export type SnapshotReadResult =
  | { ok: true; header: SnapshotHeader; entries: SnapshotEntry[]; bytes: number }
  | { ok: false; reason: string };

export function readSnapshotSync(file: string, maxLineBytes: number, warn: (w: JournalWarning) => void): SnapshotReadResult {
  const fd = openStoreFile(file, 'read');
  if (fd === undefined) return { ok: false, reason: 'file disappeared' };
  try {
    const reader = new SegmentReader(fd, file, maxLineBytes, warn);
    const bytes = reader.size();
    let header: SnapshotHeader | undefined;
    let footer: { entries: number } | undefined;
    let problem: string | undefined;
    const entries: SnapshotEntry[] = [];
    reader.readTo(bytes, (text, place) => {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        problem = `line ${place.line} is not valid JSON`;
        return 'stop';
      }
      if (!header) {
        const h = value as SnapshotHeader;
        if (h?.kind !== 'snapshot' || typeof h.segment !== 'number' || typeof h.seq !== 'number') {
          problem = 'first line is not a snapshot header';
          return 'stop';
        }
        if (h.v > FORMAT_VERSION) {
          problem = `snapshot format ${h.v} is newer than ${FORMAT_VERSION}`;
          return 'stop';
        }
        header = h;
      } else if (footer) {
        problem = `data after the footer at line ${place.line}`;
        return 'stop';
      } else if ((value as { end?: unknown })?.end === true) {
        footer = value as { entries: number };
      } else {
        entries.push({ value, place });
      }
      return 'continue';
    });
    if (problem) return { ok: false, reason: problem };
    if (!header) return { ok: false, reason: 'empty snapshot' };
    if (!footer) return { ok: false, reason: 'no footer: the file is truncated' };
    if (footer.entries !== entries.length) return { ok: false, reason: `footer counts ${footer.entries} entries, file has ${entries.length}` };
    return { ok: true, header, entries, bytes };
  } finally {
    closeQuietly(fd);
  }
}
