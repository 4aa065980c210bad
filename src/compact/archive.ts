import fs from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import zlib from 'node:zlib';
import { ioError } from '../errors.js';
import { closeQuietly, fsyncDirSync, listStore, prepareStoreDir, segmentName, writeFully } from '../journal/store-files.js';
import { tempNameFor } from '../snapshot/snapshot-writer.js';

export interface ArchivePolicy {
  /** Keep folded files (gzipped) in `archive/`; false deletes them instead. Default true. */
  keep: boolean;
  /** Archived files older than this are deleted (default 30 days). */
  maxAgeMs: number;
  /** At most this many archived files are kept, newest first (default 1000). */
  maxFiles: number;
}

export const DEFAULT_ARCHIVE_POLICY: ArchivePolicy = { keep: true, maxAgeMs: 30 * 24 * 3600 * 1000, maxFiles: 1000 };

export const archiveDir = (dir: string): string => path.join(dir, 'archive');

/**
 * Bytes read per step of a gzip, into one buffer reused for the whole file.
 * Each step is one trip to libuv's thread pool and back through the main
 * thread, which is busy folding while a prefix is compressed: with 64 KiB
 * steps zlib sat waiting for the main thread between steps (0.45x of the
 * replay rate with the archive on; 1 MiB steps: see bench/RESULTS.md).
 * Reusing the buffer matters as much: a fresh one per step outlives a few
 * scavenges of the fold, is promoted, and waits for a full GC, which let
 * peak RSS wander by 20 MiB from run to run.
 */
const GZIP_READ_BYTES = 1024 * 1024;
/** zlib's output buffer; output is about a third of the input, so a step rarely needs two. */
const GZIP_OUTPUT_BYTES = 512 * 1024;

/**
 * Gzips bytes [start, end) of `source` onto `target` (created, or appended to
 * as a further gzip member). Level 1: on journal text it compresses about as
 * well as the default, several times faster. Both descriptors are closed
 * before this settles, so on failure the target can be removed.
 */
