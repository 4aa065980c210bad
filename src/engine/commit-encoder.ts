import { PART_EVENT, encodeRecord, envelopeBytes, type CommitHeader } from './record-codec.js';
import { MAX_PARTS, pieceBytesFor, spreadPayload } from './record-parts.js';

/**
 * Encodes one group commit into its lines, the same for every backend: a
 * segment appends them as one write, Redis as one entry each. The envelope
 * is record-codec.ts's, the split of a record too long for one line
 * record-parts.ts's; this module only puts them in commit order (seqs from
 * the head, hashes chained from it, the framing on the first line).
 *
 * The file writer (segment-chain.ts writeLocked, canWrite, partsOf) still
 * holds its own copy of this order and of LineBudget's sums; it is meant to
 * move here.
 */

/** A mutation to write, as queued (commit-queue.ts QueuedEntry has these fields). */
export interface RecordToEncode {
  readonly time: number;
  readonly type: string;
  /** The payload in canonical form (sorted keys). */
  readonly payloadJson: string;
}

/** How long a line may be for one writer: whether a record fits, and the parts it is written as when it does not fit on one line. */
export class LineBudget {
  /** Bytes a line of this writer leaves for the payload of a `journal.part`. */
  private readonly partRoom: number;
  /** Bytes of a line of this writer besides its payload, for a type with an empty name. */
  private readonly envelopeBase: number;

  constructor(
    private readonly writerJson: string,
    readonly maxLineBytes: number,
  ) {
    this.partRoom = maxLineBytes - envelopeBytes(writerJson, PART_EVENT);
    this.envelopeBase = envelopeBytes(writerJson, '');
  }

  /** Whether a `type` record with a payload of `payloadBytes` can be written: on one line, or spread over lines that each fit. */
  canWrite(type: string, payloadBytes: number): boolean {
    if (this.fitsOneLine(type, payloadBytes)) return true;
    const pieceBytes = pieceBytesFor(type, this.partRoom);
    // A piece fills at least a third of its room (a character of payload JSON takes 1 to 3 bytes as a JSON string), so this many parts at most.
    return pieceBytes !== undefined && Math.ceil((3 * payloadBytes) / (pieceBytes - 2)) + 1 <= MAX_PARTS;
  }

  /** The part payloads a record is written as, or undefined when it fits on one line (or cannot be spread: canWrite refused it before). */
  partsOf(type: string, payloadJson: string): string[] | undefined {
    // A character is at most 3 bytes of UTF-8: most records are known to fit without measuring them.
    if (3 * payloadJson.length + 6 * type.length + this.envelopeBase <= this.maxLineBytes) return undefined;
    if (this.fitsOneLine(type, Buffer.byteLength(payloadJson))) return undefined;
    const pieceBytes = pieceBytesFor(type, this.partRoom);
    return pieceBytes === undefined ? undefined : spreadPayload(type, payloadJson, pieceBytes);
  }

  private fitsOneLine(type: string, payloadBytes: number): boolean {
    // Most records are far below the limit: a character of the type takes at most 6 bytes as JSON.
    if (payloadBytes + 6 * type.length + this.envelopeBase <= this.maxLineBytes) return true;
    return payloadBytes + envelopeBytes(this.writerJson, type) <= this.maxLineBytes;
  }
}

export interface CommitEncoding {
  /** Seq of the commit's first line: the last applied seq + 1. */
  firstSeq: number;
  /** The last applied record's hash, or undefined to write without the hash chain. */
  prev: string | undefined;
  /** The writer's tag (`c`). */
  tag: string;
  /** `w` of the first line, JSON-encoded; undefined where the lines before already say it (LineDecoder.needsWriter). */
  firstWriterJson: string | undefined;
  budget: LineBudget;
}

export interface EncodedCommit {
  /** The lines, in order, without their newlines. */
  lines: string[];
  header: CommitHeader;
  firstSeq: number;
  /** Each record's seq: that of its last line (a spread record takes one seq per line). */
  seqs: number[];
  /** The hash of the last line: the next commit's `prev` (CHAIN_START without the chain). */
  hash: string;
}

/** The lines of one commit of `records` (at least one). */
export function encodeCommit(records: readonly RecordToEncode[], encoding: CommitEncoding): EncodedCommit {
  if (records.length === 0) throw new RangeError('a commit holds at least one record');
  // A record too long for one line goes as parts, all in this commit (record-parts.ts): `n` counts lines.
  const parts = records.map((r) => encoding.budget.partsOf(r.type, r.payloadJson));
  let count = 0;
  for (const p of parts) count += p?.length ?? 1;
  const header: CommitHeader = { id: encoding.tag, count };
  const lines: string[] = [];
  const seqs: number[] = [];
  let prev = encoding.prev;
  let hash = '';
  let seq = encoding.firstSeq;
  const line = (time: number, type: string, payloadJson: string) => {
    const first = seq === encoding.firstSeq;
    const encoded = encodeRecord(seq, time, first ? encoding.firstWriterJson : undefined, type, payloadJson, prev, first ? header : undefined);
    lines.push(encoded.line.slice(0, -1));
    hash = encoded.hash;
    if (prev !== undefined) prev = hash;
    seq++;
  };
  records.forEach((r, i) => {
    const spread = parts[i];
    if (spread) for (const part of spread) line(r.time, PART_EVENT, part);
    else line(r.time, r.type, r.payloadJson);
    seqs.push(seq - 1);
  });
  return { lines, header, firstSeq: encoding.firstSeq, seqs, hash };
}
