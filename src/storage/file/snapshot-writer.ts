import fs from 'node:fs';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { crypto } from '../../lazy.js';
import { ioError } from '../../errors.js';
import { fsyncDirSync, removeQuietly, snapshotName, writeFully } from './store-files.js';
import { tempNameFor } from './store-layout.js';
import { DEFAULT_SNAPSHOT_LIMITS, checkSnapshotBytes, snapshotEntryLine, snapshotFooterLine, snapshotHeaderLine, snapshotTooLarge, type SnapshotLimits } from '../../engine/snapshot-codec.js';

const WRITE_CHUNK_CHARS = 1024 * 1024;

export interface SnapshotWriteResult {
  path: string;
  bytes: number;
  entries: number;
}

/**
 * Writes snapshot `segment` atomically: a unique temporary file, fsync, rename,
 * fsync of the directory. Entries are streamed in the order given, with sorted
 * keys, so the same state always gives the same bytes. A snapshot past the
 * limits readers apply is never published: SNAPSHOT_TOO_LARGE.
 */
export function writeSnapshotSync(dir: string, segment: number, seq: number, hash: string, entries: Iterable<unknown>, limits: SnapshotLimits = DEFAULT_SNAPSHOT_LIMITS): SnapshotWriteResult {
  const steps = writeSteps(dir, segment, seq, hash, entries, limits);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/** Thrown into the steps where a stop request ends the write: they remove the temporary file and rethrow `reason`. */
class Stopped {
  constructor(readonly reason: unknown) {}
}

/**
 * The same, letting the event loop run after each chunk written (1 MiB), so
 * that a stop request is heard while a large snapshot is written: once
 * `signal` aborts, the temporary file is removed and the promise rejects
 * with its reason, before anything is published.
 */
export async function writeSnapshot(dir: string, segment: number, seq: number, hash: string, entries: Iterable<unknown>, signal?: AbortSignal, limits: SnapshotLimits = DEFAULT_SNAPSHOT_LIMITS): Promise<SnapshotWriteResult> {
  const steps = writeSteps(dir, segment, seq, hash, entries, limits);
  for (let step = steps.next(); ; ) {
    if (step.done) return step.value;
    await nextTurn();
    step = signal?.aborted ? steps.throw(new Stopped(signal.reason)) : steps.next();
  }
}

/** writeSnapshotSync's work, pausing (yield) after each chunk it writes. */
function* writeSteps(dir: string, segment: number, seq: number, hash: string, entries: Iterable<unknown>, limits: SnapshotLimits): Generator<void, SnapshotWriteResult> {
  const finalPath = path.join(dir, snapshotName(segment));
  const tempPath = tempNameFor(finalPath);
  let fd: number | undefined;
  let bytes = 0;
  let count = 0;
  try {
    fd = fs.openSync(tempPath, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    let pending = snapshotHeaderLine(segment, seq, hash);
    // The footer's sha256 covers every byte before it: a damaged byte that still parses is caught too.
    const digest = crypto().createHash('sha256');
    /** Writes what is pending once it is a chunk (or when forced); true when it wrote. */
    const drain = (force: boolean, footer = false): boolean => {
      if (pending.length < WRITE_CHUNK_CHARS && !force) return false;
      const buf = Buffer.from(pending, 'utf8');
      if (!footer) digest.update(buf);
      bytes += buf.length;
      checkSnapshotBytes(bytes, limits);
      writeFully(fd!, buf);
      pending = '';
      return true;
    };
    for (const entry of entries) {
      pending += snapshotEntryLine(entry, count + 1, limits);
      count++;
      if (drain(false)) yield;
    }
    drain(true);
    pending = snapshotFooterLine(count, digest.digest('hex'));
    drain(true, true);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tempPath, finalPath);
    fsyncDirSync(dir);
  } catch (err) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        // already failing; the temp file is removed below
      }
    }
    removeQuietly(tempPath);
    if (err instanceof Stopped) throw err.reason;
    // An entry too big for a string at all (Invalid string length) is too large a snapshot, not an I/O failure.
    if (err instanceof RangeError) throw snapshotTooLarge(`an entry is too large to encode (${err.message})`, {}, err);
    throw ioError('snapshot write', finalPath, err);
  }
  return { path: finalPath, bytes, entries: count };
}
