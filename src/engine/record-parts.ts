import { ErrorCodes, SessionJournalError, requirePositive } from '../errors.js';
import { MAX_COMMIT_RECORDS, PART_EVENT, type JournalRecord, type Rejection } from './record-codec.js';
import { WarningCodes } from './warnings.js';

/**
 * A record too long for one line is written as parts (docs/FORMAT.md,
 * "Records spread over several lines"): consecutive `journal.part` lines of
 * one commit, each carrying a piece of the record's canonical payload JSON
 * as a string, `{"d": piece, "i": index, "n": parts, "t": the record's type}`.
 * Each part is an ordinary line with its own seq and hash, so the commit
 * framing, the hash chain, verify and repair treat it like any other. The
 * record readers apply is the joined payload under type `t`, with the seq
 * and hash of its last part. This module is the one place that splits
 * (writers) and joins (every reader).
 */

/** Largest record (its payload JSON, in UTF-8 bytes) written or joined by default: a session holding it still fits a snapshot line (128 MiB). */
export const DEFAULT_MAX_RECORD_BYTES = 64 * 1024 * 1024;
/** The most maxRecordBytes may be: joining and parsing hold the payload several times, and a V8 string holds about 512 M characters. */
export const MAX_RECORD_BYTES_LIMIT = 256 * 1024 * 1024;

/** A record-size option (`maxRecordBytes`, import's `maxSessionBytes`): positive and at most MAX_RECORD_BYTES_LIMIT, or INVALID_OPTION. */
export function requireRecordBytes(option: string, value: number): number {
  requirePositive(option, value);
  if (value > MAX_RECORD_BYTES_LIMIT) {
    throw new SessionJournalError(ErrorCodes.INVALID_OPTION, `${option} must be at most ${MAX_RECORD_BYTES_LIMIT} (256 MiB), got ${value}`, { details: { option, value } });
  }
  return value;
}

/** Bytes of a part's payload besides its piece: `{"d":…,"i":I,"n":N,"t":TYPE}` with I and N as wide as a commit allows. */
const partOverhead = (type: string): number => `{"d":,"i":${MAX_COMMIT_RECORDS},"n":${MAX_COMMIT_RECORDS},"t":}`.length + Buffer.byteLength(JSON.stringify(type));
/** A piece smaller than this would spread a record over too many lines: maxLineBytes is too small to spread it. */
const MIN_PIECE_BYTES = 256;

/**
 * The most bytes a piece (as a JSON string, quotes included) may take so
 * that a part of a `type` record fits in `room` bytes of payload, or
 * undefined when that leaves too little to spread a record at all.
 */
export function pieceBytesFor(type: string, room: number): number | undefined {
  const bytes = room - partOverhead(type);
  return bytes >= MIN_PIECE_BYTES ? bytes : undefined;
}

/** Most lines one spread record may take, so a batch around it stays under the commit bound readers believe. */
export const MAX_PARTS = MAX_COMMIT_RECORDS / 2;

/**
 * The payloads of the parts that carry `payloadJson` (a `type` record's
 * canonical payload), each piece at most `pieceBytes` bytes as a JSON
 * string. A piece never ends between the two halves of a surrogate pair, so
 * every piece is well-formed text.
 */
export function spreadPayload(type: string, payloadJson: string, pieceBytes: number): string[] {
  const pieces: string[] = [];
  for (let start = 0; start < payloadJson.length; ) {
    // A character takes at least one byte, so `pieceBytes` characters is the most that can fit; shrink until it does.
    let end = Math.min(payloadJson.length, start + pieceBytes);
    for (;;) {
      if (end < payloadJson.length && isHighSurrogate(payloadJson.charCodeAt(end - 1))) end--;
      const bytes = Buffer.byteLength(JSON.stringify(payloadJson.slice(start, end)));
      if (bytes <= pieceBytes) break;
      end = start + Math.max(1, Math.min(end - start - 1, Math.floor(((end - start) * pieceBytes) / bytes)));
    }
    pieces.push(payloadJson.slice(start, end));
    start = end;
  }
  const typeJson = JSON.stringify(type);
  // Sorted keys: the canonical form, as every payload is written (and verify rehashes it).
  return pieces.map((piece, i) => `{"d":${JSON.stringify(piece)},"i":${i},"n":${pieces.length},"t":${typeJson}}`);
}

const isHighSurrogate = (code: number): boolean => code >= 0xd800 && code <= 0xdbff;

