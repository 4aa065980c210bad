import { stableStringify } from './canonical-json.js';
import { sha256Text } from './record-digest.js';
import { isStorableTime, parseEpochMs, parseIsoInstant } from './dates.js';
import { WarningCodes, type WarningCode } from './warnings.js';

/** The journal format version this library writes and the highest it reads (it reads every version from 1 on: docs/FORMAT.md). */
export const FORMAT_VERSION = 2;

/** Event types the engine itself writes; reducers never see them. */
export const ROTATE_EVENT = 'journal.rotate';
/** Written by `repair` where it moved committed records out (docs/FORMAT.md): readers skip it, verify reads it. */
export const REPAIR_EVENT = 'journal.repair';
/** One line of a record too long for one line (record-parts.ts): readers join the parts, reducers never see them. */
export const PART_EVENT = 'journal.part';

/** The writer of a format 2 line that names none when nothing before it in its segment says who wrote it (damage, or repair moved that line out). */
export const UNKNOWN_WRITER = '?';

/** One decoded journal line. */
export interface JournalRecord {
  /** Store-wide sequence number: gapless and increasing in commit order. */
  seq: number;
  /** Epoch milliseconds of the mutation (the envelope's `ts`). */
  time: number;
  /** Who wrote it: `pid@host` (the line's `w`, or in format 2 the writer LineDecoder attributes it to; UNKNOWN_WRITER when none can be). */
  writer: string;
  /** Event type, namespaced (`session.turn`). */
  type: string;
  /** Type-specific payload, validated by the reducer. */
  payload: unknown;
  /** The record's link in the hash chain (`h`), when it has a well-formed one. */
  hash?: string;
  /**
   * Commit framing (docs/FORMAT.md, "Commits"): set on the first record of
   * every commit this protocol writes (`c`, the commit's id, and `n`, its
   * number of records); absent on the commit's other records and on records
   * of older writers, each of which is a commit of its own.
   */
  commit?: CommitHeader;
  /**
   * Lines the record was spread over (record-parts.ts), when more than one:
   * it holds the seqs `seq - lines + 1` to `seq`, and `seq` and `hash` are
   * those of its last line.
   */
  lines?: number;
}

/** What the first record of a commit says about the commit. */
export interface CommitHeader {
  /**
   * `c`: in format 1 a random id unique per commit; in format 2 the writing
   * process's tag (random, the same on all its commits), so a commit is
   * (id, first seq): how a writer in doubt finds its own bytes.
   */
  id: string;
  /** Records in the commit, this one included (`n`; 1 when absent). */
  count: number;
}

/** Format 1 commit ids: 8 to 32 lowercase hex digits. */
const COMMIT_ID_V1_RE = /^[0-9a-f]{8,32}$/;
/** Format 2 writer tags (the commit's `c`): 4 to 32 lowercase base-36 digits, so every format 1 id is one too. */
const COMMIT_ID_RE = /^[0-9a-z]{4,32}$/;
/** Base-36 digits of the writer tag this library draws (about 31 random bits; a clash only costs an explicit `w`, see LineDecoder). */
const WRITER_TAG_DIGITS = 6;
/** Largest `n` a reader believes: a damaged digit must not make it wait for ever (a batch is 64 KiB, or one record spread over lines: see record-parts.ts). */
export const MAX_COMMIT_RECORDS = 1 << 20;

/** A fresh random writer tag for a process's commits (format 2 `c`). */
export function newWriterTag(): string {
  // Math.random, not node:crypto (about 3 ms to load cold): the tag only
  // attributes commits, it guards nothing, and V8 seeds each process's
  // generator from the operating system's entropy.
  return Math.floor(Math.random() * 36 ** WRITER_TAG_DIGITS).toString(36).padStart(WRITER_TAG_DIGITS, '0');
}

/** The hash a chain starts from: before the first record, and after a record without one. */
export const CHAIN_START = '';

/** Format 1 chain hash: the whole sha256, 64 lowercase hex digits. */
const HASH_V1_RE = /^[0-9a-f]{64}$/;
/** Characters of a format 2 chain hash: the first 22 of the sha256 digest in base64url, 132 bits. */
const V2_HASH_CHARS = 22;
const HASH_V2_RE = /^[A-Za-z0-9_-]{22}$/;

/** A chain hash as either format writes it: where a hash stands on its own (snapshot headers, `journal.repair` gaps, `--expect-head`). */
export const isChainHash = (value: unknown): value is string => typeof value === 'string' && (HASH_V2_RE.test(value) || HASH_V1_RE.test(value));

