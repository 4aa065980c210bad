import { decodeLine, decodeRecord, rotationTarget } from '../journal/record-codec.js';
import { SegmentReader } from '../journal/segment-reader.js';
import { fdSize, readFully, segmentNumberOf } from '../journal/store-files.js';
import { WarningCodes, type WarningCode } from '../journal/warnings.js';

/** A run of bytes that no reader can use: one line with its newline, a BOM, or an unfinished tail. */
export interface BadSpan {
  /** 1-based line number, as replay warnings count them. */
  line: number;
  /** Byte offset of the first byte. */
  offset: number;
  /** Bytes, including the line's newline when it has one. */
  length: number;
  reason: WarningCode;
  message: string;
}

/** A line that replay skips but that is not damage: another version's or a larger-limit writer's record. */
export interface KeptLine {
  line: number;
  offset: number;
  reason: WarningCode;
  message: string;
}

export interface SegmentScan {
  file: string;
  /** Bytes scanned (the file size when the scan started). */
  size: number;
  /** Complete lines (and a BOM) to quarantine. */
  bad: BadSpan[];
  /** Skipped lines left in place on purpose. */
  kept: KeptLine[];
  /** Bytes after the last newline: torn, or an append in progress. */
  tail?: BadSpan & { wholeRecord: boolean };
  /** True when a valid rotation marker closes the segment: no writer appends to it any more. */
  closed: boolean;
  /** Where the last complete line starts (a damaged rotation marker is reported there). */
  lastLine?: { line: number; offset: number };
}

const NUL_CHECK_BYTES = 64 * 1024;

/**
 * Which lines of a segment are damage. Damage is what the replay skips
 * because the bytes are not a record at all: unparsable text, NUL runs, JSON
 * that is not an object, a broken envelope (including an invalid `ts`), a
 * byte order mark. None of it takes part in the hash chain, so removing it
 * leaves the chain intact. Records replay skips for other reasons (a newer
 * format version, a line over `maxLineBytes`) are kept. Reads `size` bytes
 * of `fd` with the replay's own line reader; never throws on content.
 */
export function scanSegment(fd: number, file: string, maxLineBytes: number, size = fdSize(fd, file)): SegmentScan {
  const scan: SegmentScan = { file, size, bad: [], kept: [], closed: false };
  const reader = new SegmentReader(fd, file, maxLineBytes, (w) => {
    if (w.code === WarningCodes.BOM_IGNORED) scan.bad.push({ line: 1, offset: 0, length: 3, reason: w.code, message: 'UTF-8 byte order mark at start of file' });
  });
  reader.onTooLong = (place, end) => {
    const content = contentBytes(fd, file, place.offset, end);
    if (allNul(fd, file, place.offset, content)) scan.bad.push({ line: place.line, offset: place.offset, length: end - place.offset, reason: WarningCodes.ZERO_FILLED, message: `line of ${content} NUL bytes` });
    else scan.kept.push({ line: place.line, offset: place.offset, reason: WarningCodes.LINE_TOO_LONG, message: `line of ${content} bytes exceeds maxLineBytes (${maxLineBytes}); left in place` });
  };
  const number = segmentNumberOf(file) ?? 0;
  reader.readTo(size, (text, place, end) => {
    scan.lastLine = { line: place.line, offset: place.offset };
    const decoded = decodeLine(text);
    if (decoded.ok) {
      if (rotationTarget(decoded.record, number) !== undefined) scan.closed = true;
    } else if (decoded.rejection.code === WarningCodes.UNSUPPORTED_VERSION) {
      scan.kept.push({ ...place, reason: decoded.rejection.code, message: `${decoded.rejection.message}; left in place` });
    } else {
      scan.bad.push({ line: place.line, offset: place.offset, length: end - place.offset, reason: decoded.rejection.code, message: decoded.rejection.message });
    }
    return 'continue';
  });
  const tailBytes = size - reader.offset;
  if (tailBytes > 0) {
    const nul = allNul(fd, file, reader.offset, tailBytes);
    const wholeRecord = !nul && tailBytes <= maxLineBytes && decodeRecord(reader.peekTail(tailBytes).toString('utf8')).ok;
    scan.tail = {
      line: reader.line + 1,
      offset: reader.offset,
      length: tailBytes,
      reason: nul ? WarningCodes.ZERO_FILLED : WarningCodes.INCOMPLETE_TAIL,
      message: nul ? `file ends in ${tailBytes} NUL bytes with no newline (a zero-filled tail)` : `last ${tailBytes} bytes have no newline${wholeRecord ? ' (a whole record)' : ' (a torn write)'}`,
      wholeRecord,
    };
  }
  return scan;
}

/** The line's bytes without its newline and a CR before it, as readers measure it. */
function contentBytes(fd: number, file: string, offset: number, end: number): number {
  const last = Buffer.alloc(1);
  const hasCr = end - offset >= 2 && readFully(fd, file, last, end - 2, 1) === 1 && last[0] === 0x0d;
  return end - offset - 1 - (hasCr ? 1 : 0);
}

/** True when `length` bytes at `offset` are all NUL (read in small chunks: the run may be long). */
function allNul(fd: number, file: string, offset: number, length: number): boolean {
  const buffer = Buffer.allocUnsafe(Math.min(NUL_CHECK_BYTES, Math.max(length, 1)));
  for (let done = 0; done < length; ) {
    const got = readFully(fd, file, buffer, offset + done, Math.min(buffer.length, length - done));
    if (got === 0) return false;
    for (let i = 0; i < got; i++) if (buffer[i] !== 0) return false;
    done += got;
  }
  return length > 0;
}
