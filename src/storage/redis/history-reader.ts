import { ErrorCodes, SessionJournalError } from '../../errors.js';
import { CommitAssembler } from '../../engine/commit-framing.js';
import { LineDecoder, type CommitHeader, type JournalRecord } from '../../engine/record-codec.js';
import { joinParts } from '../../engine/record-parts.js';
import { WarningCodes, type JournalWarning, type WarningHandler } from '../../engine/warnings.js';
import { connectRedis, type RedisConnection } from './connection.js';
import type { RedisLocation } from './redis-location.js';
import type { SnapshotManifest } from './scripts.js';
import { checkServerSettings } from './server-config.js';
import { readManifest } from './snapshot-keys.js';
export { readRedisBase, type RedisBase } from './snapshot-keys.js';
import { decodeStreamEntry, entriesOf, type StreamPlace } from './stream-reader.js';

/**
 * The history of a store on Redis, for the tools that read a whole store
 * (replay, replay --state --at, verify, stats), as
 * storage/file/history-reader.ts gives a directory's segments: the snapshot
 * the manifest names (docs/FORMAT.md, "The Redis backend"), then every entry
 * of the stream after it, in id order, each record with the line as written
 * (verify recomputes hashes from it) and its entry id as its place.
 * Read-only and lockless: nothing is written, no lock is taken.
 *
 * Records are decoded and framed exactly as a store reads them
 * (stream-reader.ts's decodeStreamEntry, commit-framing.ts, spread records
 * joined by record-parts.ts). Unlike a store's reader, a gap (entries
 * missing after a record) is not a reason to stop: it is handed to the tool,
 * which reads the manifest again to tell a compaction that trimmed past it
 * from lost records, and the history goes on after the gap.
 */

/** One line of the stream: the record it holds, the parsed line as written, and its entry. */
export interface StreamLine {
  record: JournalRecord;
  raw: Record<string, unknown>;
  place: StreamPlace;
}

export type StreamHistoryItem =
  /** A record readers apply. Spread over several entries, it is joined and `lines` holds each (`raw` is then the last's). */
  | { kind: 'record'; record: JournalRecord; raw: Record<string, unknown>; place: StreamPlace; lines?: StreamLine[] }
  /** Entries readers pass over without applying anything: parts of a spread record that do not join (each also a problem). They are in the hash chain. */
  | { kind: 'parts'; lines: StreamLine[] }
  | { kind: 'problem'; warning: JournalWarning }
  /** Record entries missing: after seq `afterSeq` the stream has seq `found` (at `place`). */
  | { kind: 'gap'; afterSeq: number; found: number; place: StreamPlace };

export interface StreamHistoryOptions {
  /** Read the entries after this seq: the snapshot's (0: from the stream's start). */
  afterSeq: number;
  maxLineBytes: number;
  maxRecordBytes: number;
  /** Entries per XRANGE (default 512). */
  pageSize?: number;
}

const DEFAULT_PAGE_SIZE = 512;

interface Framed {
  seq: number;
  commit?: CommitHeader;
  line: StreamLine;
}

const parsedLine = (text: string): Record<string, unknown> => {
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return {};
  }
};

/** The stream of one store, read page by page to its end (its end when the last page was read). */
export class StreamHistory {
  private lastId: string;
  private readSeq: number;
  private readonly framing: CommitAssembler<Framed, StreamPlace>;
  private readonly decoder = new LineDecoder();
  private readonly ready: StreamHistoryItem[] = [];
  private readonly pageSize: number;

  constructor(
    private readonly conn: RedisConnection,
    private readonly options: StreamHistoryOptions,
  ) {
    this.pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
    this.lastId = `${options.afterSeq}-0`;
    this.readSeq = options.afterSeq;
    this.framing = new CommitAssembler<Framed, StreamPlace>(options.afterSeq, {
      applied: (records) => this.applied(records),
      rejected: () => undefined, // its warning says it all
      // Regressions are the chain checker's to explain (verify), as for a directory.
      warn: (warning) => warning.code !== WarningCodes.SEQUENCE_REGRESSION && this.ready.push({ kind: 'problem', warning }),
    });
  }

  /** Seq of the last record applied: where a follower goes on from. */
  get lastSeq(): number {
    return this.framing.lastSeq;
  }

  /** Id of the last entry read: the next read starts after it (an exclusive range). */
  get lastEntryId(): string {
    return this.lastId;
  }