/** A record's `h` in the form of its own format version. */
const isChainHashOf = (version: number, value: unknown): value is string => typeof value === 'string' && (version === 1 ? HASH_V1_RE : HASH_V2_RE).test(value);

/** The canonical form of a payload: sorted keys, so a verifier can rebuild it from the parsed line. */
export function canonicalPayload(payload: unknown): string | undefined {
  return stableStringify(payload) as string | undefined;
}

/**
 * The hash chain link of a record: sha256 over the canonical form
 * (fast-json-stable-stringify) of the record's fields plus the previous
 * record's hash as `prev`. The templates below are exactly that form for a
 * canonical payload, so writing costs one hash and no second stringify.
 *
 * - Format 1: `{p, prev, seq, t, ts, v, w}`, `ts` the ISO text; the whole
 *   digest in hex.
 * - Format 2: `{p, prev, seq, t, ts, v}`, `ts` the epoch-ms integer; not `w`
 *   (which a line may leave to LineDecoder: the chain covers what a record
 *   says, not who it is attributed to); the first 22 characters of the digest in base64url (132 bits).
 */
export function chainHash(version: number, prev: string, seq: number, ts: string | number, writerJson: string, type: string, payloadCanonical: string): string {
  if (version === 1) {
    const canonical = `{"p":${payloadCanonical},"prev":${JSON.stringify(prev)},"seq":${seq},"t":${JSON.stringify(type)},"ts":${JSON.stringify(ts)},"v":1,"w":${writerJson}}`;
    return sha256Text(canonical, 'hex');
  }
  const canonical = `{"p":${payloadCanonical},"prev":${JSON.stringify(prev)},"seq":${seq},"t":${JSON.stringify(type)},"ts":${ts},"v":${version}}`;
  return sha256Text(canonical, 'base64url').slice(0, V2_HASH_CHARS);
}

/** The same hash computed from a parsed line (of either format, by its `v`), for verification. */
export function chainHashOf(prev: string, line: Readonly<Record<string, unknown>>): string {
  const hashed: Record<string, unknown> = { p: line.p, prev, seq: line.seq, t: line.t, ts: line.ts, v: line.v };
  if (line.v === 1) {
    hashed.w = line.w;
    return sha256Text(stableStringify(hashed), 'hex');
  }
  return sha256Text(stableStringify(hashed), 'base64url').slice(0, V2_HASH_CHARS);
}

export interface Rejection {
  code: WarningCode;
  message: string;
}

export type DecodeResult = { ok: true; record: JournalRecord } | { ok: false; rejection: Rejection };

/** Largest |time| a Date holds: a time past it has no ISO form, and format 1 refused it the same way (toISOString). */
const MAX_DATE_MS = 8.64e15;

/** The instant a record appended at clock reading `time` holds: whole milliseconds, as a Date keeps them (`+ 0`: no -0). */
export function recordTime(time: number): number {
  return Math.trunc(time) + 0;
}

/**
 * Encodes one format 2 envelope, chained to `prev`. The payload arrives
 * already in canonical form (it was serialized and sized when appended), so
 * a commit only concatenates strings and hashes. `writerJson` undefined
 * leaves `w` out: LineDecoder.needsWriter says when a line may.
 */
export function encodeRecord(seq: number, time: number, writerJson: string | undefined, type: string, payloadCanonical: string, prev: string | undefined, commit?: CommitHeader): { line: string; hash: string } {
  const ts = recordTime(time);
  if (!isStorableTime(ts)) throw new RangeError(`a record's time must be within years 0000-9999: ${time}`); // append refused it already (group-commit.ts)
  const writer = writerJson === undefined ? '' : `,"w":${writerJson}`;
  const framing = commit ? `,"c":"${commit.id}"${commit.count > 1 ? `,"n":${commit.count}` : ''}` : '';
  const head = `{"v":${FORMAT_VERSION},"seq":${seq},"ts":${ts}${writer}${framing},"t":${JSON.stringify(type)},"p":${payloadCanonical}`;
  if (prev === undefined) return { line: `${head}}\n`, hash: CHAIN_START };
  // Neither the framing (`c`, `n`) nor `w` is hashed: the chain covers what a record says, so the same mutations give the same chain (and snapshots).
  const hash = chainHash(FORMAT_VERSION, prev, seq, ts, '', type, payloadCanonical);
  return { line: `${head},"h":"${hash}"}\n`, hash };
}

