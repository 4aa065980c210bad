import fs from 'node:fs';
import path from 'node:path';
import { ioError } from '../../errors.js';
import { archiveDir, closeQuietly, fsyncDirSync, prepareStoreDir, readStoreSubdir, removeQuietly } from './store-files.js';
import { archivedName, isArchivedName, tempNameFor } from './store-layout.js';
import { gzipRange } from './gzip-range.js';
import type { CompressedPrefix } from './prefix-archiver.js';

export interface ArchivePolicy {
  /** Keep folded files (gzipped) in `archive/`; false deletes them instead. Default true. */
  keep: boolean;
  /** Archived files older than this are deleted (default 30 days). */
  maxAgeMs: number;
  /** At most this many archived files are kept, newest first (default 1000). */
  maxFiles: number;
}

export const DEFAULT_ARCHIVE_POLICY: ArchivePolicy = { keep: true, maxAgeMs: 30 * 24 * 3600 * 1000, maxFiles: 1000 };

/**
 * Moves one folded store file into the archive as gzip: to a unique temporary
 * file (after the prefix already compressed, as a second gzip member), fsync,
 * rename, fsync the archive directory, and only then remove the original. A
 * crash at any point leaves the original in place.
 */
export async function archiveFile(dir: string, name: string, policy: ArchivePolicy, prefix?: CompressedPrefix, signal?: AbortSignal): Promise<void> {
  const source = path.join(dir, name);
  if (policy.keep) {
    const target = archiveDir(dir);
    const finalPath = path.join(target, archivedName(name));
    const tempPath = prefix?.tempPath ?? tempNameFor(finalPath);
    try {
      prepareStoreDir(target, true);
      await gzipRange(source, tempPath, { start: prefix?.end ?? 0, append: prefix !== undefined, ...(signal && { signal }) });
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
      if (signal?.aborted) throw signal.reason;
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
  const names = readStoreSubdir(target).filter(isArchivedName);
  try {
    const files = names
      .map((name) => ({ name, st: fs.lstatSync(path.join(target, name)) }))
      // Only what archiveFile writes: a directory or FIFO of that name is not ours to delete (and unlink would fail on every run).
      .filter((f) => f.st.isFile())
      .map((f) => ({ name: f.name, mtime: f.st.mtimeMs }))
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