  /** Every entry after `afterSeq`, page by page, to the end of the stream. */
  async *read(): AsyncGenerator<StreamHistoryItem> {
    const file = this.conn.keys.log;
    for (;;) {
      const reply = await this.conn.command(['XRANGE', file, `(${this.lastId}`, '+', 'COUNT', String(this.pageSize)]);
      const entries = entriesOf(reply);
      for (const e of entries) {
        this.lastId = e.id;
        if (e.seq !== undefined) {
          if (e.seq !== this.readSeq + 1) this.ready.push({ kind: 'gap', afterSeq: this.readSeq, found: e.seq, place: { file, entry: e.id } });
          this.readSeq = e.seq;
        }
        const decoded = decodeStreamEntry(e, this.decoder, this.options.maxLineBytes, file);
        if (decoded.kind === 'unreadable') {
          this.ready.push({ kind: 'problem', warning: decoded.warning });
          this.framing.unreadableLine(decoded.place, decoded.sealed);
        } else {
          const line = { record: decoded.record, raw: parsedLine(decoded.line), place: decoded.place };
          this.framing.record({ seq: decoded.record.seq, commit: decoded.record.commit, line }, decoded.place);
        }
        yield* this.ready.splice(0);
      }
      if (entries.length < this.pageSize) break;
    }
    // The append script writes a commit whole: one still open at the end lost entries (deleted by hand, or damaged).
    const open = this.framing.openSince;
    if (open) {
      yield { kind: 'problem', warning: { code: WarningCodes.INCOMPLETE_COMMIT, message: 'the last commit of the stream is unfinished (its other entries are not there): not applied', ...open } };
      this.framing.dropOpen();
    }
  }

  private applied(records: readonly Framed[]): void {
    joinParts(records.length, (i) => records[i]!.line.record, this.options.maxRecordBytes, {
      whole: (record, first, last) => {
        if (first === last) {
          const { line } = records[first]!;
          this.ready.push({ kind: 'record', record, raw: line.raw, place: line.place });
          return;
        }
        const lines = records.slice(first, last + 1).map((r) => r.line);
        this.ready.push({ kind: 'record', record, raw: lines[lines.length - 1]!.raw, place: lines[0]!.place, lines });
      },
      broken: (first, last, rejection) => {
        const lines = records.slice(first, last + 1).map((r) => r.line);
        for (const line of lines) this.ready.push({ kind: 'problem', warning: { ...rejection, ...line.place } });
        this.ready.push({ kind: 'parts', lines });
      },
    });
  }
}

/** The manifest as it is now, or undefined (none, or unreadable): a tool that met a gap reads it again. */
export async function currentManifest(conn: RedisConnection): Promise<SnapshotManifest | undefined> {
  const read = await readManifest(conn);
  return read.kind === 'ok' ? read.manifest : undefined;
}

/**
 * NOT_A_STORE when the prefix has none of a store's keys: a mistyped prefix
 * would otherwise read as an empty store. A store that was opened once has
 * `{P}:meta` (its first writer records the kind).
 */
export async function requireRedisStore(conn: RedisConnection): Promise<void> {
  const k = conn.keys;
  const found = await conn.command(['EXISTS', k.meta, k.log, k.head, k.snap]);
  if (typeof found === 'number' && found > 0) return;
  throw new SessionJournalError(ErrorCodes.NOT_A_STORE, `${conn.where} is not a store: none of its keys (${k.meta}, ${k.log}, ${k.head}, ${k.snap}) exists`, { details: { dir: conn.where, redis: true } });
}

/**
 * A connection to an existing store, for a tool that reads it: NOT_A_STORE
 * when there is none, REDIS_UNAVAILABLE when the server is not there, and
 * REDIS_EVICTION_POLICY on a server that may evict its keys, as a store's
 * open refuses it (every tool alike: an evicted stream is lost data, and
 * what a tool read there would not stay true).
 */
export async function connectToStore(location: RedisLocation, onWarning: WarningHandler): Promise<RedisConnection> {
  const conn = await connectRedis({ url: location.url, prefix: location.prefix, connectTimeoutMs: location.connectTimeoutMs, commandTimeoutMs: location.commandTimeoutMs, onWarning });
  try {
    await checkServerSettings(conn, { fsync: false, warn: onWarning }); // read-only: the server's durability is the writers' concern
    await requireRedisStore(conn);
  } catch (err) {
    await conn.close();
    throw err;
  }
  return conn;
}

/** `fn` over a connection to an existing store (connectToStore), closed after it. */
export async function withStoreConnection<T>(location: RedisLocation, onWarning: WarningHandler, fn: (conn: RedisConnection) => Promise<T>): Promise<T> {
  const conn = await connectToStore(location, onWarning);
  try {
    return await fn(conn);
  } finally {
    await conn.close();
  }
}
