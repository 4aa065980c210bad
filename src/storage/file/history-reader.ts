import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { zlib } from '../../lazy.js';
import { CommitAssembler } from '../../engine/commit-framing.js';
import { LineDecoder, type CommitHeader, type JournalRecord } from '../../engine/record-codec.js';
import { DEFAULT_MAX_RECORD_BYTES, joinParts } from '../../engine/record-parts.js';
import type { LinePlace } from './segment-reader.js';
import { journalLockHeld } from './store-lock.js';
import { archivedSegmentPath, archivedSnapshotPath, listArchive, listStore, openStoreFile, segmentName, snapshotName } from './store-files.js';
import { ErrorCodes, SessionJournalError, ioError } from '../../errors.js';
import { WarningCodes, type JournalWarning } from '../../engine/warnings.js';
import { splitLines } from './line-stream.js';

/** One segment of the whole history: live in the store, or gzipped in the archive. */
export type HistorySegment = StoreFile;

/** One line of a segment as written: the record it holds, the parsed line (verify recomputes hashes from it), and where it is. */
export interface HistoryLine {
  record: JournalRecord;
  raw: Record<string, unknown>;
  place: LinePlace;
}

export type HistoryItem =
  | { kind: 'segment'; segment: HistorySegment }
  /**
   * A record readers apply, with the parsed line as written; `place` is
   * where it starts. A record spread over several lines (record-parts.ts)
   * is joined, and `lines` holds each of them (`raw` is then the last).
   */
  | { kind: 'record'; record: JournalRecord; raw: Record<string, unknown>; place: LinePlace; segment: HistorySegment; lines?: HistoryLine[] }
  /** Lines readers pass over without applying anything: the parts of a spread record that do not join (each also reported as a problem). They are in the hash chain. */
  | { kind: 'parts'; lines: HistoryLine[]; segment: HistorySegment }
  | { kind: 'problem'; warning: JournalWarning; segment: HistorySegment };

/** A store file by number: live in the store directory, or gzipped in archive/. */
export interface StoreFile {
  number: number;
  /** Absolute path. */
  file: string;
  archived: boolean;
}

/**
 * Every segment (or snapshot) of the store, live and archived, ascending. A
 * number in both places (a crash between archiving and unlinking) is listed
 * once, from the live store, unless `both` asks for each copy.
 */