async function gzipRange(source: string, target: string, start: number, end: number | undefined, append: boolean, signal?: AbortSignal, onProgress?: (bytes: number) => void): Promise<void> {
  const { O_RDONLY, O_WRONLY, O_APPEND, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
  const input = fs.openSync(source, O_RDONLY | O_NOFOLLOW);
  let output: number | undefined;
  const gzip = zlib.createGzip({ level: 1, chunkSize: GZIP_OUTPUT_BYTES });
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

function removeQuietly(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch {
    // never created, or already gone
  }
}

/** The first `end` bytes of a segment, already gzipped into `tempPath`. */
export interface CompressedPrefix {
  tempPath: string;
  end: number;
}

/**
 * How far the compactor's fold may run ahead of the gzip. A fold left to run
 * ahead finishes first and leaves the gzip running alone, with the main
 * thread idle: V8 then has no reason to collect, and zlib's spent output
 * buffers (memory outside the heap) piled up by 20-30 MiB before a GC did.
 * The gzip is the slower of the two, so holding the fold to its pace costs
 * no time, and the fold's own allocations keep collections going.
 */
const PACE_LEAD_BYTES = 4 * 1024 * 1024;

/**
 * Gzips what every segment holds when it is made, one after the other, while
 * the compactor folds the journal: the fold is CPU on the main thread, zlib
 * runs on libuv's thread pool, and a segment's bytes never change once
 * written. The archive step then costs only what was appended since.
 */
export class PrefixArchiver {
  private readonly jobs = new Map<string, { prefix: CompressedPrefix; source: string; done: Promise<unknown> }>();
  private readonly abort = new AbortController();
  /** Bytes of the prefixes compressed so far (a failed or stopped job counts as done), and what waits on them. */
  private compressed = 0;
  private readonly total: number;
  private waiting: Array<{ until: number; resolve: () => void }> = [];

  /** `sizes`: each segment's size, measured under the journal lock (see segmentSizes). */
  constructor(dir: string, sizes: ReadonlyMap<string, number>) {
    let previous: Promise<unknown> = Promise.resolve();
    let total = 0;
    for (const [name, end] of sizes) {
      const source = path.join(dir, name);
      if (end === 0) continue;
      total += end;
      // In the store directory (one file system with archive/, which is made only when archiving).
      const prefix = { tempPath: tempNameFor(path.join(dir, `${name}.gz`)), end };
      // Resolves to the failure, if any: it is reported when the prefix is taken.
      const done = previous.then(async () => {
        let progressed = 0;
        const advance = (bytes: number) => {
          progressed += bytes;
          this.advance(bytes);
        };
        try {
          this.abort.signal.throwIfAborted();
          await gzipRange(source, prefix.tempPath, 0, end, false, this.abort.signal, advance);
          return undefined;
        } catch (err) {
          removeQuietly(prefix.tempPath);
          return err;
        } finally {
          advance(end - progressed);
        }
      });
      previous = done;
      this.jobs.set(name, { prefix, source, done });
    }
    this.total = total;
  }

  private advance(bytes: number): void {
    this.compressed += bytes;
    const ready = this.waiting.filter((w) => w.until <= this.compressed);
    if (ready.length === 0) return;
    this.waiting = this.waiting.filter((w) => w.until > this.compressed);
    for (const w of ready) w.resolve();
  }

  /**
   * For the fold's replay (Journal.open's replayPace): resolves once the gzip
   * is within PACE_LEAD_BYTES of `bytesReplayed`; undefined when it already is.
   * Both go through the segments in the same order.
   */
  paceTo(bytesReplayed: number): Promise<void> | undefined {
    const until = Math.min(bytesReplayed, this.total) - PACE_LEAD_BYTES;
    if (this.compressed >= until) return undefined;
    return new Promise((resolve) => this.waiting.push({ until, resolve }));
  }

  /** The compressed prefix of `name` once ready (undefined: none was made); IO_ERROR if making it failed. */
  async take(name: string): Promise<CompressedPrefix | undefined> {
    const job = this.jobs.get(name);
    if (!job) return undefined;
    this.jobs.delete(name);
    const failure = await job.done;
    if (failure !== undefined) throw ioError('archive', job.source, failure);
    return job.prefix;
  }

  /** Stops what is running and removes every prefix not taken. */
  async dispose(): Promise<void> {
    this.abort.abort();
    for (const job of this.jobs.values()) {
      await job.done;
      removeQuietly(job.prefix.tempPath);
    }
    this.jobs.clear();
  }
}

/**
 * The size of every segment, for PrefixArchiver. Call it under the journal
 * lock: a writer whose write fails cuts its partial bytes back before it
 * releases the lock, so only then is every byte below these sizes final.
 */
export function segmentSizes(dir: string): Map<string, number> {
  const sizes = new Map<string, number>();
  for (const n of listStore(dir).segments) {
    try {
      sizes.set(segmentName(n), fs.lstatSync(path.join(dir, segmentName(n))).size);
    } catch {
      // archived meanwhile: nothing to compress ahead
    }
  }
  return sizes;
}

/**
 * Moves one folded store file into the archive as gzip: to a unique temporary
 * file (after the prefix already compressed, as a second gzip member), fsync,
 * rename, fsync the archive directory, and only then remove the original. A
 * crash at any point leaves the original in place.
 */
export async function archiveFile(dir: string, name: string, policy: ArchivePolicy, prefix?: CompressedPrefix): Promise<void> {
  const source = path.join(dir, name);
  if (policy.keep) {
    const target = archiveDir(dir);
    const finalPath = path.join(target, `${name}.gz`);
    const tempPath = prefix?.tempPath ?? tempNameFor(finalPath);
    try {
      prepareStoreDir(target, true);
      await gzipRange(source, tempPath, prefix?.end ?? 0, undefined, prefix !== undefined);
      const fd = fs.openSync(tempPath, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      try {
        fs.fsyncSync(fd);
      } finally {
        closeQuietly(fd);
      }
      fs.renameSync(tempPath, finalPath);
      fsyncDirSync(target);
    } catch (err) {
      removeQuietly(tempPath); // or later, as an abandoned temp file
      throw ioError('archive', source, err);
    }
  } else if (prefix) {
    removeQuietly(prefix.tempPath);
  }
  try {
    fs.unlinkSync(source);
    fsyncDirSync(dir);
  } catch (err) {
    throw ioError('unlink', source, err);
  }
}

/** Applies age and count retention to the archive; returns the number of files deleted. */
export function pruneArchive(dir: string, policy: ArchivePolicy, now: number): number {
  const target = archiveDir(dir);
  let names: string[];
  try {
    names = fs.readdirSync(target).filter((n) => n.endsWith('.ndjson.gz'));
  } catch {
    return 0;
  }
  try {
    const files = names
      .map((name) => ({ name, mtime: fs.lstatSync(path.join(target, name)).mtimeMs }))
      .sort((a, b) => b.mtime - a.mtime || b.name.localeCompare(a.name));
    let deleted = 0;
    files.forEach((f, i) => {
      if (i >= policy.maxFiles || now - f.mtime > policy.maxAgeMs) {
        fs.unlinkSync(path.join(target, f.name));
        deleted++;
      }
    });
    return deleted;
  } catch (err) {
    throw ioError('archive retention', target, err);
  }
}
