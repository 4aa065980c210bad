import { crypto, stableStringify } from '../lazy.js';
import { parseIsoInstant } from './dates.js';
import { WarningCodes, type WarningCode } from './warnings.js';

/** The journal format version this library writes and the highest it reads. */
export const FORMAT_VERSION = 1;

/** Event types the engine itself writes; reducers never see them. */
export const ROTATE_EVENT = 'journal.rotate';
/** Written by `repair` where it moved committed records out (docs/FORMAT.md): readers skip it, verify reads it. */
export const REPAIR_EVENT = 'journal.repair';
/** One line of a record too long for one line (record-parts.ts): readers join the parts, reducers never see them. */
export const PART_EVENT = 'journal.part';

/** One decoded journal line. */
export interface JournalRecord {
  /** Store-wide sequence number: gapless and increasing in commit order. */
  seq: number;
  /** Epoch milliseconds of the mutation (the envelope's `ts`). */
  time: number;
  /** Who wrote it: `pid@host`. */
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
  /** Random id, unique per commit: how a writer in doubt finds its own bytes. */
  id: string;
  /** Records in the commit, this one included (`n`; 1 when absent). */
  count: number;
}

const COMMIT_ID_RE = /^[0-9a-f]{8,32}$/;
/** Largest `n` a reader believes: a damaged digit must not make it wait for ever (a batch is 64 KiB, or one record spread over lines: see record-parts.ts). */
export const MAX_COMMIT_RECORDS = 1 << 20;

/** The hash a chain starts from: before the first record, and after a record without one. */
export const CHAIN_START = '';

const HASH_RE = /^[0-9a-f]{64}$/;

/** A chain hash as written: 64 lowercase hex digits. */
export const isChainHash = (value: unknown): value is string => typeof value === 'string' && HASH_RE.test(value);

/** The canonical form of a payload: sorted keys, so a verifier can rebuild it from the parsed line. */
export function canonicalPayload(payload: unknown): string | undefined {
  return stableStringify(payload) as string | undefined;
}

/**
 * The hash chain: sha256 over the canonical form (fast-json-stable-stringify)
 * of the record's fields plus the previous record's hash as \`prev\`. The
 * template below is exactly stableStringify({p, prev, seq, t, ts, v, w}) for a
 * canonical payload, so writing costs one hash and no second stringify.
 */
export function chainHash(prev: string, seq: number, ts: string, writerJson: string, type: string, payloadCanonical: string, version = FORMAT_VERSION): string {
  const canonical = `{"p":${payloadCanonical},"prev":${JSON.stringify(prev)},"seq":${seq},"t":${JSON.stringify(type)},"ts":${JSON.stringify(ts)},"v":${version},"w":${writerJson}}`;
  return crypto().hash('sha256', canonical, 'hex');
}

/** The same hash computed from a parsed line, for verification. */
export function chainHashOf(prev: string, line: Readonly<Record<string, unknown>>): string {
  const canonical = stableStringify({ p: line.p, prev, seq: line.seq, t: line.t, ts: line.ts, v: line.v, w: line.w });
  return crypto().hash('sha256', canonical, 'hex');
}

export interface Rejection {
  code: WarningCode;
  message: string;
}

export type DecodeResult = { ok: true; record: JournalRecord } | { ok: false; rejection: Rejection };

/**
 * Encodes one envelope, chained to \`prev\`. The payload arrives already in
 * canonical form (it was serialized and sized when appended), so a commit
 * only concatenates strings and hashes.
 */
export function encodeRecord(seq: number, time: number, writerJson: string, type: string, payloadCanonical: string, prev: string | undefined, commit?: CommitHeader): { line: string; hash: string } {
  const ts = new Date(time).toISOString();
  const framing = commit ? `,"c":"${commit.id}"${commit.count > 1 ? `,"n":${commit.count}` : ''}` : '';
  const head = `{"v":${FORMAT_VERSION},"seq":${seq},"ts":"${ts}","w":${writerJson}${framing},"t":${JSON.stringify(type)},"p":${payloadCanonical}`;
  if (prev === undefined) return { line: `${head}}\n`, hash: CHAIN_START };
  // The framing (`c`, `n`) is not hashed: the chain covers what a record says, so the same mutations give the same chain (and snapshots).
  const hash = chainHash(prev, seq, ts, writerJson, type, payloadCanonical);
  return { line: `${head},"h":"${hash}"}\n`, hash };
}

/** Bytes the envelope adds around a payload, generously (seq up to 16 digits, a 64-char writer, the commit framing, the hash). */
export const ENVELOPE_OVERHEAD_BYTES = 272;

/**
 * Bytes a line of `type` by this writer holds besides its payload, at most:
 * the envelope with the largest seq, time, commit id, record count and a hash,
 * and the newline. What encodeRecord writes is never longer.
 */
export function envelopeBytes(writerJson: string, type: string): number {
  const widest = `{"v":${FORMAT_VERSION},"seq":${Number.MAX_SAFE_INTEGER},"ts":"+275760-09-13T00:00:00.000Z","w":${writerJson},"c":"${'f'.repeat(32)}","n":${MAX_COMMIT_RECORDS},"t":${JSON.stringify(type)},"p":,"h":"${'f'.repeat(64)}"}\n`;
  return Buffer.byteLength(widest);
}

function reject(code: WarningCode, message: string): DecodeResult {
  return { ok: false, rejection: { code, message } };
}

/** Decodes one line (without its newline). Never throws. */
export function decodeRecord(line: string): DecodeResult {
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
  if (typeof o.w !== 'string') return reject(WarningCodes.INVALID_ENVELOPE, 'missing or invalid writer "w"');
  const time = parseIsoInstant(o.ts);
  if (time === undefined) return reject(WarningCodes.INVALID_DATE, `invalid or missing timestamp "ts": ${JSON.stringify(o.ts) ?? 'undefined'}`);
  const record: JournalRecord = { seq: o.seq, time, writer: o.w, type: o.t, payload: o.p };
  if (o.c !== undefined || o.n !== undefined) {
    if (typeof o.c !== 'string' || !COMMIT_ID_RE.test(o.c)) return reject(WarningCodes.INVALID_ENVELOPE, 'invalid commit id "c"');
    const count = o.n ?? 1;
    if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1 || count > MAX_COMMIT_RECORDS) return reject(WarningCodes.INVALID_ENVELOPE, 'invalid commit record count "n"');
    record.commit = { id: o.c, count };
  }
  // A missing or malformed hash does not cost the record: replay keeps it, verify reports it.
  if (isChainHash(o.h)) record.hash = o.h;
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

/**
 * What one line of a segment is: a record, or why not. A sealed torn line
 * is never a record, even when its bytes hold a whole one: the write it
 * came from never finished, so its commit was never acknowledged. Every
 * reader classifies lines with this. Never throws.
 */
export function decodeLine(text: string): LineResult {
  if (!isSealedTornLine(text)) return decodeRecord(text);
  const inner = decodeRecord(text.slice(0, -1));
  const rejection: Rejection = inner.ok
    ? { code: WarningCodes.INCOMPLETE_TAIL, message: 'a whole record whose write never finished (it had no newline), sealed by a later writer; not applied' }
    : { code: inner.rejection.code, message: `${inner.rejection.message} (a torn write, sealed by a later writer)` };
  return { ok: false, rejection, sealed: true };
}
