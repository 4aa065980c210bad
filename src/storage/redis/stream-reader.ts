import { CommitAssembler } from '../../engine/commit-framing.js';
import { applyCommitRecords, chainHeadAfter } from '../../engine/commit-apply.js';
import { LineDecoder, ROTATE_EVENT, type JournalRecord, type Rejection } from '../../engine/record-codec.js';
import { WarningCodes, type JournalWarning } from '../../engine/warnings.js';
import type { JournalConsumer } from '../../engine/journal-consumer.js';
import type { RedisConnection, RedisReply } from './connection.js';
import { parseHead, type AppendBatch, type ChainHead } from './scripts.js';
import { readManifest } from './snapshot-keys.js';

/**
 * Reads a store's stream `{P}:log` after a seq, commit by commit, the way a
 * directory's reader reads a segment after an offset (docs/FORMAT.md, "The
 * Redis backend", "Records in the stream" and "Reading"):
 *
 * - each entry `<seq>-0` holds one line in its field `r`, decoded by the
 *   LineDecoder rule of record-codec.ts, over the stream in id order;
 * - records are applied whole commits at a time by the framing rule of
 *   commit-framing.ts (a page may end inside a commit: it is applied once
 *   the next page completes it), and spread records are joined
 *   (commit-apply.ts);
 * - ids follow seqs without a hole. The first id after a snapshot's seq S
 *   must be S+1, and each next one the one after: anything else is a gap
 *   (a compaction trimmed the stream past this reader: read the manifest
 *   again; or records were lost). A page is read with the head in one
 *   MULTI, so a stream with nothing after S but a head past S is a gap too
 *   (a compaction folded and trimmed everything this reader had not read).
 * - the stream still holds what this reader read: each page starts at the
 *   last entry read, inclusive, and that entry must be there with the line
 *   read (or written) before. Entries never change, and a compaction only
 *   trims, so a different line there, or none without a snapshot that
 *   folds exactly up to it with the same hash, means the store lost records
 *   this process had (a failover to a replica that lacked them, a restore
 *   from an older backup), and others may have written on after them: a
 *   reader that read on would follow that other history, and a commit
 *   chained from it would prove nothing of the lost one (redis-storage.ts,
 *   the owed commits).
 *
 * Warnings give the stream's key as `file` and the entry id as `entry`.
 */

/** Where a line was read: the stream's key and the entry id. */
export interface StreamPlace {
  file: string;
  entry: string;
}

/** What the reader hands records to: JournalConsumer's apply (segment-chain.ts). */
export interface StreamConsumer {
  apply: JournalConsumer['apply'];
}

export interface StreamReaderOptions {
  conn: RedisConnection;
  consumer: StreamConsumer;
  /** The last record already applied: the snapshot's seq and hash (0 and '' for none). */
  after: ChainHead;
  maxLineBytes: number;
  /** Largest record joined from parts (record-parts.ts). */
  maxRecordBytes: number;
  warn: (w: JournalWarning) => void;
  /** Entries per XRANGE (default 512). */
  pageSize?: number;
}

export type ReadOutcome =
  /** `entries` entries were read; `more`: the page was full, read on. */
  | { kind: 'read'; entries: number; more: boolean }
  /**
   * The stream does not continue where this reader is: `expected` is the
   * seq it needed, `found` the first id the stream had instead (undefined:
   * none), `head` the head read with it (when read). Nothing of the page was
   * applied; the reader stays where it was. The caller reads the manifest
   * again: a newer snapshot means a compaction trimmed the stream (start over
   * from it), the same one means records were lost (REDIS_DATA_LOST).
   */
  | { kind: 'gap'; expected: number; found: number | undefined; head?: ChainHead | undefined; reason: string };

const DEFAULT_PAGE_SIZE = 512;
const ENTRY_ID_RE = /^([1-9][0-9]{0,15})-0$/;

export interface StreamEntry {
  id: string;
  /** The seq its id names, or undefined for an id that is not `<seq>-0`. */
  seq: number | undefined;
  /** Field `r`, or undefined when the entry has none. */
  line: string | undefined;
}