export function listStoreFiles(dir: string, kind: 'journal' | 'snapshot', both = false): StoreFile[] {
  const files: StoreFile[] = [];
  const archive = listArchive(dir);
  for (const n of kind === 'journal' ? archive.segments : archive.snapshots) {
    files.push({ number: n, file: kind === 'journal' ? archivedSegmentPath(dir, n) : archivedSnapshotPath(dir, n), archived: true });
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

/**
 * One segment as a byte stream (gunzipped when archived), opened through
 * openStoreFile: what is not a regular file is refused before it is opened
 * (a FIFO would block the read forever), and a segment gone since it was
 * listed is an IO_ERROR whose cause is ENOENT (auditTrail lists again).
 */
function openSegmentStream(segment: HistorySegment): Readable {
  const fd = openStoreFile(segment.file, 'read');
  if (fd === undefined) {
    throw ioError('open', segment.file, Object.assign(new Error(`ENOENT: ${segment.file} is gone`), { code: 'ENOENT', path: segment.file }));
  }
  const file = fs.createReadStream(segment.file, { fd, highWaterMark: 1024 * 1024 });
  if (!segment.archived) return file;
  const gunzip = zlib().createGunzip();
  file.on('error', (err) => gunzip.destroy(err));
  return file.pipe(gunzip);
}

/** A readable record on its way through the commit framing rule. */
interface FramedItem {
  seq: number;
  commit?: CommitHeader;
  item: Extract<HistoryItem, { kind: 'record' }>;
}

/** zlib's errors (Z_DATA_ERROR, Z_BUF_ERROR...): the archived file is damaged, not the disk. */
const isGzipError = (err: unknown): boolean => {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && code.startsWith('Z_');
};

/**
 * The audit trail: every record of the store that readers apply, in commit
 * order, across the archive and the live segments, with the exact place of
 * each; every unreadable line, and every commit readers do not apply
 * (commit-framing.ts: incomplete, stale), as a problem. Read-only and
 * lockless; an unfinished last line or commit of the live segment is a
 * problem only when no writer holds the lock. A segment that is not a
 * regular file (NOT_A_FILE) and the rest of an archived segment that is not
 * valid gzip (UNPARSABLE_LINE) are problems too, and the history goes on
 * with the next segment; other failures to read are thrown as
 * SessionJournalErrors. `maxLineBytes` comes from the caller, as a Journal
 * hands it to the segment chain: a storage module does not pick the engine's
 * defaults (docs/ARCHITECTURE.md).
 */
export async function* readHistory(dir: string, options: { maxLineBytes: number; maxRecordBytes?: number; segments?: HistorySegment[] }): AsyncGenerator<HistoryItem> {
  const { maxLineBytes } = options;
  const maxRecordBytes = options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  const segments = options.segments ?? listHistorySegments(dir);
  let segment: HistorySegment = segments[0]!;
  const ready: HistoryItem[] = [];
  const framing = new CommitAssembler<FramedItem>(0, {
    applied: (records) => {
      joinParts(records.length, (i) => records[i]!.item.record, maxRecordBytes, {
        whole: (record, first, last) => {
          if (first === last) {
            ready.push(records[first]!.item);
            return;
          }
          const lines = records.slice(first, last + 1).map(({ item }) => ({ record: item.record, raw: item.raw, place: item.place }));
          ready.push({ kind: 'record', record, raw: lines[lines.length - 1]!.raw, place: lines[0]!.place, segment: records[first]!.item.segment, lines });
        },
        broken: (first, last, rejection) => {
          const lines = records.slice(first, last + 1).map(({ item }) => ({ record: item.record, raw: item.raw, place: item.place }));
          for (const line of lines) ready.push({ kind: 'problem', warning: { ...rejection, ...line.place }, segment: records[first]!.item.segment });
          ready.push({ kind: 'parts', lines, segment: records[first]!.item.segment });
        },
      });
    },
    rejected: () => undefined, // its warning says it all
    // Regressions are the chain checker's to explain (src/verify/verify-chain.ts); the rest are the framing's own findings.
    warn: (warning) => warning.code !== WarningCodes.SEQUENCE_REGRESSION && ready.push({ kind: 'problem', warning, segment }),
  });
  for (const [i, current] of segments.entries()) {
    segment = current;
    yield { kind: 'segment', segment };
    let stream: Readable;
    try {
      stream = openSegmentStream(segment);
    } catch (err) {
      if (!(err instanceof SessionJournalError && err.code === ErrorCodes.NOT_A_FILE)) throw err;
      yield { kind: 'problem', segment, warning: { code: WarningCodes.NOT_A_FILE, message: `it is ${String(err.details.kind)}, not a regular file; not read (move it out of the store)`, file: segment.file } };
      continue;
    }
    const lines = splitLines(stream, segment.file, maxLineBytes);
    const decoder = new LineDecoder();
    let lastLine = 0;
    let gzipError: Error | undefined;
    const next = async () => {
      try {
        return await lines.next();
      } catch (err) {
        if (segment.archived && isGzipError(err)) {
          gzipError = err as Error;
          return undefined;
        }
        throw ioError('read', segment.file, err);
      }
    };
    try {
      let step = await next();
      while (step && !step.done) {
        const item = step.value;
        if (item.kind === 'problem') {
          lastLine = item.warning.line ?? lastLine;
          ready.push({ kind: 'problem', warning: item.warning, segment });
          if (item.warning.code === WarningCodes.LINE_TOO_LONG) framing.unreadableLine(item.warning as LinePlace, false);
        } else {
          lastLine = item.place.line;
          const decoded = decoder.decode(item.text);
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
        step = await next();
      }
      if (!step) {
        yield {
          kind: 'problem',
          segment,
          warning: { code: WarningCodes.UNPARSABLE_LINE, message: `archived segment is not valid gzip after this point (${gzipError?.message}); the rest of it is skipped`, file: segment.file, line: lastLine + 1 },
        };
        continue;
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
    } finally {
      await lines.return(undefined as never); // a consumer that stops early: the stream and its descriptor are closed
    }
  }
}

