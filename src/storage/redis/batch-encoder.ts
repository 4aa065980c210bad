import { CHAIN_START, newWriterTag } from '../../engine/record-codec.js';
import { LineBudget, encodeCommit, type EncodedCommit, type RecordToEncode } from '../../engine/commit-encoder.js';
import type { AppendBatch, ChainHead } from './scripts.js';

/**
 * A writer's group commits as the append script takes them: the same lines
 * as a segment holds (commit-encoder.ts), numbered and chained from the head
 * the writer knows. On Redis every commit's first line names its writer
 * (`w`): there is no segment whose earlier lines would say it, and a reader
 * may start at any commit (after a snapshot, after a trim).
 */
export interface RedisBatchEncoderOptions {
  /** `pid@host`, JSON-encoded. */
  writerJson: string;
  maxLineBytes: number;
  /** False: lines without `h` (the store's `hashChain: false`). */
  hashChain: boolean;
  /** The commits' `c`; default a fresh random tag. */
  tag?: string;
}

export interface EncodedBatch {
  /** What StoreScripts.append takes. */
  batch: AppendBatch;
  /** The lines, their framing and each record's seq (an entry's seq once acknowledged). */
  commit: EncodedCommit;
}

export class RedisBatchEncoder {
  readonly tag: string;
  /** This writer's field in `{P}:writers`: its tag and its name, so that two writers with the same random tag keep apart. */
  readonly writerField: string;
  private readonly budget: LineBudget;
  private readonly hashChain: boolean;

  constructor(options: RedisBatchEncoderOptions) {
    this.tag = options.tag ?? newWriterTag();
    this.budget = new LineBudget(options.writerJson, options.maxLineBytes);
    this.writerField = `${this.tag} ${this.budget.writer}`;
    this.hashChain = options.hashChain;
  }

  /** Whether a record of `type` with `payloadBytes` of payload can be written (one line, or parts that each fit). */
  canWrite(type: string, payloadBytes: number): boolean {
    return this.budget.canWrite(type, payloadBytes);
  }

  /** One commit of `records`, chained from `head` (undefined: a store with no record yet). */
  encode(head: ChainHead | undefined, records: readonly RecordToEncode[]): EncodedBatch {
    const commit = encodeCommit(records, {
      firstSeq: (head?.seq ?? 0) + 1,
      prev: this.hashChain ? (head?.hash ?? CHAIN_START) : undefined,
      tag: this.tag,
      budget: this.budget,
      // No linesBefore: every commit's first line names its writer.
    });
    const last = commit.firstSeq + commit.lines.length - 1;
    return { batch: { firstSeq: commit.firstSeq, lines: commit.lines, head: { seq: last, hash: commit.hash }, writer: this.writerField }, commit };
  }
}
