import { zlib } from '../../lazy.js';
import { BOM_BYTES, NEWLINE, contentEnd, startsWithBom } from './line-framing.js';
import type { LinePlace } from './segment-reader.js';

/** What the line splitter left after the last newline: a tail without one (torn), or nothing. */
export interface BufferTail {
  /** Lines seen (the tail, if any, is line `lines + 1`). */
  lines: number;
  /** Offset of the bytes after the last newline, and how many there are. */
  offset: number;
  bytes: number;
}

/**
 * Splits a whole file held in memory (a gunzipped archive member) into lines
 * the way SegmentReader splits a live segment: a leading byte order mark is
 * skipped, CRLF read as LF, blank lines ignored, a line over `maxLineBytes`
 * handed to `onTooLong` instead, and a last line without a newline left as the
 * tail. Either handler may return 'stop' to end the split after its line.
 */
export function splitBufferLines(
  bytes: Buffer,
  file: string,
  maxLineBytes: number,
  onLine: (text: string, place: LinePlace) => 'continue' | 'stop',
  onTooLong: (place: LinePlace, bytes: number) => 'continue' | 'stop',
): BufferTail {
  let start = startsWithBom(bytes) ? BOM_BYTES : 0;
  let line = 0;
  for (let nl = bytes.indexOf(NEWLINE, start); nl !== -1; start = nl + 1, nl = bytes.indexOf(NEWLINE, start)) {
    line++;
    const end = contentEnd(bytes, start, nl);
    if (end === start) continue;
    const place = { file, line, offset: start };
    const verdict = end - start > maxLineBytes ? onTooLong(place, end - start) : onLine(bytes.toString('utf8', start, end), place);
    if (verdict === 'stop') return { lines: line, offset: nl + 1, bytes: 0 };
  }
  return { lines: line, offset: start, bytes: bytes.length - start };
}

/**
 * Gunzips an archived file whole; if it is damaged, what can be read of it:
 * the longest prefix of the compressed bytes that still inflates (found by
 * bisection, so a damaged archive costs a few inflations, only on this rare
 * path). `damaged` is zlib's reason when the file did not inflate whole.
 */
export function gunzipReadable(compressed: Buffer, maxOutputLength?: number): { bytes: Buffer; damaged?: string } {
  const options = maxOutputLength === undefined ? {} : { maxOutputLength };
  try {
    return { bytes: zlib().gunzipSync(compressed, options) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw err;
    const damaged = (err as Error).message;
    const partial = (length: number): Buffer | undefined => {
      try {
        return zlib().gunzipSync(compressed.subarray(0, length), { ...options, finishFlush: zlib().constants.Z_SYNC_FLUSH });
      } catch {
        return undefined;
      }
    };
    let best: Buffer = Buffer.alloc(0);
    for (let lo = 0, hi = compressed.length; lo < hi; ) {
      const mid = Math.ceil((lo + hi) / 2);
      const out = partial(mid);
      if (out) {
        best = out;
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    return { bytes: best, damaged };
  }
}
