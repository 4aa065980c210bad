import fs from 'node:fs';
import { once } from 'node:events';
import { zlib } from '../../lazy.js';
import { ioError } from '../../errors.js';
import { closeQuietly, openStoreFile, writeFully } from './store-files.js';

/**
 * Bytes read per step of a gzip, into one buffer reused for the whole file.
 * Each step is one trip to libuv's thread pool and back through the main
 * thread, which is busy folding while a prefix is compressed: with 64 KiB
 * steps zlib sat waiting for the main thread between steps (0.45x of the
 * replay rate with the archive on; 1 MiB steps: see bench/RESULTS.md).
 * Reusing the buffer leaves zlib's output as the only memory outside the
 * heap that each step makes (see PACE_LEAD_BYTES for why that matters).
 */
const GZIP_READ_BYTES = 1024 * 1024;
/** zlib's output buffer; output is about a third of the input, so a step rarely needs two. */
const GZIP_OUTPUT_BYTES = 512 * 1024;

export interface GzipRangeOptions {
  /** First byte of `source` to compress (default 0). */
  start?: number;
  /** End of the range, exclusive (default: the end of the file). */
  end?: number;
  /** Append to `target` as a further gzip member instead of creating it. */
  append?: boolean;
  /** Stops between steps; the promise then rejects. */
  signal?: AbortSignal;
  /** Called after each step with the bytes of `source` it took. */
  onProgress?: (bytes: number) => void;
}

/**
 * Gzips bytes [start, end) of `source` onto `target`. Level 1: on journal
 * text it compresses about as well as the default, several times faster.
 * Both descriptors are closed before this settles, so on failure the target
 * can be removed.
 */
export async function gzipRange(source: string, target: string, options: GzipRangeOptions = {}): Promise<void> {
  const { start = 0, end, append = false, signal, onProgress } = options;
  const { O_WRONLY, O_APPEND, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
  // Through openStoreFile: a FIFO in the source's place must not block the compactor.
  const input = openStoreFile(source, 'read');
  if (input === undefined) throw ioError('open', source, Object.assign(new Error(`ENOENT: ${source}`), { code: 'ENOENT', path: source }));
  let output: number | undefined;
  const gzip = zlib().createGzip({ level: 1, chunkSize: GZIP_OUTPUT_BYTES });
  // The first failure of reading, compressing or writing; zlib's own errors also reach the callbacks below.
  let failure: unknown;
  gzip.on('error', (err) => (failure ??= err));
  const settled = (run: (callback: (err?: Error | null) => void) => void) =>
    new Promise<void>((resolve, reject) => run((err) => (err || failure ? reject(failure ?? err) : resolve())));
  try {
    const out = (output = fs.openSync(target, O_WRONLY | O_NOFOLLOW | (append ? O_APPEND : O_CREAT | O_EXCL), 0o600));
    gzip.on('data', (chunk: Buffer) => {
      try {
        if (failure === undefined) writeFully(out, chunk);
      } catch (err) {
        failure ??= err;
        gzip.destroy(err as Error); // 'error' ends the waits below
      }
    });
    const buffer = Buffer.allocUnsafeSlow(GZIP_READ_BYTES);
    for (let position = start; end === undefined || position < end; ) {
      signal?.throwIfAborted();
      const got = fs.readSync(input, buffer, 0, Math.min(GZIP_READ_BYTES, (end ?? Infinity) - position), position);
      if (got === 0) break;
      // The callback comes once zlib has taken all of it: the buffer is free again.
      await settled((callback) => gzip.write(buffer.subarray(0, got), callback));
      position += got;
      onProgress?.(got);
    }
    const ended = once(gzip, 'end');
    gzip.end();
    await ended;
    if (failure !== undefined) throw failure;
    const written = output;
    output = undefined;
    fs.closeSync(written); // a failed close may be the only report of a failed write
  } finally {
    gzip.destroy();
    closeQuietly(input);
    if (output !== undefined) closeQuietly(output);
  }
}