/** Bytes the envelope adds around a payload, generously (seq up to 16 digits, a 64-char writer, the commit framing, a format 1 hash): format 2 lines are shorter. */
export const ENVELOPE_OVERHEAD_BYTES = 272;

/**
 * Bytes a line of `type` by this writer holds besides its payload, at most:
 * the envelope with the largest seq, time, commit id, record count, the
 * writer, a hash, and the newline. What encodeRecord writes is never longer.
 */
export function envelopeBytes(writerJson: string, type: string): number {
  const widest = `{"v":${FORMAT_VERSION},"seq":${Number.MAX_SAFE_INTEGER},"ts":${-MAX_DATE_MS},"w":${writerJson},"c":"${'z'.repeat(32)}","n":${MAX_COMMIT_RECORDS},"t":${JSON.stringify(type)},"p":,"h":"${'f'.repeat(22)}"}\n`;
  return Buffer.byteLength(widest);
}

function reject(code: WarningCode, message: string): DecodeResult {
  return { ok: false, rejection: { code, message } };
}

/** How a line's place in its segment says who wrote it (LineDecoder). */
interface WriterAttribution {
  /** The writer of a format 2 line without `w`. */
  writerOf(line: Readonly<Record<string, unknown>>): string;
  /** A readable format 2 line that opens a commit. */
  opened(tag: string, writer: string): void;
}

const NO_ATTRIBUTION: WriterAttribution = { writerOf: () => UNKNOWN_WRITER, opened: () => undefined };

/**
 * Decodes one line (without its newline) on its own: a format 2 line
 * without `w` gets UNKNOWN_WRITER. Readers decode through LineDecoder,
 * which knows the lines before. Never throws.
 */
