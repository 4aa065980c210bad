import type { Readable } from 'node:stream';
import { BOM_BYTES, NEWLINE, isCr, startsWithBom } from './line-framing.js';
import type { LinePlace } from './segment-reader.js';
import { WarningCodes, type JournalWarning } from '../../engine/warnings.js';

export type LineItem = { kind: 'line'; text: string; place: LinePlace } | { kind: 'problem'; warning: JournalWarning };


/**
 * Splits a byte stream (a file, or a gunzipped archive) into lines with
 * 1-based line numbers and byte offsets of the uncompressed content. Lines
 * longer than `maxLineBytes` become LINE_TOO_LONG problems without being
 * kept whole; a BOM at the start is reported and ignored. The bytes after
 * the last newline are returned as `tail` (an unfinished line, or nothing).
 */
export async function* splitLines(stream: Readable, file: string, maxLineBytes: number): AsyncGenerator<LineItem, { tailBytes: number; tailOffset: number; lines: number }> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let lineStart = 0;
  let line = 0;
  let position = 0;
  let first = true;
  for await (const raw of stream) {
    let chunk = raw as Buffer;
    if (first) {
      first = false;
      if (startsWithBom(chunk)) {
        yield { kind: 'problem', warning: { code: WarningCodes.BOM_IGNORED, message: 'UTF-8 byte order mark at start of file ignored', file, line: 1, offset: 0 } };
        chunk = chunk.subarray(BOM_BYTES);
        position = lineStart = BOM_BYTES;
      }
    }
    let start = 0;
    for (let nl = chunk.indexOf(NEWLINE); nl !== -1; nl = chunk.indexOf(NEWLINE, start)) {
      line++;
      // Measured as every reader measures a line: without the CR of a CRLF (which may end the previous chunk).
      const lastByte = nl > start ? chunk[nl - 1] : pending[pending.length - 1]?.[pending[pending.length - 1]!.length - 1];
      const bytes = pendingBytes + nl - start - (isCr(lastByte) && pendingBytes + nl - start > 0 ? 1 : 0);
      const place = { file, line, offset: lineStart };
      if (bytes > maxLineBytes) {
        yield { kind: 'problem', warning: { code: WarningCodes.LINE_TOO_LONG, message: `line of ${bytes} bytes exceeds maxLineBytes (${maxLineBytes}); skipped`, ...place } };
      } else {
        let buf = pendingBytes > 0 ? Buffer.concat([...pending, chunk.subarray(start, nl)]) : chunk.subarray(start, nl);
        if (buf.length > 0 && isCr(buf[buf.length - 1])) buf = buf.subarray(0, buf.length - 1);
        if (buf.length > 0) yield { kind: 'line', text: buf.toString('utf8'), place };
      }
      pending = [];
      pendingBytes = 0;
      start = nl + 1;
      lineStart = position + start;
    }
    const rest = chunk.subarray(start);
    // Keep at most maxLineBytes + 2 of an unfinished line: enough to know it is too long even after a CR comes off.
    if (pendingBytes <= maxLineBytes + 1) pending.push(Buffer.from(rest));
    pendingBytes += rest.length;
    position += chunk.length;
  }
  return { tailBytes: pendingBytes, tailOffset: lineStart, lines: line };
}
