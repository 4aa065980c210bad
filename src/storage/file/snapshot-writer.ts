import fs from 'node:fs';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { crypto, stableStringify } from '../../lazy.js';
import { ErrorCodes, SessionJournalError, ioError } from '../../errors.js';
import { FORMAT_VERSION } from '../../engine/record-codec.js';
import { fsyncDirSync, removeQuietly, snapshotName, writeFully } from './store-files.js';
import { tempNameFor } from './store-layout.js';
import { DEFAULT_SNAPSHOT_LIMITS, type SnapshotLimits } from './snapshot-file.js';

const WRITE_CHUNK_CHARS = 1024 * 1024;


function tooLarge(message: string, details: Record<string, unknown>, cause?: unknown): SessionJournalError {
  return new SessionJournalError(ErrorCodes.SNAPSHOT_TOO_LARGE, `${message}; readers would refuse it, so it is not written (the store is unchanged)`, { cause, details });
}

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
    let pending = stableStringify({ v: FORMAT_VERSION, kind: 'snapshot', segment, seq, h: hash }) + '\n';
    // The footer's sha256 covers every byte before it: a damaged byte that still parses is caught too.
    const digest = crypto().createHash('sha256');
    /** Writes what is pending once it is a chunk (or when forced); true when it wrote. */
    const drain = (force: boolean, footer = false): boolean => {
      if (pending.length < WRITE_CHUNK_CHARS && !force) return false;
      const buf = Buffer.from(pending, 'utf8');
      if (!footer) digest.update(buf);
      bytes += buf.length;
      if (bytes > limits.maxSnapshotBytes) throw tooLarge(`the snapshot would be over ${limits.maxSnapshotBytes} bytes (maxSnapshotBytes)`, { maxSnapshotBytes: limits.maxSnapshotBytes });
      writeFully(fd!, buf);
      pending = '';
      return true;
    };
    for (const entry of entries) {
      const line = stableStringify(entry);
      // A UTF-8 byte is at most 3 per UTF-16 unit: only a long line needs counting.
      if (line.length * 3 > limits.maxSnapshotLineBytes && Buffer.byteLength(line) > limits.maxSnapshotLineBytes) {
        throw tooLarge(`entry ${count + 1} would be a line of ${Buffer.byteLength(line)} bytes, over maxSnapshotLineBytes (${limits.maxSnapshotLineBytes})`, { entry: count + 1, maxSnapshotLineBytes: limits.maxSnapshotLineBytes });
      }
      pending += line + '\n';
      count++;
      if (drain(false)) yield;
    }
    drain(true);
    pending = stableStringify({ end: true, entries: count, sha256: digest.digest('hex') }) + '\n';
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
    if (err instanceof RangeError) throw tooLarge(`an entry is too large to encode (${err.message})`, {}, err);
    throw ioError('snapshot write', finalPath, err);
  }
  return { path: finalPath, bytes, entries: count };
}