export function decodeRecord(line: string, attribution: WriterAttribution = NO_ATTRIBUTION): DecodeResult {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    if (/^\0+$/.test(line)) return reject(WarningCodes.ZERO_FILLED, 'line of NUL bytes (zero-filled tail, e.g. after power loss)');
    const nul = line.includes('\0') ? ' (contains NUL bytes)' : '';
    return reject(WarningCodes.UNPARSABLE_LINE, `not valid JSON${nul}: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return reject(WarningCodes.NOT_AN_OBJECT, `JSON ${value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value} is not a journal record`);
  }
  const o = value as Record<string, unknown>;
  if (typeof o.v !== 'number' || !Number.isInteger(o.v) || o.v < 1) return reject(WarningCodes.INVALID_ENVELOPE, 'missing or invalid format version "v"');
  if (o.v > FORMAT_VERSION) return reject(WarningCodes.UNSUPPORTED_VERSION, `format version ${o.v} is newer than ${FORMAT_VERSION}; upgrade session-journal to read it`);
  if (typeof o.seq !== 'number' || !Number.isSafeInteger(o.seq) || o.seq < 1) return reject(WarningCodes.INVALID_ENVELOPE, 'missing or invalid "seq"');
  if (typeof o.t !== 'string' || o.t.length === 0) return reject(WarningCodes.INVALID_ENVELOPE, 'missing or invalid event type "t"');
  // Format 1 names the writer on every line; format 2 may leave it to the line's place in its segment.
  if (typeof o.w !== 'string' && (o.v === 1 || o.w !== undefined)) return reject(WarningCodes.INVALID_ENVELOPE, 'missing or invalid writer "w"');
  const time = o.v === 1 ? parseIsoInstant(o.ts) : parseEpochMs(o.ts);
  if (time === undefined) return reject(WarningCodes.INVALID_DATE, `invalid or missing timestamp "ts": ${JSON.stringify(o.ts) ?? 'undefined'}`);
  let header: CommitHeader | undefined;
  if (o.c !== undefined || o.n !== undefined) {
    if (typeof o.c !== 'string' || !(o.v === 1 ? COMMIT_ID_V1_RE : COMMIT_ID_RE).test(o.c)) return reject(WarningCodes.INVALID_ENVELOPE, 'invalid commit id "c"');
    const count = o.n ?? 1;
    if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1 || count > MAX_COMMIT_RECORDS) return reject(WarningCodes.INVALID_ENVELOPE, 'invalid commit record count "n"');
    header = { id: o.c, count };
  }
  const record: JournalRecord = { seq: o.seq, time, writer: typeof o.w === 'string' ? o.w : attribution.writerOf(o), type: o.t, payload: o.p };
  if (header) {
    record.commit = header;
    if (o.v !== 1) attribution.opened(header.id, record.writer);
  }
  // A missing or malformed hash does not cost the record: replay keeps it, verify reports it.
  if (isChainHashOf(o.v, o.h)) record.hash = o.h;
  return { ok: true, record };
}

/**
 * The segment a rotation marker leads to, or undefined when the record is
 * not a valid marker of segment `segment`: the one rule every reader,
 * verify and repair apply. A marker must name a later segment; `{"next":0}`
 * or a damaged number closes nothing, and readers continue in the segment.
 */
export function rotationTarget(record: Pick<JournalRecord, 'type' | 'payload'>, segment: number): number | undefined {
  if (record.type !== ROTATE_EVENT) return undefined;
  const next = (record.payload as { next?: unknown } | null)?.next;
  return typeof next === 'number' && Number.isSafeInteger(next) && next > segment ? next : undefined;
}

/**
 * What a writer appends, under the lock, to end a torn last line (a write
 * that failed half-way, or a writer killed inside one) before its own
 * commit: a record separator and a newline. A line that ends so is a
 * sealed torn write, told apart from damage: the commit it belonged to is
 * incomplete (docs/FORMAT.md, "Commits").
 */
export const TORN_SEAL = '\x1e\n';
const isSealedTornLine = (text: string): boolean => text.charCodeAt(text.length - 1) === 0x1e;

export type LineResult = DecodeResult | { ok: false; rejection: Rejection; sealed: true };

/** Writer tags a segment's LineDecoder remembers; past this many, it starts over (so do the writers that read the same bytes). */
const MAX_REMEMBERED_TAGS = 4096;

/**
 * Reads the lines of one segment, in file order: what each line is (a
 * record, or why not), and who wrote it. Every reader and every writer
 * checking its own bytes decodes with one of these per segment, so the
 * rule that gives a format 2 line without `w` its writer exists once
 * (docs/FORMAT.md, "Who wrote a line"):
 *
 * - a line with `w` was written by `w`; when it also has `c` (a commit's
 *   first line, format 2), that tag is now `w`'s in this segment;
 * - a line with `c` and no `w`: by the writer the tag was last given to in
 *   this segment;
 * - a line with neither: by the writer of the readable commit-opening line
 *   before it (it is one of that commit's lines);
 * - otherwise UNKNOWN_WRITER (what said it was damaged or moved out).
 *
 * Only readable lines count, so damage costs at most the attribution of the
 * lines that relied on it, never another line's record. A writer leaves `w`
 * out only where this rule already gives its own name (needsWriter).
 */
export class LineDecoder {
  private readonly byTag = new Map<string, string>();
  /** Writer of the last readable format 2 line that opened a commit (`c`). */
  private commitWriter: string | undefined;
  private readonly attribution: WriterAttribution = {
    writerOf: (o) => (typeof o.c === 'string' ? this.byTag.get(o.c) : this.commitWriter) ?? UNKNOWN_WRITER,
    opened: (tag, writer) => this.opened(tag, writer),
  };

  /**
   * What one line of the segment is. A sealed torn line is never a record,
   * even when its bytes hold a whole one: the write it came from never
   * finished, so its commit was never acknowledged. Never throws.
   */
  decode(text: string): LineResult {
    if (isSealedTornLine(text)) {
      const inner = decodeRecord(text.slice(0, -1));
      const rejection: Rejection = inner.ok
        ? { code: WarningCodes.INCOMPLETE_TAIL, message: 'a whole record whose write never finished (it had no newline), sealed by a later writer; not applied' }
        : { code: inner.rejection.code, message: `${inner.rejection.message} (a torn write, sealed by a later writer)` };
      return { ok: false, rejection, sealed: true };
    }
    return decodeRecord(text, this.attribution);
  }

  /** True when a commit `writer` opens with `tag` here must name its writer: the rule would not give it. */
  needsWriter(tag: string, writer: string): boolean {
    return this.byTag.get(tag) !== writer;
  }

  /** This process wrote a commit with `tag` right here (its bytes are skipped, not read back): as if it had been read. */
  wrote(tag: string, writer: string): void {
    this.opened(tag, writer);
  }

  private opened(tag: string, writer: string): void {
    this.commitWriter = writer;
    if (writer === UNKNOWN_WRITER || this.byTag.get(tag) === writer) return;
    if (this.byTag.size >= MAX_REMEMBERED_TAGS && !this.byTag.has(tag)) this.byTag.clear();
    this.byTag.set(tag, writer);
  }
}
