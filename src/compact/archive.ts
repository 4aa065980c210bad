import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { ioError } from '../errors.js';
import { closeQuietly, fsyncDirSync, listStore, prepareStoreDir, segmentName } from '../journal/store-files.js';
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

const GZIP_CHUNK_BYTES = 64 * 1024;

/**
 * Gzips bytes [start, end) of `source` onto `target` (created, or appended to
 * as a further gzip member). Level 1: on journal text it compresses about as
 * well as the default, several times faster. On failure the target is
 * closed before this rejects, so it can be removed.
 */
async function gzipRange(source: string, target: string, start: number, end: number | undefined, append: boolean, signal?: AbortSignal): Promise<void> {
  const output = fs.createWriteStream(target, { flags: append ? 'a' : 'wx', mode: 0o600 });
  try {
    const input = fs.createReadStream(source, { start, ...(end !== undefined && { end: end - 1 }), highWaterMark: GZIP_CHUNK_BYTES });
    await pipeline(input, zlib.createGzip({ level: 1, chunkSize: GZIP_CHUNK_BYTES }), output, ...(signal ? [{ signal }] : []));
  } catch (err) {
    // The stream opens its file asynchronously: wait until it has closed.
    if (!output.closed) await new Promise<void>((resolve) => output.once('close', () => resolve()));
    throw err;
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
 * Gzips what every segment holds when it is made, one after the other, while
 * the compactor folds the journal: the fold is CPU on the main thread, zlib
 * runs on libuv's thread pool, and a segment's bytes never change once
 * written. The archive step then costs only what was appended since.
 */
export class PrefixArchiver {
  private readonly jobs = new Map<string, { prefix: CompressedPrefix; source: string; done: Promise<unknown> }>();
  private readonly abort = new AbortController();

  /** `sizes`: each segment's size, measured under the journal lock (see segmentSizes). */
  constructor(dir: string, sizes: ReadonlyMap<string, number>) {
    let previous: Promise<unknown> = Promise.resolve();
    for (const [name, end] of sizes) {
      const source = path.join(dir, name);
      if (end === 0) continue;
      // In the store directory (one file system with archive/, which is made only when archiving).
      const prefix = { tempPath: tempNameFor(path.join(dir, `${name}.gz`)), end };
      // Resolves to the failure, if any: it is reported when the prefix is taken.
      const done = previous.then(async () => {
        if (this.abort.signal.aborted) return new Error('compaction stopped');
        try {
          await gzipRange(source, prefix.tempPath, 0, end, false, this.abort.signal);
          return undefined;
        } catch (err) {
          removeQuietly(prefix.tempPath);
          return err;
        }
      });
      previous = done;
      this.jobs.set(name, { prefix, source, done });
    }
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
