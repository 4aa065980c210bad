import fs from 'node:fs';
import path from 'node:path';
import { SegmentReader, type LinePlace } from './segment-reader.js';
import { closeQuietly, fdSize, openStoreFile, readFully, removeQuietly, segmentNumberOf } from './store-files.js';
import { WarningCodes, type JournalWarning, type WarningCode } from '../../engine/warnings.js';
import { QUARANTINE_DIR, itemsOf, keptBase, writeQuarantine, type QuarantineItem } from './quarantine.js';
import type { CopySource } from './file-copy.js';
import type { BadSpan } from './segment-scan.js';

/**
 * Replay warnings that name one line the fold did not take: not a record at
 * all, a record of another version or namespace, or one the reducer rejects.
 * (Commits the framing rejects are not here: their writer wrote them again,
 * or never acknowledged them.)
 */
const UNFOLDED_CODES: ReadonlySet<string> = new Set<WarningCode>([
  WarningCodes.UNPARSABLE_LINE,
  WarningCodes.ZERO_FILLED,
  WarningCodes.NOT_AN_OBJECT,
  WarningCodes.INVALID_ENVELOPE,
  WarningCodes.UNSUPPORTED_VERSION,
  WarningCodes.UNKNOWN_EVENT_TYPE,
  WarningCodes.INVALID_DATE,
  WarningCodes.INVALID_PAYLOAD,
  WarningCodes.LINE_TOO_LONG,
  WarningCodes.INCOMPLETE_TAIL,
  WarningCodes.INCOMPLETE_RECORD,
]);

/** What one segment's kept-aside lines became. Paths are relative to the store directory. */
export interface KeptFile {
  file: string;
  quarantine: string;
  index: string;
  items: QuarantineItem[];
  /** False when an earlier, interrupted compaction had already kept this segment's lines aside. */
  written: boolean;
}

/** Writers begin every record so (record-codec.ts `encodeRecord`); a line that does not is no record of ours. */
const RECORD_START = Buffer.from('{"v":');

/**
 * True when the line at `offset` of `file` begins like a record a writer
 * wrote. A line over the compaction's limit that does (a writer with a larger
 * `maxLineBytes`) must not be folded away: the writers apply it. One that does
 * not (a runaway log line, a file concatenated into the store) is garbage.
 */
export function looksLikeRecord(file: string, offset: number): boolean {
  const fd = openStoreFile(file, 'read');
  if (fd === undefined) return false;
  try {
    const head = Buffer.alloc(RECORD_START.length);
    return readFully(fd, file, head, offset, head.length) === head.length && head.equals(RECORD_START);
  } finally {
    closeQuietly(fd); // only read
  }
}

/**
 * The lines of the folded segments that the fold did not take, noted from
 * the replay's warnings, copied aside verbatim into the quarantine before the
 * segments are archived, so that neither garbage nor a record nobody here
 * can read is folded away, and neither stops the compaction.
 */
export class UnfoldedLines {
  private readonly byFile = new Map<string, Map<number, { line: number; reason: WarningCode; message: string }>>();

  /** Takes every replay warning; keeps those that name an unfolded line of a segment. */
  note(w: JournalWarning): void {
    if (!UNFOLDED_CODES.has(w.code) || w.file === undefined || w.line === undefined || w.offset === undefined) return;
    if (segmentNumberOf(w.file) === undefined) return;
    const lines = this.byFile.get(w.file) ?? new Map();
    if (!lines.has(w.offset)) lines.set(w.offset, { line: w.line, reason: w.code, message: w.message });
    this.byFile.set(w.file, lines);
  }

  /**
   * Copies the noted lines of every segment numbered below `below` to
   * `quarantine/<segment>.kept.bad`, indexed by `<segment>.kept.json`
   * (file, line, offset, length, reason: provenance). A segment whose index
   * already exists was kept aside by an earlier compaction that died before
   * archiving it: it is not copied twice.
   */
  keepAside(dir: string, below: number, maxLineBytes: number, stamp: string): KeptFile[] {
    const kept: KeptFile[] = [];
    for (const [file, lines] of [...this.byFile].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (segmentNumberOf(file)! >= below) continue;
      const name = path.basename(file);
      const base = keptBase(name);
      const rel = (ext: string) => path.join(QUARANTINE_DIR, `${base}${ext}`);
      if (fs.existsSync(path.join(dir, rel('.json')))) {
        kept.push({ file: name, quarantine: rel('.bad'), index: rel('.json'), items: [], written: false });
        continue;
      }
      const written = copyLines(dir, path.join(dir, name), lines, maxLineBytes, stamp);
      if (written) kept.push({ file: name, quarantine: rel('.bad'), index: rel('.json'), items: written, written: true });
    }
    return kept;
  }
}

function copyLines(dir: string, file: string, wanted: Map<number, { line: number; reason: WarningCode; message: string }>, maxLineBytes: number, stamp: string): QuarantineItem[] | undefined {
  const fd = openStoreFile(file, 'read');
  if (fd === undefined) return undefined;
  const temps: string[] = [];
  try {
    const size = fdSize(fd, file);
    const spans: BadSpan[] = [];
    const take = (place: LinePlace, end: number) => {
      const w = wanted.get(place.offset);
      if (w) spans.push({ line: place.line, offset: place.offset, length: end - place.offset, reason: w.reason, message: w.message });
    };
    // The replay's own line reader, so offsets and line numbers are the warnings'.
    const reader = new SegmentReader(fd, file, maxLineBytes, () => undefined);
    reader.onTooLong = take;
    reader.readTo(size, (_text, place, end) => {
      take(place, end);
      return 'continue';
    });
    if (spans.length === 0) return undefined;
    const items = itemsOf(path.basename(file), spans);
    const source: CopySource = { fd, file, buffer: Buffer.allocUnsafe(1024 * 1024) };
    writeQuarantine({ dir, name: path.basename(file), stamp, bytesBefore: size, bytesAfter: size, items, by: 'compaction' }, source, temps);
    temps.length = 0;
    return items;
  } finally {
    closeQuietly(fd); // only read
    for (const t of temps) removeQuietly(t);
  }
}
