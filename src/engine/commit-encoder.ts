import { PART_EVENT, encodeRecord, envelopeBytes, type CommitHeader, type LineDecoder } from './record-codec.js';
import { MAX_PARTS, pieceBytesFor, spreadPayload } from './record-parts.js';

/**
 * Encodes one group commit into its lines, the same for every backend: a
 * segment appends them as one write, Redis as one entry each. The envelope
 * is record-codec.ts's, the split of a record too long for one line
 * record-parts.ts's; this module only puts them in commit order (seqs from
 * the head, hashes chained from it, the framing on the first line, `w` where
 * a reader needs it) and counts what a writer proved written. The directory
 * backend (segment-chain.ts) and Redis (batch-encoder.ts) both write through
 * it.
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
  /** The writer's `pid@host`: what a reader attributes its lines to. */
  readonly writer: string;
  /** Bytes a line of this writer leaves for the payload of a `journal.part`. */
  private readonly partRoom: number;
  /** Bytes of a line of this writer besides its payload, for a type with an empty name. */
  private readonly envelopeBase: number;

  constructor(
    /** `pid@host`, JSON-encoded: the `w` of this writer's lines, counted in every envelope (a line may have to name it). */
    readonly writerJson: string,
    readonly maxLineBytes: number,
  ) {
    this.writer = JSON.parse(writerJson) as string;
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
  /** The writer (its `w`) and its line length. */
  budget: LineBudget;
  /**
   * The decoder that read every line this commit follows, where readers
   * decode them in one pass from a known start (a segment): the first line
   * then names the writer only where that rule would not (LineDecoder
   * needsWriter; the commit's other lines take it from the first). Absent
   * where a reader may start at any commit (a Redis stream, read after a
   * snapshot or a trim): every commit names its writer.
   */
  linesBefore?: Pick<LineDecoder, 'needsWriter'>;
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
  const { budget, linesBefore } = encoding;
  const firstWriterJson = linesBefore && !linesBefore.needsWriter(header.id, budget.writer) ? undefined : budget.writerJson;
  const lines: string[] = [];
  const seqs: number[] = [];
  let prev = encoding.prev;
  let hash = '';
  let seq = encoding.firstSeq;
  const line = (time: number, type: string, payloadJson: string) => {
    const first = seq === encoding.firstSeq;
    const encoded = encodeRecord(seq, time, first ? firstWriterJson : undefined, type, payloadJson, prev, first ? header : undefined);
    lines.push(encoded.line.slice(0, -1));
    hash = encoded.hash;
    if (prev !== undefined) prev = hash;
    seq++;
  };
  records.forEach((r, i) => {
    const spread = parts[i];
    // A record of the engine's own (a rotation marker) is always short; the queue refused (canWrite) what cannot be spread.
    if (spread) for (const part of spread) line(r.time, PART_EVENT, part);
    else line(r.time, r.type, r.payloadJson);
    seqs.push(seq - 1);
  });
  return { lines, header, firstSeq: encoding.firstSeq, seqs, hash };
}

/** The commit's lines as a segment holds them: each ends in `\n`, and the commit is one write. */
export function commitText(commit: EncodedCommit): string {
  return `${commit.lines.join('\n')}\n`;
}

/** UTF-8 bytes of commitText(commit), without building it: what a writer's stats count for the commit on any backend. */
export function commitBytes(commit: EncodedCommit): number {
  let bytes = 0;
  for (const line of commit.lines) bytes += Buffer.byteLength(line) + 1;
  return bytes;
}

/**
 * A writer's `stats` (storage-port.ts): the commits it proved in place, the
 * records they carried (a spread record counts once, a rotation marker too)
 * and the bytes written for them. Only a commit known written is counted:
 * one left in doubt is counted by the commit that writes it again, if any.
 */
export class CommitCounters {
  private commits = 0;
  private recordsWritten = 0;
  private bytesWritten = 0;

  /** `commit` is in place; `bytes`: commitBytes(commit), passed by a writer that has it at hand. */
  written(commit: EncodedCommit, bytes = commitBytes(commit)): void {
    this.commits++;
    this.recordsWritten += commit.seqs.length;
    this.bytesWritten += bytes;
  }

  get stats(): Readonly<{ commits: number; recordsWritten: number; bytesWritten: number }> {
    return { commits: this.commits, recordsWritten: this.recordsWritten, bytesWritten: this.bytesWritten };
  }
}