/** What a reader does with the readable records of one applied commit, once parts are joined. */
export interface JoinedRecordSink {
  /**
   * Records `first` to `last` (indices into the commit's records, inclusive)
   * are one record: `record` itself when `first === last`, else the record
   * joined from their parts.
   */
  whole(record: JournalRecord, first: number, last: number): void;
  /** Records `first` to `last` are parts that do not join into a record: none of them is applied. */
  broken(first: number, last: number, rejection: Rejection): void;
}

interface Part {
  type: string;
  index: number;
  count: number;
  piece: string;
}

function partOf(payload: unknown): Part | undefined {
  const p = payload as { t?: unknown; i?: unknown; n?: unknown; d?: unknown } | null;
  if (typeof p !== 'object' || p === null || typeof p.t !== 'string' || p.t === '' || p.t === PART_EVENT || typeof p.d !== 'string') return undefined;
  const { i, n } = p;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 2 || n > MAX_COMMIT_RECORDS) return undefined;
  if (typeof i !== 'number' || !Number.isSafeInteger(i) || i < 0 || i >= n) return undefined;
  return { type: p.t, index: i, count: n, piece: p.d };
}

interface OpenRecord {
  first: number;
  type: string;
  count: number;
  pieces: string[];
  bytes: number;
}

const broken = (message: string, code: Rejection['code'] = WarningCodes.INCOMPLETE_RECORD): Rejection => ({ code, message });

/**
 * Joins the parts among the readable records of one commit the framing
 * applies (commit-framing.ts), in order: the one rule every reader uses.
 * Parts are always written inside one commit, so a record is joined only
 * from consecutive parts of the same commit; parts that do not join (one
 * missing or damaged, out of order, another record's, the commit ending
 * before the last, or a payload over `maxRecordBytes`) are dropped whole.
 * Records of one line pass through untouched. Never throws.
 */
export function joinParts(count: number, recordAt: (i: number) => JournalRecord, maxRecordBytes: number, sink: JoinedRecordSink): void {
  let open: OpenRecord | undefined;
  const drop = (last: number, rejection: Rejection) => {
    sink.broken(open!.first, last, rejection);
    open = undefined;
  };
  for (let i = 0; i < count; i++) {
    const record = recordAt(i);
    if (record.type !== PART_EVENT) {
      if (open) drop(i - 1, broken(`the record spread over ${open.count} lines ends after ${open.pieces.length} of them; its parts are not applied`));
      sink.whole(record, i, i);
      continue;
    }
    const part = partOf(record.payload);
    if (open && (!part || part.index !== open.pieces.length || part.count !== open.count || part.type !== open.type)) {
      drop(i - 1, broken(`the record spread over ${open.count} lines is interrupted after ${open.pieces.length} of them; its parts are not applied`));
    }
    if (!part) {
      sink.broken(i, i, broken('a part of a record spread over several lines, with an invalid payload; not applied', WarningCodes.INVALID_PAYLOAD));
      continue;
    }
    if (!open) {
      if (part.index !== 0) {
        sink.broken(i, i, broken(`part ${part.index + 1} of ${part.count} of a ${part.type} record whose earlier parts are missing or damaged; not applied`));
        continue;
      }
      open = { first: i, type: part.type, count: part.count, pieces: [], bytes: 0 };
    }
    open.bytes += Buffer.byteLength(part.piece);
    open.pieces.push(part.piece);
    if (open.pieces.length < open.count) continue;
    const done = open;
    if (done.bytes > maxRecordBytes) {
      drop(i, broken(`a ${done.type} record of ${done.bytes} bytes, over maxRecordBytes (${maxRecordBytes}); not applied (read it with the writers' maxRecordBytes)`, WarningCodes.RECORD_TOO_LARGE));
      continue;
    }
    let payload: unknown;
    try {
      payload = JSON.parse(done.pieces.join(''));
    } catch (err) {
      drop(i, broken(`the ${done.count} parts of a ${done.type} record do not join into JSON (${(err as Error).message}); not applied`));
      continue;
    }
    open = undefined;
    const joined: JournalRecord = { seq: record.seq, time: record.time, writer: record.writer, type: done.type, payload, lines: done.count };
    if (record.hash !== undefined) joined.hash = record.hash;
    const head = recordAt(done.first).commit;
    if (head) joined.commit = head;
    sink.whole(joined, done.first, i);
  }
  if (open) drop(count - 1, broken(`the commit ends after ${open.pieces.length} of the ${open.count} lines of a ${open.type} record; its parts are not applied`));
}
