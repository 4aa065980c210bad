import { zlib } from '../../lazy.js';
import { splitBufferLines } from './buffer-lines.js';
import { SegmentReader } from './segment-reader.js';
import { closeQuietly, fdSize, openStoreFile } from './store-files.js';
import type { JournalWarning } from '../../engine/warnings.js';
import { ErrorCodes, SessionJournalError } from '../../errors.js';
import { DEFAULT_SNAPSHOT_LIMITS, SnapshotParser, tooLargeReason, tooLongReason, type SnapshotLimits, type SnapshotReadResult } from '../../engine/snapshot-codec.js';
const fs = process.getBuiltinModule('node:fs');
const path = process.getBuiltinModule('node:path');

/**
 * Snapshot files: the text (engine/snapshot-codec.ts, the same on every
 * backend) read from a live file or a gzipped archived one. A snapshot file
 * is only ever published by rename, so a reader sees all of one or none;
 * the footer also catches a copy truncated by some other tool.
 */
export { DEFAULT_SNAPSHOT_LIMITS, type SnapshotEntry, type SnapshotHeader, type SnapshotLimits, type SnapshotReadResult } from '../../engine/snapshot-codec.js';

const SNAPSHOT_FILE_RE = /^snapshot-(\d{8,})\.ndjson(?:\.gz)?$/;

/** The number a snapshot's file name gives it (live or archived), or undefined for any other name. */
export function snapshotNumberOf(file: string): number | undefined {
  const m = SNAPSHOT_FILE_RE.exec(path.basename(file));
  return m ? Number(m[1]) : undefined;
}

/** Why a store file was not opened (not a regular file), or the error rethrown. */
function unopenedReason(err: unknown): string {
  if (err instanceof SessionJournalError && err.code === ErrorCodes.NOT_A_FILE) return `it is ${String(err.details.kind)}, not a regular file (not opened)`;
  throw err;
}

/**
 * Reads and checks a live snapshot file (symlinks refused: SYMLINK_REFUSED
 * is thrown). A file that is not a regular file (a FIFO, a directory) is not
 * opened and one over `limits` is not read: both are { ok: false } with the
 * reason, like any other snapshot that fails its checks.
 */
export function readSnapshotSync(file: string, warn: (w: JournalWarning) => void, limits: SnapshotLimits = DEFAULT_SNAPSHOT_LIMITS): SnapshotReadResult {
  let fd: number | undefined;
  try {
    fd = openStoreFile(file, 'read');
  } catch (err) {
    return { ok: false, reason: unopenedReason(err) };
  }
  if (fd === undefined) return { ok: false, reason: 'file disappeared' };
  try {
    const bytes = fdSize(fd, file);
    if (bytes > limits.maxSnapshotBytes) return { ok: false, reason: tooLargeReason(bytes, limits) };
    const reader = new SegmentReader(fd, file, Math.max(Math.min(bytes, limits.maxSnapshotLineBytes), 1), warn);
    const parser = new SnapshotParser(snapshotNumberOf(file));
    reader.onTooLong = (place, end) => parser.fail(tooLongReason(place.line, end - 1 - place.offset, limits));
    reader.readTo(bytes, (text, place) => parser.push(text, place));
    return parser.result(bytes);
  } finally {
    closeQuietly(fd);
  }
}

/** Reads and checks an archived (gzipped) snapshot within `limits`; places count uncompressed bytes. */
export function readArchivedSnapshotSync(file: string, limits: SnapshotLimits = DEFAULT_SNAPSHOT_LIMITS): SnapshotReadResult {
  let bytes: Buffer;
  try {
    const fd = openStoreFile(file, 'read');
    if (fd === undefined) return { ok: false, reason: 'file disappeared' };
    try {
      // Compressed bigger than the bound: surely bigger uncompressed (and not read into memory).
      const size = fdSize(fd, file);
      if (size > limits.maxSnapshotBytes) return { ok: false, reason: tooLargeReason(`over ${size}`, limits) };
      bytes = zlib().gunzipSync(fs.readFileSync(fd), { maxOutputLength: limits.maxSnapshotBytes });
    } finally {
      closeQuietly(fd);
    }
  } catch (err) {
    if (err instanceof SessionJournalError) return { ok: false, reason: unopenedReason(err) };
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return { ok: false, reason: tooLargeReason('more than that', limits) };
    return { ok: false, reason: `cannot be read or decompressed: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
  const parser = new SnapshotParser(snapshotNumberOf(file));
  splitBufferLines(bytes, file, limits.maxSnapshotLineBytes, (text, place) => parser.push(text, place), (place, length) => parser.fail(tooLongReason(place.line, length, limits)));
  return parser.result(bytes.length);
}
