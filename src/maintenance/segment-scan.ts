import fs from 'node:fs';
import { ioError } from '../errors.js';
import { ROTATE_EVENT, decodeRecord } from '../journal/record-codec.js';
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
}

const CHUNK_BYTES = 1024 * 1024;
const NEWLINE = 0x0a;
const CR = 0x0d;

/**
 * Which lines of a segment are damage. Damage is what the replay skips
 * because the bytes are not a record at all: unparsable text, NUL runs, JSON
 * that is not an object, a broken envelope (including an invalid `ts`), a
 * byte order mark. None of it takes part in the hash chain, so removing it
 * leaves the chain intact. Records replay skips for other reasons (a newer
 * format version, a line over `maxLineBytes`) are kept. Reads `size` bytes
 * of `fd` from the start; never throws on content.
 */
export function scanSegment(fd: number, file: string, maxLineBytes: number, size = fstatSize(fd, file)): SegmentScan {
  const scan: SegmentScan = { file, size, bad: [], kept: [], closed: false };
  const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  let parts: Buffer[] = [];
  let kept = 0; // bytes of the current line held in `parts` (at most maxLineBytes + 1)
  let lineBytes = 0; // bytes of the current line so far, without its newline
  let allNul = true;
  let lastByte = -1;
  let lineStart = 0;
  let line = 0;
  let position = 0;
  while (position < size) {
    const got = readAt(fd, file, buffer, position, Math.min(CHUNK_BYTES, size - position));
    if (got === 0) break;
    let chunk = buffer.subarray(0, got);
    let base = position;
    if (position === 0 && got >= 3 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) {
      scan.bad.push({ line: 1, offset: 0, length: 3, reason: WarningCodes.BOM_IGNORED, message: 'UTF-8 byte order mark at start of file' });
      chunk = chunk.subarray(3);
      base = lineStart = 3;
    }
    let start = 0;
    for (let nl = chunk.indexOf(NEWLINE); ; nl = chunk.indexOf(NEWLINE, start)) {
      const end = nl === -1 ? chunk.length : nl;
      const piece = chunk.subarray(start, end);
      lineBytes += piece.length;
      if (piece.length > 0) {
        lastByte = piece[piece.length - 1]!;
        if (allNul && piece.some((b) => b !== 0)) allNul = false;
      }
      if (kept <= maxLineBytes) {
        const take = piece.subarray(0, Math.min(piece.length, maxLineBytes + 1 - kept));
        parts.push(Buffer.from(take));
        kept += take.length;
      }
      if (nl === -1) break;
      line++;
      classifyLine(scan, Buffer.concat(parts), lineBytes - (lastByte === CR ? 1 : 0), allNul, { line, offset: lineStart, length: lineBytes + 1 }, maxLineBytes);
      parts = [];
      kept = 0;
      lineBytes = 0;
      allNul = true;
      lastByte = -1;
      start = nl + 1;
      lineStart = base + start;
    }
    position += got;
  }
  if (lineBytes > 0) {
    const text = lineBytes <= maxLineBytes ? Buffer.concat(parts).toString('utf8') : undefined;
    const wholeRecord = text !== undefined && decodeRecord(text).ok;
    scan.tail = {
      line: line + 1,
      offset: lineStart,
      length: lineBytes,
      reason: allNul ? WarningCodes.ZERO_FILLED : WarningCodes.INCOMPLETE_TAIL,
      message: allNul ? `file ends in ${lineBytes} NUL bytes with no newline (a zero-filled tail)` : `last ${lineBytes} bytes have no newline${wholeRecord ? ' (a whole record)' : ' (a torn write)'}`,
      wholeRecord,
    };
  }
  return scan;
}

/** `contentBytes`: the line without its newline and a CR before it, as readers measure it. */
function classifyLine(scan: SegmentScan, head: Buffer, contentBytes: number, allNul: boolean, span: { line: number; offset: number; length: number }, maxLineBytes: number): void {
  if (contentBytes === 0) return; // a blank line: ignored by readers, not damage
  if (contentBytes > maxLineBytes) {
    if (allNul) scan.bad.push({ ...span, reason: WarningCodes.ZERO_FILLED, message: `line of ${contentBytes} NUL bytes` });
    else scan.kept.push({ line: span.line, offset: span.offset, reason: WarningCodes.LINE_TOO_LONG, message: `line of ${contentBytes} bytes exceeds maxLineBytes (${maxLineBytes}); left in place` });
    return;
  }
  const decoded = decodeRecord(head.subarray(0, contentBytes).toString('utf8'));
  if (decoded.ok) {
    const next = (decoded.record.payload as { next?: unknown } | null)?.next;
    if (decoded.record.type === ROTATE_EVENT && typeof next === 'number' && Number.isSafeInteger(next)) scan.closed = true;
    return;
  }
  if (decoded.rejection.code === WarningCodes.UNSUPPORTED_VERSION) {
    scan.kept.push({ line: span.line, offset: span.offset, reason: decoded.rejection.code, message: `${decoded.rejection.message}; left in place` });
    return;
  }
  scan.bad.push({ ...span, reason: decoded.rejection.code, message: decoded.rejection.message });
}

export function fstatSize(fd: number, file: string): number {
  try {
    return fs.fstatSync(fd).size;
  } catch (err) {
    throw ioError('fstat', file, err);
  }
}

export function readAt(fd: number, file: string, buffer: Buffer, position: number, length: number): number {
  let total = 0;
  try {
    while (total < length) {
      const n = fs.readSync(fd, buffer, total, length - total, position + total);
      if (n === 0) break;
      total += n;
    }
  } catch (err) {
    throw ioError('read', file, err);
  }
  return total;
}
