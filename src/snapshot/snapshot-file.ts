import fs from 'node:fs';
import zlib from 'node:zlib';
import { SegmentReader, type LinePlace } from '../journal/segment-reader.js';
import { closeQuietly, fdSize, openStoreFile } from '../journal/store-files.js';
import { CHAIN_START, FORMAT_VERSION, isChainHash } from '../journal/record-codec.js';
import type { JournalWarning } from '../journal/warnings.js';

/**
 * A snapshot is NDJSON too: a header line, one line per state entry (the
 * reducer decides what an entry is), and a footer that counts the entries.
 * It is only ever published by rename, so a reader sees all of one or none;
 * the footer also catches a copy truncated by some other tool.
 */
export interface SnapshotHeader {
  v: number;
  kind: 'snapshot';
  /** The snapshot folds every segment numbered below this one. */
  segment: number;
  /** Sequence number of the last record folded in (0 for none). */
  seq: number;
  /** Hash of that record: the hash chain continues from here. */
  h?: string;
}

export interface SnapshotEntry {
  value: unknown;
  place: LinePlace;
}

export type SnapshotReadResult =
  | { ok: true; header: SnapshotHeader; entries: SnapshotEntry[]; bytes: number }
  | { ok: false; reason: string };

/**
 * The checks every snapshot reader applies, line by line: a header first, then
 * entries, then a footer whose count matches, and nothing after it.
 */
class SnapshotParser {
  private header: SnapshotHeader | undefined;
  private footer: { entries: number } | undefined;
  private problem: string | undefined;
  private readonly entries: SnapshotEntry[] = [];

  /** Takes one line; 'stop' once the snapshot is known to be bad. */
  push(text: string, place: LinePlace): 'continue' | 'stop' {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return this.fail(`line ${place.line} is not valid JSON`);
    }
    if (!this.header) {
      const h = value as SnapshotHeader | null;
      if (h?.kind !== 'snapshot') return this.fail('first line is not a snapshot header');
      if (h.v > FORMAT_VERSION) return this.fail(`snapshot format ${h.v} is newer than ${FORMAT_VERSION}`);
      // Writers continue from these: a fractional seq would make every later record invalid, a bad segment replay folded segments twice.
      if (!Number.isSafeInteger(h.seq) || h.seq < 0) return this.fail(`header seq ${JSON.stringify(h.seq)} is not a whole number >= 0`);
      if (!Number.isSafeInteger(h.segment) || h.segment < 1) return this.fail(`header segment ${JSON.stringify(h.segment)} is not a whole number >= 1`);
      if (h.h !== undefined && h.h !== CHAIN_START && !isChainHash(h.h)) return this.fail(`header h ${JSON.stringify(h.h)} is not a sha256 hash`);
      this.header = h;
    } else if (this.footer) {
      return this.fail(`data after the footer at line ${place.line}`);
    } else if ((value as { end?: unknown } | null)?.end === true) {
      this.footer = value as { entries: number };
    } else {
      this.entries.push({ value, place });
    }
    return 'continue';
  }

  result(bytes: number): SnapshotReadResult {
    if (this.problem) return { ok: false, reason: this.problem };
    if (!this.header) return { ok: false, reason: 'empty snapshot' };
    if (!this.footer) return { ok: false, reason: 'no footer: the file is truncated' };
    if (this.footer.entries !== this.entries.length) return { ok: false, reason: `footer counts ${this.footer.entries} entries, file has ${this.entries.length}` };
    return { ok: true, header: this.header, entries: this.entries, bytes };
  }

  private fail(reason: string): 'stop' {
    this.problem = reason;
    return 'stop';
  }
}

/**
 * Reads and checks a live snapshot file (symlinks refused). A line holds one
 * whole state entry (a session with all its turns), which the journal's limit
 * on one record does not bound: the only bound is the file itself, whose
 * entries are live state the reader must hold anyway.
 */
export function readSnapshotSync(file: string, warn: (w: JournalWarning) => void): SnapshotReadResult {
  const fd = openStoreFile(file, 'read');
  if (fd === undefined) return { ok: false, reason: 'file disappeared' };
  try {
    const bytes = fdSize(fd, file);
    const reader = new SegmentReader(fd, file, Math.max(bytes, 1), warn);
    const parser = new SnapshotParser();
    reader.readTo(bytes, (text, place) => parser.push(text, place));
    return parser.result(bytes);
  } finally {
    closeQuietly(fd);
  }
}

/** Reads and checks an archived (gzipped) snapshot; places count uncompressed bytes. */
export function readArchivedSnapshotSync(file: string): SnapshotReadResult {
  let bytes: Buffer;
  try {
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      bytes = zlib.gunzipSync(fs.readFileSync(fd));
    } finally {
      closeQuietly(fd);
    }
  } catch (err) {
    return { ok: false, reason: `cannot be read or decompressed: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
  const parser = new SnapshotParser();
  let start = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  for (let line = 1, nl = bytes.indexOf(0x0a, start); nl !== -1; line++, start = nl + 1, nl = bytes.indexOf(0x0a, start)) {
    const end = nl > start && bytes[nl - 1] === 0x0d ? nl - 1 : nl;
    if (end > start && parser.push(bytes.toString('utf8', start, end), { file, line, offset: start }) === 'stop') break;
  }
  return parser.result(bytes.length);
}