/** Entries of an XRANGE reply (or of one stream in an XREAD reply). */
export function entriesOf(reply: RedisReply): StreamEntry[] {
  if (!Array.isArray(reply)) return [];
  const out: StreamEntry[] = [];
  for (const item of reply) {
    if (!Array.isArray(item)) continue;
    const id = String(item[0]);
    const fields = Array.isArray(item[1]) ? item[1] : [];
    let line: string | undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === 'r' && typeof fields[i + 1] === 'string') {
        line = fields[i + 1] as string;
        break;
      }
    }
    const m = ENTRY_ID_RE.exec(id);
    out.push({ id, seq: m ? Number(m[1]) : undefined, line });
  }
  return out;
}

/** Seq of the last record entry (`<seq>-0`) of a page, if any. */
function lastRecordSeq(entries: readonly StreamEntry[]): number | undefined {
  for (let i = entries.length - 1; i >= 0; i--) if (entries[i]!.seq !== undefined) return entries[i]!.seq;
  return undefined;
}

/** What one stream entry is: a record (with its line, as written), or why it is not one. */
export type DecodedEntry =
  | { kind: 'record'; record: JournalRecord; line: string; place: StreamPlace }
  /** Warned at its place; `sealed`: a sealed torn line, which ends the commit it belonged to (commit-framing.ts). */
  | { kind: 'unreadable'; warning: JournalWarning; place: StreamPlace; sealed: boolean };

/**
 * Decodes one entry of the stream `file` by the rules of "Records in the
 * stream": an id `<seq>-0`, a field `r` no longer than maxLineBytes, a line
 * the LineDecoder reads (over the stream in id order, so `decoder` is the
 * reader's own), and the seq the id names. Every reader of a stream decodes
 * through this: the store's catch-up here, and the tools' history reader.
 */
export function decodeStreamEntry(e: StreamEntry, decoder: LineDecoder, maxLineBytes: number, file: string): DecodedEntry {
  const place: StreamPlace = { file, entry: e.id };
  const unreadable = (code: JournalWarning['code'], message: string, sealed = false): DecodedEntry => ({ kind: 'unreadable', warning: { code, message, ...place }, place, sealed });
  if (e.seq === undefined) return unreadable(WarningCodes.UNPARSABLE_LINE, 'a stream entry whose id is not <seq>-0 (not written by this library); skipped');
  if (e.line === undefined) return unreadable(WarningCodes.UNPARSABLE_LINE, 'a stream entry without its field "r"');
  if (e.line.length > maxLineBytes || (3 * e.line.length > maxLineBytes && Buffer.byteLength(e.line) > maxLineBytes)) {
    return unreadable(WarningCodes.LINE_TOO_LONG, `line of ${Buffer.byteLength(e.line)} bytes exceeds maxLineBytes (${maxLineBytes}); skipped`);
  }
  const decoded = decoder.decode(e.line);
  if (!decoded.ok) return { kind: 'unreadable', warning: { ...decoded.rejection, ...place }, place, sealed: 'sealed' in decoded };
  // The id is what keeps the stream gapless; a line that says otherwise was altered.
  if (decoded.record.seq !== e.seq) return unreadable(WarningCodes.INVALID_ENVELOPE, `the line says seq ${decoded.record.seq} in entry ${e.id}; skipped`);
  return { kind: 'record', record: decoded.record, line: e.line, place };
}

export class StreamReader {
  private readonly conn: RedisConnection;
  private readonly consumer: StreamConsumer;
  private readonly warn: (w: JournalWarning) => void;
  private readonly maxLineBytes: number;
  private readonly maxRecordBytes: number;
  private readonly pageSize: number;
  private readonly decoder = new LineDecoder();
  private readonly framing: CommitAssembler<JournalRecord, StreamPlace>;
  /** Seq of the last record entry read (applied, or held in an open commit). */
  private readSeq: number;
  /**
   * Id of the last entry read, a record's or not: the next read starts
   * after it (an exclusive range), so an entry someone added with an id
   * between two records' is read once too, by readers past it already.
   */
  private lastId: string;
  private chainHead: string;
  /** The line of the entry at lastId as this reader read or wrote it (null: an entry without `r`); undefined until it has read one. */
  private lastLine: string | null | undefined;

