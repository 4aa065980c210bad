import fs from 'node:fs';
import path from 'node:path';
import { crypto, zlib } from '../../lazy.js';
import { splitBufferLines } from './buffer-lines.js';
import { SegmentReader, type LinePlace } from './segment-reader.js';
import { closeQuietly, fdSize, openStoreFile } from './store-files.js';
import { CHAIN_START, FORMAT_VERSION, isChainHash } from '../../engine/record-codec.js';
import type { JournalWarning } from '../../engine/warnings.js';
import type { SnapshotEntry } from '../../engine/snapshot-entry.js';
import { ErrorCodes, SessionJournalError } from '../../errors.js';

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

/** Parsed at first use here (undefined if its line is not JSON: see SnapshotParser). */
export type { SnapshotEntry };

/**
 * An entry whose line is parsed when its value is first asked for. A
 * snapshot whose footer hash matches holds exactly the lines its writer
 * wrote, all JSON, so a reader that needs one session of ten thousand
 * (a hook fork) parses one line, not the whole state; the hash itself is
 * checked over every byte before the snapshot is used.
 */
class LazyEntry implements SnapshotEntry {
  private parsed = false;
  private parsedValue: unknown;

  constructor(
    private line: string,
    readonly place: LinePlace,
  ) {}

  get text(): string {
    return this.line;
  }

  get value(): unknown {
    if (!this.parsed) {
      this.parsed = true;
      try {
        this.parsedValue = JSON.parse(this.line);
      } catch {
        this.parsedValue = undefined; // the consumer rejects it, with its place
      }
      this.line = '';
    }
    return this.parsedValue;
  }
}

/**
 * A line that is, or might be, the footer, so is parsed at once: anything
 * not an object, and a short line naming `"end":true` (a footer holds only
 * end, entries and sha256, well under FOOTER_MAX_CHARS; the writer sorts
 * its keys, so it begins `{"end":true`). A long entry line is not scanned.
 */
const FOOTER_MAX_CHARS = 256;
const mayBeFooter = (text: string): boolean => text.charCodeAt(0) !== 0x7b || (text.length <= FOOTER_MAX_CHARS && text.includes('"end":true'));

export type SnapshotReadResult =
  | { ok: true; header: SnapshotHeader; entries: SnapshotEntry[]; bytes: number }
  | { ok: false; reason: string };

/**
 * The checks every snapshot reader applies, line by line: a header first, then
 * entries, then a footer whose count matches, and nothing after it.
 */
const FOOTER_KEYS = new Set(['end', 'entries', 'sha256']);

class SnapshotParser {
  /** The number in the file's name, when it has a snapshot's name: the header must say the same. */
  constructor(private readonly named: number | undefined) {}
  private header: SnapshotHeader | undefined;
  private footer: { entries: number; sha256?: unknown } | undefined;
  /** Of every line before the footer, each with its newline: what the writer hashed. */
  private readonly digest = crypto().createHash('sha256');
  private problem: string | undefined;
  private readonly entries: SnapshotEntry[] = [];

  /** Takes one line; 'stop' once the snapshot is known to be bad. */
  push(text: string, place: LinePlace): 'continue' | 'stop' {
    if (this.problem) return 'stop';
    if (this.header && !this.footer && !mayBeFooter(text)) {
      this.entries.push(new LazyEntry(text, place));
      this.digest.update(text, 'utf8').update('\n');
      return 'continue';
    }
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
      if (h.h !== undefined && h.h !== CHAIN_START && !isChainHash(h.h)) return this.fail(`header h ${JSON.stringify(h.h)} is not a chain hash`);
      // A header naming another segment (a damaged digit) would skip, or replay twice, every segment in between.
      if (this.named !== undefined && h.segment !== this.named) return this.fail(`header segment ${h.segment} is not the ${this.named} of the file name`);
      this.header = h;
    } else if (this.footer) {
      return this.fail(`data after the footer at line ${place.line}`);
    } else if ((value as { end?: unknown } | null)?.end === true) {
      this.footer = value as { entries: number; sha256?: unknown };
      // A damaged key would otherwise read as a footer without its hash: an old snapshot, unchecked.
      const unknown = Object.keys(this.footer).find((k) => !FOOTER_KEYS.has(k));
      if (unknown !== undefined) return this.fail(`the footer has an unknown field ${JSON.stringify(unknown)}`);
      return 'continue';
    } else {
      this.entries.push({ text: '', value, place }); // parsed already (see SnapshotEntry.text)
    }
    this.digest.update(text, 'utf8').update('\n');
    return 'continue';
  }

  result(bytes: number): SnapshotReadResult {
    if (this.problem) return { ok: false, reason: this.problem };
    if (!this.header) return { ok: false, reason: 'empty snapshot' };
    if (!this.footer) return { ok: false, reason: 'no footer: the file is truncated' };
    if (this.footer.entries !== this.entries.length) return { ok: false, reason: `footer counts ${this.footer.entries} entries, file has ${this.entries.length}` };
    // Snapshots written before the footer carried a hash have none: read as they always were, every line JSON.
    if (this.footer.sha256 === undefined) {
      const bad = this.entries.find((e) => e.value === undefined);
      if (bad) return { ok: false, reason: `line ${bad.place.line} is not valid JSON` };
    } else if (this.footer.sha256 !== this.digest.digest('hex')) {
      return { ok: false, reason: 'the footer sha256 does not match the bytes before it (a damaged byte)' };
    }
    return { ok: true, header: this.header, entries: this.entries, bytes };
  }

  /** Marks the snapshot bad (the first reason is kept). */
  fail(reason: string): 'stop' {
    this.problem ??= reason;
    return 'stop';
  }
}

/**
 * What a snapshot reader holds at most, so that a damaged or planted file
 * cannot exhaust memory or end in ERR_STRING_TOO_LONG. The state is held
 * whole anyway, so the file's bound is generous; a line (one whole session)
 * is bounded at a quarter of what a V8 string can hold, so that decoding it
 * and JSON.parse's copies always fit. writeSnapshotSync refuses to write
 * past the same bounds (SNAPSHOT_TOO_LARGE): a compaction never publishes a
 * snapshot that readers would skip.
 */
export interface SnapshotLimits {
  /** Bytes of the whole snapshot, uncompressed (default 1 GiB). */
  maxSnapshotBytes: number;
  /** Bytes of one line (default 128 MiB). */
  maxSnapshotLineBytes: number;
}

export const DEFAULT_SNAPSHOT_LIMITS: Readonly<SnapshotLimits> = Object.freeze({ maxSnapshotBytes: 1024 * 1024 * 1024, maxSnapshotLineBytes: 128 * 1024 * 1024 });

const SNAPSHOT_FILE_RE = /^snapshot-(\d{8,})\.ndjson(?:\.gz)?$/;

/** The number a snapshot's file name gives it (live or archived), or undefined for any other name. */
export function snapshotNumberOf(file: string): number | undefined {
  const m = SNAPSHOT_FILE_RE.exec(path.basename(file));
  return m ? Number(m[1]) : undefined;
}

const tooLongReason = (line: number, bytes: number, limits: SnapshotLimits) => `line ${line} is ${bytes} bytes, over maxSnapshotLineBytes (${limits.maxSnapshotLineBytes})`;
const tooLargeReason = (bytes: number | string, limits: SnapshotLimits) => `the snapshot is ${bytes} bytes, over maxSnapshotBytes (${limits.maxSnapshotBytes})`;

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
