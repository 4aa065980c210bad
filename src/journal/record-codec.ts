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
}

export interface Rejection {
  code: WarningCode;
  message: string;
}

export type DecodeResult = { ok: true; record: JournalRecord } | { ok: false; rejection: Rejection };

/**
 * Encodes one envelope. The payload arrives already serialized (it was sized
 * when appended), so a commit only concatenates strings.
 */
export function encodeRecord(seq: number, time: number, writerJson: string, type: string, payloadJson: string): string {
  return `{"v":${FORMAT_VERSION},"seq":${seq},"ts":"${new Date(time).toISOString()}","w":${writerJson},"t":${JSON.stringify(type)},"p":${payloadJson}}\n`;
}

/** Bytes the envelope adds around a payload, generously (seq up to 16 digits, a 64-char writer). */
export const ENVELOPE_OVERHEAD_BYTES = 160;

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
  return { ok: true, record: { seq: o.seq, time, writer: o.w, type: o.t, payload: o.p } };
}
