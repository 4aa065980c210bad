import crypto from 'node:crypto';
import stableStringify from 'fast-json-stable-stringify';
import { parseIsoInstant } from './dates.js';
import { WarningCodes, type WarningCode } from './warnings.js';

/** The journal format version this library writes and the highest it reads. */
export const FORMAT_VERSION = 1;

/** Event types the engine itself writes; reducers never see them. */
export const ROTATE_EVENT = 'journal.rotate';

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
}

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
  return crypto.hash('sha256', canonical, 'hex');
}

/** The same hash computed from a parsed line, for verification. */
export function chainHashOf(prev: string, line: Readonly<Record<string, unknown>>): string {
  const canonical = stableStringify({ p: line.p, prev, seq: line.seq, t: line.t, ts: line.ts, v: line.v, w: line.w });
  return crypto.hash('sha256', canonical, 'hex');
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
export function encodeRecord(seq: number, time: number, writerJson: string, type: string, payloadCanonical: string, prev: string | undefined): { line: string; hash: string } {
  const ts = new Date(time).toISOString();
  const head = `{"v":${FORMAT_VERSION},"seq":${seq},"ts":"${ts}","w":${writerJson},"t":${JSON.stringify(type)},"p":${payloadCanonical}`;
  if (prev === undefined) return { line: `${head}}\n`, hash: CHAIN_START };
  const hash = chainHash(prev, seq, ts, writerJson, type, payloadCanonical);
  return { line: `${head},"h":"${hash}"}\n`, hash };
}

/** Bytes the envelope adds around a payload, generously (seq up to 16 digits, a 64-char writer, the hash). */
export const ENVELOPE_OVERHEAD_BYTES = 240;

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
  // A missing or malformed hash does not cost the record: replay keeps it, verify reports it.
  if (isChainHash(o.h)) record.hash = o.h;
  return { ok: true, record };
}