  constructor(options: StreamReaderOptions) {
    this.conn = options.conn;
    this.consumer = options.consumer;
    this.warn = options.warn;
    this.maxLineBytes = options.maxLineBytes;
    this.maxRecordBytes = options.maxRecordBytes;
    this.pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
    if (!Number.isSafeInteger(this.pageSize) || this.pageSize < 1) throw new RangeError(`pageSize must be a positive integer, got ${this.pageSize}`);
    this.readSeq = options.after.seq;
    this.lastId = `${options.after.seq}-0`;
    this.chainHead = options.after.hash;
    this.framing = new CommitAssembler<JournalRecord, StreamPlace>(options.after.seq, {
      applied: (records, places) => this.applyCommit(records, places),
      rejected: () => undefined, // warned by the framing rule; a Redis commit is written whole, so only damage gets here
      warn: (w) => this.warn(w),
    });
  }

  /** Seq of the last record applied: what the next commit chains from. */
  get lastSeq(): number {
    return this.framing.lastSeq;
  }

  /** Hash of the last record applied (CHAIN_START when it had none). */
  get lastHash(): string {
    return this.chainHead;
  }

  /** The head this reader has applied up to, as `{P}:head` would say it. */
  get head(): ChainHead | undefined {
    return this.lastSeq === 0 ? undefined : { seq: this.lastSeq, hash: this.chainHead };
  }

  /** Seq of the last entry read, which is past lastSeq while a commit a page cut is open. */
  get lastReadSeq(): number {
    return this.readSeq;
  }

  /**
   * This process's own commit, appended right after the last record read
   * (the append script's head check proved it): the reader moves past it
   * without reading it back, as a segment's reader skips its own bytes.
   */
  wrote(batch: AppendBatch): void {
    this.framing.ownCommit(batch.firstSeq, batch.lines.length, { file: this.conn.keys.log, entry: `${batch.firstSeq}-0` });
    this.readSeq = batch.head.seq;
    this.lastId = `${batch.head.seq}-0`;
    this.lastLine = batch.lines[batch.lines.length - 1];
    this.chainHead = batch.head.hash;
  }

  /**
   * One page: XRANGE from the last entry read (inclusive, to check it is
   * still there as read) or, before any, after the base, with the head, in
   * one MULTI.
   */
  async readPage(): Promise<ReadOutcome> {
    const k = this.conn.keys;
    const checked = this.lastLine !== undefined;
    const [headText, range] = await this.conn.transaction([
      ['GET', k.head],
      ['XRANGE', k.log, checked ? this.lastId : `(${this.lastId}`, '+', 'COUNT', String(this.pageSize + (checked ? 1 : 0))],
    ]);
    let entries = entriesOf(range ?? null);
    if (checked) {
      const first = entries[0];
      if (first?.id === this.lastId) {
        if ((first.line ?? null) !== this.lastLine) return this.lostRead(entries, `the stream ${k.log} holds another line in entry ${this.lastId} than the one this process read there`);
        entries = entries.slice(1);
      } else if (!(await this.trimmedAtLastRead())) {
        return this.lostRead(entries, `the stream ${k.log} no longer holds entry ${this.lastId}, which this process read, and no snapshot folds up to it`);
      }
    }
    const gap = this.findGap(entries);
    if (gap) return gap;
    const more = entries.length === this.pageSize;
    if (!more) {
      const head = parseHead(typeof headText === 'string' ? headText : null);
      const headSeq = head === 'invalid' ? undefined : (head?.seq ?? 0);
      const reached = lastRecordSeq(entries) ?? this.readSeq;
      if (head === 'invalid' || headSeq !== reached) {
        const headShown = head === 'invalid' ? JSON.stringify(headText) : head ? `${head.seq}` : 'none';
        return {
          kind: 'gap',
          expected: this.readSeq + 1,
          found: entries[0]?.seq,
          head: head === 'invalid' ? undefined : head,
          reason: `the stream ${k.log} ends at seq ${reached} but the head ${k.head} is ${headShown}`,
        };
      }
    }
    this.take(entries);
    return { kind: 'read', entries: entries.length, more };
  }

