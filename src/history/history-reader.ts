import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import type { Readable } from 'node:stream';
import { archiveDir } from '../compact/archive.js';
import { DEFAULT_MAX_LINE_BYTES } from '../journal/journal.js';
import { decodeRecord, type JournalRecord } from '../journal/record-codec.js';
import type { LinePlace } from '../journal/segment-reader.js';
import { journalLockHeld } from '../journal/store-lock.js';
import { listStore, readStoreSubdir, segmentName, snapshotName } from '../journal/store-files.js';
import { WarningCodes, type JournalWarning } from '../journal/warnings.js';
import { splitLines } from './line-stream.js';

/** One segment of the whole history: live in the store, or gzipped in the archive. */
export type HistorySegment = StoreFile;

export type HistoryItem =
  | { kind: 'segment'; segment: HistorySegment }
  /** A record, with the parsed line as written (verify recomputes hashes from it). */
  | { kind: 'record'; record: JournalRecord; raw: Record<string, unknown>; place: LinePlace; segment: HistorySegment }
  | { kind: 'problem'; warning: JournalWarning; segment: HistorySegment };

/** A store file by number: live in the store directory, or gzipped in archive/. */
export interface StoreFile {
  number: number;
  /** Absolute path. */
  file: string;
  archived: boolean;
}

const ARCHIVED_RE = { journal: /^journal-(\d{8,})\.ndjson\.gz$/, snapshot: /^snapshot-(\d{8,})\.ndjson\.gz$/ };

/**
 * Every segment (or snapshot) of the store, live and archived, ascending. A
 * number in both places (a crash between archiving and unlinking) is listed
 * once, from the live store, unless `both` asks for each copy.
 */
export function listStoreFiles(dir: string, kind: 'journal' | 'snapshot', both = false): StoreFile[] {
  const files: StoreFile[] = [];
  for (const name of readStoreSubdir(archiveDir(dir))) {
    const m = ARCHIVED_RE[kind].exec(name);
    if (m) files.push({ number: Number(m[1]), file: path.join(archiveDir(dir), name), archived: true });
  }
  const listing = listStore(dir);
  for (const n of kind === 'journal' ? listing.segments : listing.snapshots) {
    files.push({ number: n, file: path.join(dir, kind === 'journal' ? segmentName(n) : snapshotName(n)), archived: false });
  }
  files.sort((a, b) => a.number - b.number || Number(b.archived) - Number(a.archived));
  return both ? files : files.filter((f, i) => files[i + 1]?.number !== f.number);
}

/** Every segment, archived and live, in commit order. */
export function listHistorySegments(dir: string): HistorySegment[] {
  return listStoreFiles(dir, 'journal');
}

function openSegmentStream(segment: HistorySegment): Readable {
  const file = fs.createReadStream(segment.file, { flags: (fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW) as unknown as string, highWaterMark: 1024 * 1024 });
  if (!segment.archived) return file;
  const gunzip = zlib.createGunzip();
  file.on('error', (err) => gunzip.destroy(err));
  return file.pipe(gunzip);
}

/**
 * The audit trail: every record of the store in commit order, across the
 * archive and the live segments, with the exact place of each and every
 * unreadable line as a problem. Read-only and lockless; an unfinished last
 * line of the live segment is a problem only when no writer holds the lock.
 */
export async function* readHistory(dir: string, options: { maxLineBytes?: number; segments?: HistorySegment[] } = {}): AsyncGenerator<HistoryItem> {
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const segments = options.segments ?? listHistorySegments(dir);
  for (const [i, segment] of segments.entries()) {
    yield { kind: 'segment', segment };
    const lines = splitLines(openSegmentStream(segment), segment.file, maxLineBytes);
    let step = await lines.next();
    while (!step.done) {
      const item = step.value;
      if (item.kind === 'problem') {
        yield { kind: 'problem', warning: item.warning, segment };
      } else {
        const decoded = decodeRecord(item.text);
        if (decoded.ok) {
          let raw: Record<string, unknown>;
          try {
            raw = JSON.parse(item.text) as Record<string, unknown>;
          } catch {
            raw = {};
          }
          yield { kind: 'record', record: decoded.record, raw, place: item.place, segment };
        } else {
          yield { kind: 'problem', warning: { ...decoded.rejection, ...item.place }, segment };
        }
      }
      step = await lines.next();
    }
    const tail = step.value;
    if (tail.tailBytes > 0) {
      const isLiveEnd = i === segments.length - 1 && !segment.archived;
      if (!isLiveEnd || !journalLockHeld(dir)) {
        yield {
          kind: 'problem',
          segment,
          warning: { code: WarningCodes.INCOMPLETE_TAIL, message: `last ${tail.tailBytes} bytes have no newline (a torn write)`, file: segment.file, line: tail.lines + 1, offset: tail.tailOffset },
        };
      }
    }
  }
}


