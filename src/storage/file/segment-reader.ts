import { BOM_BYTES, NEWLINE, contentEnd, startsWithBom } from './line-framing.js';
import { fdSize, readFully } from './store-files.js';
import { WarningCodes, type JournalWarning } from '../../engine/warnings.js';
import type { LinePlace } from '../../engine/line-place.js';

export type { LinePlace } from '../../engine/line-place.js';

/** `end`: the offset just past the line's newline. Return 'stop' to end the read right after this line (a rotation marker). */
export type LineHandler = (text: string, place: LinePlace, end: number) => 'continue' | 'stop';

const INITIAL_BUFFER_BYTES = 64 * 1024;
const MAX_CHUNK_BYTES = 1024 * 1024;

/**
 * Reads complete lines of one segment file from a remembered offset, so a
 * catch-up costs only the bytes appended since the last one. A last line with
 * no newline yet is never consumed: it may be another process's append in
 * progress. Lines longer than `maxLineBytes` are skipped without buffering.
 */
export class SegmentReader {
  /** Byte offset just past the last consumed line. */
  offset = 0;
  /** Lines consumed so far (the next line is number `line + 1`). */
  line = 0;
  /** Offset of an incomplete tail already reported, so it is reported once. */
  tailReportedAt: number | undefined;
  private buffer: Buffer;
  private oversize: { place: LinePlace; scannedTo: number } | undefined;
  /** Told the offset after each chunk (progress of a long replay). */
  onChunk: ((offset: number) => void) | undefined;
  /** Told of each line skipped for its length, before it is reported: it is still a line of its commit (commit-framing.ts). */
  onSkippedLine: ((place: LinePlace) => void) | undefined;
  /** Told of each line over maxLineBytes (with the offset past its newline) instead of a LINE_TOO_LONG warning. */
  onTooLong: ((place: LinePlace, end: number) => void) | undefined;

  constructor(
    readonly fd: number,
    readonly file: string,
    private readonly maxLineBytes: number,
    private readonly warn: (w: JournalWarning) => void,
  ) {
    this.buffer = Buffer.allocUnsafe(Math.min(INITIAL_BUFFER_BYTES, maxLineBytes + 2));
  }

  /** Current file size (one fstat: the cheap check before a catch-up). */
  size(): number {
    return fdSize(this.fd, this.file);
  }

  /** True when bytes past the last complete line exist (torn or in progress). */
  hasIncompleteTail(size = this.size()): boolean {
    return size > this.offset;
  }

  /**
   * Feeds every complete line in [offset, end) to `onLine`. Returns true when
   * the handler stopped the read.
   */
  readTo(end: number, onLine: LineHandler): boolean {
    if (this.offset === 0 && end >= 3) this.skipByteOrderMark();
    // Large reads (replay at open) go in 1 MiB chunks; catch-ups keep the small buffer.
    if (this.buffer.length < MAX_CHUNK_BYTES && end - this.offset > this.buffer.length) this.buffer = Buffer.allocUnsafe(MAX_CHUNK_BYTES);
    while (this.offset < end) {
      if (this.oversize) {
        if (!this.skipOversizeLine(end)) return false;
        continue;
      }
      const want = Math.min(end - this.offset, this.buffer.length);
      const got = this.readAt(this.offset, want);
      if (got === 0) return false;
      const chunk = this.buffer.subarray(0, got);
      let start = 0;
      for (let nl = chunk.indexOf(NEWLINE, start); nl !== -1; nl = chunk.indexOf(NEWLINE, start)) {
        const lineStart = start;
        start = nl + 1;
        this.line++;
        const lineEnd = contentEnd(chunk, lineStart, nl);
        if (lineEnd === lineStart) continue; // blank line: nothing to apply or report
        const place = { file: this.file, line: this.line, offset: this.offset + lineStart };
        if (lineEnd - lineStart > this.maxLineBytes) {
          this.reportTooLong(place, lineEnd - lineStart, this.offset + start);
          continue;
        }
        if (onLine(chunk.toString('utf8', lineStart, lineEnd), place, this.offset + start) === 'stop') {
          this.offset += start;
          return true;
        }
      }
      if (start > 0) {
        this.offset += start;
        this.onChunk?.(this.offset);
        continue;
      }
      // No newline in the whole chunk.
      if (this.offset + got >= end) return false; // incomplete tail: wait for its newline
      if (this.buffer.length > this.maxLineBytes) {
        this.oversize = { place: { file: this.file, line: this.line + 1, offset: this.offset }, scannedTo: this.offset + got };
      } else {
        this.buffer = Buffer.allocUnsafe(Math.min(this.buffer.length * 4, Math.max(MAX_CHUNK_BYTES, this.maxLineBytes + 2)));
      }
    }
    return false;
  }

  /** Reads up to `max` bytes at the current offset (what an unfinished tail holds). */
  peekTail(max: number): Buffer {
    const bytes = Buffer.allocUnsafe(Math.max(0, Math.min(max, this.size() - this.offset)));
    return bytes.subarray(0, readFully(this.fd, this.file, bytes, this.offset, bytes.length));
  }

  private reportTooLong(place: LinePlace, bytes: number, end: number): void {
    this.onSkippedLine?.(place);
    if (this.onTooLong) return this.onTooLong(place, end);
    if (place.offset === this.tailReportedAt) return;
    this.warn({ code: WarningCodes.LINE_TOO_LONG, message: `line of ${bytes} bytes exceeds maxLineBytes (${this.maxLineBytes}); skipped`, ...place });
  }

  /** Goes back to a line start already read (the file became shorter than what was read past it). */
  rewindTo(offset: number, line: number): void {
    this.offset = offset;
    this.line = line;
    this.oversize = undefined;
    this.tailReportedAt = undefined;
  }

  /** Moves past bytes this process just wrote itself (its own committed lines). */
  skip(bytes: number, lines: number): void {
    this.offset += bytes;
    this.line += lines;
  }

  private skipByteOrderMark(): void {
    const got = this.readAt(0, BOM_BYTES);
    if (got === BOM_BYTES && startsWithBom(this.buffer)) {
      this.offset = BOM_BYTES;
      this.warn({ code: WarningCodes.BOM_IGNORED, message: 'UTF-8 byte order mark at start of file ignored (written by an editor?)', file: this.file, line: 1, offset: 0 });
    }
  }

  /** Scans forward for the end of an over-long line; true once it is passed. */
  private skipOversizeLine(end: number): boolean {
    const state = this.oversize!;
    while (state.scannedTo < end) {
      const got = this.readAt(state.scannedTo, Math.min(end - state.scannedTo, this.buffer.length));
      if (got === 0) return false;
      const nl = this.buffer.subarray(0, got).indexOf(NEWLINE);
      if (nl !== -1) {
        const next = state.scannedTo + nl + 1;
        this.reportTooLong(state.place, next - 1 - state.place.offset, next);
        this.offset = next;
        this.line++;
        this.oversize = undefined;
        return true;
      }
      state.scannedTo += got;
    }
    return false;
  }

  private readAt(position: number, length: number): number {
    return readFully(this.fd, this.file, this.buffer, position, length);
  }
}