  /**
   * The last entry read is gone: a compaction trimmed it, which shows as a
   * snapshot folding exactly up to it, with its hash (a snapshot folding
   * past it is a gap the caller reads the snapshot again for).
   */
  private async trimmedAtLastRead(): Promise<boolean> {
    if (this.readSeq !== this.lastSeq) return false; // inside a commit: no snapshot ends there
    const read = await readManifest(this.conn);
    return read.kind === 'ok' && read.manifest.seq === this.lastSeq && read.manifest.h === this.chainHead;
  }

  private lostRead(entries: readonly StreamEntry[], reason: string): Extract<ReadOutcome, { kind: 'gap' }> {
    return { kind: 'gap', expected: this.readSeq + 1, found: entries.find((e) => e.seq !== undefined && e.seq > this.readSeq)?.seq, reason };
  }

  /** Pages until the stream's end (or a gap): what catchUp() applies. */
  async catchUp(): Promise<ReadOutcome> {
    let total = 0;
    for (;;) {
      const page = await this.readPage();
      if (page.kind === 'gap') return page;
      total += page.entries;
      if (!page.more) return { kind: 'read', entries: total, more: false };
    }
  }

  /**
   * Waits up to `blockMs` for entries after the last one read (XREAD
   * BLOCK), and applies what came. A blocked command holds its connection:
   * give a follower a connection of its own. Without a head to compare
   * with, a gap shows when the next entry arrives; an empty wait is
   * `{ entries: 0 }`, and catchUp() is the complete check.
   */
  async readNew(blockMs: number): Promise<ReadOutcome> {
    if (!Number.isSafeInteger(blockMs) || blockMs < 1) throw new RangeError(`blockMs must be a positive integer, got ${blockMs}`);
    const k = this.conn.keys;
    const reply = await this.conn.command(['XREAD', 'COUNT', String(this.pageSize), 'BLOCK', String(blockMs), 'STREAMS', k.log, this.lastId], {
      timeoutMs: blockMs + 10_000,
    });
    const stream = Array.isArray(reply) ? reply.find((s) => Array.isArray(s) && s[0] === k.log) : undefined;
    const entries = entriesOf(Array.isArray(stream) ? (stream[1] ?? null) : null);
    const gap = this.findGap(entries);
    if (gap) return gap;
    this.take(entries);
    return { kind: 'read', entries: entries.length, more: entries.length === this.pageSize };
  }

  /**
   * The first record entry (`<seq>-0`) that is not the seq after the one
   * before it. Entries with other ids are not records of this library (the
   * append script writes only `<seq>-0`): take() reports and skips them.
   */
  private findGap(entries: readonly StreamEntry[]): Extract<ReadOutcome, { kind: 'gap' }> | undefined {
    let expected = this.readSeq + 1;
    for (const e of entries) {
      if (e.seq === undefined) continue;
      if (e.seq !== expected) {
        return { kind: 'gap', expected, found: e.seq, reason: `the stream ${this.conn.keys.log} has entry ${e.id} where seq ${expected} belongs` };
      }
      expected++;
    }
    return undefined;
  }

  private take(entries: readonly StreamEntry[]): void {
    const file = this.conn.keys.log;
    for (const e of entries) {
      this.lastId = e.id;
      this.lastLine = e.line ?? null;
      if (e.seq !== undefined) this.readSeq = e.seq;
      const decoded = decodeStreamEntry(e, this.decoder, this.maxLineBytes, file);
      if (decoded.kind === 'unreadable') {
        this.warn(decoded.warning);
        this.framing.unreadableLine(decoded.place, decoded.sealed);
        continue;
      }
      this.framing.record(decoded.record, decoded.place);
    }
  }

  private applyCommit(records: readonly JournalRecord[], places: readonly StreamPlace[]): void {
    this.chainHead = chainHeadAfter(records, this.chainHead);
    applyCommitRecords(
      records,
      places,
      this.maxRecordBytes,
      (record, later) => {
        // There are no segments on Redis: a rotation marker (a store copied record by record) leads nowhere.
        if (record.type === ROTATE_EVENT) return { code: WarningCodes.INVALID_PAYLOAD, message: 'a rotation marker in a Redis stream, where there are no segments; skipped' };
        return this.consumer.apply(record, later);
      },
      this.warn,
    );
  }
}
