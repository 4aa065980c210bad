import { crypto } from '../lazy.js';
import { stableStringify } from './canonical-json.js';
import { CHAIN_START, FORMAT_VERSION, isChainHash } from './record-codec.js';
import type { LinePlace } from './line-place.js';
import type { SnapshotEntry } from './snapshot-entry.js';
import { ErrorCodes, SessionJournalError } from '../errors.js';

/**
 * The text of a snapshot, the same wherever it is kept (a snapshot file,
 * snapshot chunks on Redis): how it is written line by line and how it is
 * checked when read. Where the bytes come from and go to is the backend's
 * (storage/file/snapshot-file.ts and snapshot-writer.ts, storage/redis/
 * snapshot-keys.ts).
 */

/**
 * A snapshot is NDJSON too: a header line, one line per state entry (the
 * reducer decides what an entry is), and a footer that counts the entries
 * and holds the sha256 of every byte before it, so a copy cut short or a
 * damaged byte is caught wherever the text was kept.
 */
export interface SnapshotHeader {
  v: number;
  kind: 'snapshot';
  /** A file: the snapshot folds every segment numbered below this one. Redis: its generation (the manifest's `gen`). */
  segment: number;
  /** Sequence number of the last record folded in (0 for none). */
  seq: number;
  /** Hash of that record: the hash chain continues from here. */
  h?: string;
}

export type { SnapshotEntry } from './snapshot-entry.js';

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

const FOOTER_KEYS = new Set(['end', 'entries', 'sha256']);

/**
 * The checks every snapshot reader applies, line by line: a header first, then
 * entries, then a footer whose count matches, and nothing after it. It takes
 * lines however they were read (a file, a gzip, Redis chunks): `push` each
 * line without its newline, `fail` a line the reader could not take, then
 * `result` with the bytes read.
 */
export class SnapshotParser {
  constructor(
    /** The number the snapshot's container gives it (a file's name, a Redis manifest's generation): the header's `segment` must say the same. */
    private readonly named: number | undefined,
    /** What gave that number, for the reason: "the file name", "the manifest". */
    private readonly namedBy = 'the file name',
  ) {}
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
      if (this.named !== undefined && h.segment !== this.named) return this.fail(`header segment ${h.segment} is not the ${this.named} of ${this.namedBy}`);
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


export const tooLongReason = (line: number, bytes: number, limits: SnapshotLimits): string => `line ${line} is ${bytes} bytes, over maxSnapshotLineBytes (${limits.maxSnapshotLineBytes})`;
export const tooLargeReason = (bytes: number | string, limits: SnapshotLimits): string => `the snapshot is ${bytes} bytes, over maxSnapshotBytes (${limits.maxSnapshotBytes})`;

/** A snapshot that readers would refuse, so it is not published: SNAPSHOT_TOO_LARGE. */
export function snapshotTooLarge(message: string, details: Record<string, unknown>, cause?: unknown): SessionJournalError {
  return new SessionJournalError(ErrorCodes.SNAPSHOT_TOO_LARGE, `${message}; readers would refuse it, so it is not written (the store is unchanged)`, { cause, details });
}

/** The header line (with its newline): what the snapshot folds. `segment` is the number its container gives it (see SnapshotParser). */
export function snapshotHeaderLine(segment: number, seq: number, hash: string): string {
  return stableStringify({ v: FORMAT_VERSION, kind: 'snapshot', segment, seq, h: hash }) + '\n';
}

/**
 * The line (with its newline) of the `index`-th entry (from 1), keys
 * sorted so the same state always gives the same bytes; SNAPSHOT_TOO_LARGE
 * for a line readers would refuse.
 */
export function snapshotEntryLine(entry: unknown, index: number, limits: SnapshotLimits): string {
  const line = stableStringify(entry);
  // A UTF-8 byte is at most 3 per UTF-16 unit: only a long line needs counting.
  if (line.length * 3 > limits.maxSnapshotLineBytes && Buffer.byteLength(line) > limits.maxSnapshotLineBytes) {
    throw snapshotTooLarge(`entry ${index} would be a line of ${Buffer.byteLength(line)} bytes, over maxSnapshotLineBytes (${limits.maxSnapshotLineBytes})`, { entry: index, maxSnapshotLineBytes: limits.maxSnapshotLineBytes });
  }
  return line + '\n';
}

/** SNAPSHOT_TOO_LARGE once the text written so far is over maxSnapshotBytes. */
export function checkSnapshotBytes(bytes: number, limits: SnapshotLimits): void {
  if (bytes > limits.maxSnapshotBytes) throw snapshotTooLarge(`the snapshot would be over ${limits.maxSnapshotBytes} bytes (maxSnapshotBytes)`, { maxSnapshotBytes: limits.maxSnapshotBytes });
}

/** The footer line (with its newline): the count of entries and the sha256 (hex) of every byte before it. */
export function snapshotFooterLine(entries: number, sha256: string): string {
  return stableStringify({ end: true, entries, sha256 }) + '\n';
}
