import fs from 'node:fs';
import path from 'node:path';
import { ioError } from '../../errors.js';
import { listStore, removeQuietly, segmentName } from './store-files.js';
import { archivedName, tempNameFor } from './store-layout.js';
import { gzipRange } from './gzip-range.js';

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
 * Holding the fold to the gzip's pace costs no time (the compaction waits
 * for the gzip anyway), and the fold's own allocations keep collections
 * going.
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
      const prefix = { tempPath: tempNameFor(path.join(dir, archivedName(name))), end };
      // Resolves to the failure, if any: it is reported when the prefix is taken.
      const done = previous.then(async () => {
        let progressed = 0;
        const advance = (bytes: number) => {
          progressed += bytes;
          this.advance(bytes);
        };
        try {
          this.abort.signal.throwIfAborted();
          await gzipRange(source, prefix.tempPath, { end, signal: this.abort.signal, onProgress: advance });
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
