import { ioError } from '../../errors.js';
import { LineDecoder } from '../../engine/record-codec.js';
import { SegmentReader, type LinePlace } from './segment-reader.js';
import { closeQuietly, writeFully } from './store-files.js';
import type { JournalWarning } from '../../engine/warnings.js';
import type { Stats } from 'node:fs';
const fs = process.getBuiltinModule('node:fs');

/**
 * One open segment file and how far this process has read it. A commit's
 * fsync runs after the lock is released, when the chain may already have
 * moved past the segment: so the descriptor is closed only once the segment
 * is retired and no fsync on it is pending, whichever comes last.
 */
export class Segment {
  readonly reader: SegmentReader;
  /** Decodes its lines in file order (who wrote a line depends on the lines before it). */
  readonly lines = new LineDecoder();
  /** Set when a rotation marker was read: the number of the segment that follows. */
  rotatesTo?: number;
  /** Commits written here whose fsync has not finished. */
  private inflight = 0;
  private retired = false;

  constructor(
    readonly number: number,
    readonly path: string,
    readonly fd: number,
    maxLineBytes: number,
    warn: (w: JournalWarning) => void,
    readonly onLine: (text: string, place: LinePlace) => 'continue' | 'stop',
  ) {
    this.reader = new SegmentReader(fd, path, maxLineBytes, warn);
  }

  /**
   * One O_APPEND write (completed if short). A failed write may leave part
   * of the bytes in the file: they are never taken back (another process may
   * already have read them), the commit framing makes readers ignore them.
   */
  append(bytes: Buffer): void {
    try {
      writeFully(this.fd, bytes);
    } catch (err) {
      throw ioError('write', this.path, err);
    }
  }

  /**
   * The file as the commit fence checks it: its size, and whether it is still
   * the store's file of that name (linked, and the name not given to another
   * file: a compaction archives a folded segment, a repair rewrites one).
   */
  place(): { size: number; current: boolean } {
    let st: Stats;
    try {
      st = fs.fstatSync(this.fd);
    } catch (err) {
      throw ioError('fstat', this.path, err);
    }
    let named = false;
    try {
      const byName = fs.lstatSync(this.path);
      named = byName.ino === st.ino && byName.dev === st.dev;
    } catch (err) {
      // Gone (archived): not current. Anything else is a failing disk, not a moved segment.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('lstat', this.path, err);
    }
    return { size: st.size, current: st.nlink > 0 && named };
  }

  /** A commit was written here; its fsync follows, then settle(). */
  expectSync(): void {
    this.inflight++;
  }

  settle(): void {
    this.inflight--;
    if (this.retired && this.inflight === 0) closeQuietly(this.fd);
  }

  /** The chain has moved past this segment. */
  retire(): void {
    this.retired = true;
    if (this.inflight === 0) closeQuietly(this.fd);
  }
}
