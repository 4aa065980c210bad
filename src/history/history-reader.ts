import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import type { Readable } from 'node:stream';
import { archiveDir } from '../compact/archive.js';
import { DEFAULT_MAX_LINE_BYTES } from '../journal/journal.js';
import { CommitAssembler } from '../journal/commit-framing.js';
import { decodeLine, type CommitHeader, type JournalRecord } from '../journal/record-codec.js';
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

/** A readable record on its way through the commit framing rule. */
interface FramedItem {
  seq: number;
  commit?: CommitHeader;
  item: Extract<HistoryItem, { kind: 'record' }>;
}

/**
 * The audit trail: every record of the store that readers apply, in commit
 * order, across the archive and the live segments, with the exact place of
 * each; every unreadable line, and every commit readers do not apply
 * (commit-framing.ts: incomplete, stale), as a problem. Read-only and
 * lockless; an unfinished last line or commit of the live segment is a
 * problem only when no writer holds the lock.
 */
export async function* readHistory(dir: string, options: { maxLineBytes?: number; segments?: HistorySegment[] } = {}): AsyncGenerator<HistoryItem> {
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const segments = options.segments ?? listHistorySegments(dir);
  let segment: HistorySegment = segments[0]!;
  const ready: HistoryItem[] = [];
  const framing = new CommitAssembler<FramedItem>(0, {
    applied: (records) => ready.push(...records.map((r) => r.item)),
    rejected: () => undefined, // its warning says it all
    // Regressions are the chain checker's to explain (verify-chain.ts); the rest are the framing's own findings.
    warn: (warning) => warning.code !== WarningCodes.SEQUENCE_REGRESSION && ready.push({ kind: 'problem', warning, segment }),
  });
  for (const [i, current] of segments.entries()) {
    segment = current;
    yield { kind: 'segment', segment };
    const lines = splitLines(openSegmentStream(segment), segment.file, maxLineBytes);
    let step = await lines.next();
    while (!step.done) {
      const item = step.value;
      if (item.kind === 'problem') {
        ready.push({ kind: 'problem', warning: item.warning, segment });
        if (item.warning.code === WarningCodes.LINE_TOO_LONG) framing.unreadableLine(item.warning as LinePlace, false);
      } else {
        const decoded = decodeLine(item.text);
        if (decoded.ok) {
          let raw: Record<string, unknown>;
          try {
            raw = JSON.parse(item.text) as Record<string, unknown>;
          } catch {
            raw = {};
          }
          const record = decoded.record;
          framing.record({ seq: record.seq, commit: record.commit, item: { kind: 'record', record, raw, place: item.place, segment } }, item.place);
        } else {
          ready.push({ kind: 'problem', warning: { ...decoded.rejection, ...item.place }, segment });
          framing.unreadableLine(item.place, 'sealed' in decoded);
        }
      }
      yield* ready.splice(0);
      step = await lines.next();
    }
    const tail = step.value;
    const isLiveEnd = i === segments.length - 1 && !segment.archived;
    const settled = !isLiveEnd || !journalLockHeld(dir);
    if (tail.tailBytes > 0 && settled) {
      yield {
        kind: 'problem',
        segment,
        warning: { code: WarningCodes.INCOMPLETE_TAIL, message: `last ${tail.tailBytes} bytes have no newline (a torn write)`, file: segment.file, line: tail.lines + 1, offset: tail.tailOffset },
      };
    }
    const open = framing.openSince;
    if (open && isLiveEnd && settled) {
      yield { kind: 'problem', segment, warning: { code: WarningCodes.INCOMPLETE_COMMIT, message: 'the last commit of the journal is unfinished (a write that failed or was cut short, and no writer holds the lock): not applied; the next writer replaces it', ...open } };
    }
  }
}
