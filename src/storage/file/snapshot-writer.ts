import fs from 'node:fs';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Hash } from 'node:crypto';
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
  const write = new SnapshotWrite(dir, segment, seq, hash, entries, limits);
  try {
    while (write.writeChunk());
    return write.publish();
  } catch (err) {
    throw write.fail(err);
  }
}

/** Where a stop request ended the write: the temporary file is removed and `reason` thrown. */
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
  const write = new SnapshotWrite(dir, segment, seq, hash, entries, limits);
  try {
    while (write.writeChunk()) {
      await nextTurn();
      if (signal?.aborted) throw new Stopped(signal.reason);
    }
    return write.publish();
  } catch (err) {
    throw write.fail(err);
  }
}

/**
 * One snapshot being written, a chunk at a time (writeChunk), then
 * published; both writers above drive it, so they write the same bytes by
 * the same rules. Nothing is opened before the first chunk, inside the
 * writers' try: a failure there is cleaned up and reported like any other.
 */
class SnapshotWrite {
  private readonly finalPath: string;
  private readonly tempPath: string;
  private fd: number | undefined;
  private iterator: Iterator<unknown> | undefined;
  /** The footer's sha256 covers every byte before it: a damaged byte that still parses is caught too. */
  private digest: Hash | undefined;
  private pending = '';
  private bytes = 0;
  private count = 0;
  private exhausted = false;

  constructor(
    private readonly dir: string,
    private readonly segment: number,
    private readonly seq: number,
    private readonly hash: string,
    private readonly entries: Iterable<unknown>,
    private readonly limits: SnapshotLimits,
  ) {
    this.finalPath = path.join(dir, snapshotName(segment));
    this.tempPath = tempNameFor(this.finalPath);
  }

  /** Encodes entries until a chunk is pending and writes it: true when it wrote one, false once every entry is encoded (the rest waits for publish). */
  writeChunk(): boolean {
    const entries = (this.iterator ??= this.start());
    for (;;) {
      const next = entries.next();
      if (next.done) {
        this.exhausted = true;
        return false;
      }
      this.pending += snapshotEntryLine(next.value, this.count + 1, this.limits);
      this.count++;
      if (this.pending.length >= WRITE_CHUNK_CHARS) {
        this.drain();
        return true;
      }
    }
  }

  /** Writes the rest and the footer, syncs, and renames the file into place. */
  publish(): SnapshotWriteResult {
    this.drain();
    this.pending = snapshotFooterLine(this.count, this.digest!.digest('hex'));
    this.drain(true);
    const fd = this.fd!;
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    this.fd = undefined;
    fs.renameSync(this.tempPath, this.finalPath);
    fsyncDirSync(this.dir);
    return { path: this.finalPath, bytes: this.bytes, entries: this.count };
  }

  /** After a failure: closes and removes the temporary file, and returns the error to throw. */
  fail(err: unknown): unknown {
    if (!this.exhausted) this.closeEntries();
    if (this.fd !== undefined) {
      try {
        fs.closeSync(this.fd);
      } catch {
        // already failing; the temp file is removed below
      }
      this.fd = undefined;
    }
    removeQuietly(this.tempPath);
    if (err instanceof Stopped) return err.reason;
    // An entry too big for a string at all (Invalid string length) is too large a snapshot, not an I/O failure.
    if (err instanceof RangeError) return snapshotTooLarge(`an entry is too large to encode (${err.message})`, {}, err);
    return ioError('snapshot write', this.finalPath, err);
  }

  private start(): Iterator<unknown> {
    this.fd = fs.openSync(this.tempPath, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    this.pending = snapshotHeaderLine(this.segment, this.seq, this.hash);
    this.digest = crypto().createHash('sha256');
    return this.entries[Symbol.iterator]();
  }

  private drain(footer = false): void {
    const buf = Buffer.from(this.pending, 'utf8');
    if (!footer) this.digest!.update(buf);
    this.bytes += buf.length;
    checkSnapshotBytes(this.bytes, this.limits);
    writeFully(this.fd!, buf);
    this.pending = '';
  }

  /** Lets the entries' iterator clean up, as a for-of left early would. */
  private closeEntries(): void {
    try {
      this.iterator?.return?.();
    } catch {
      // already failing
    }
  }
}
