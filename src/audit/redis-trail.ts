import { DEFAULT_MAX_LINE_BYTES } from '../engine/group-commit.js';
import type { JournalRecord } from '../engine/record-codec.js';
import { DEFAULT_MAX_RECORD_BYTES } from '../engine/record-parts.js';
import { WarningCodes, type JournalWarning } from '../engine/warnings.js';
import type { RedisConnection } from '../storage/redis/connection.js';
import { StreamHistory, currentManifest, readRedisBase, type RedisBase } from '../storage/redis/history-reader.js';
import type { StreamPlace } from '../storage/redis/stream-reader.js';

/**
 * The audit trail of a store on Redis: every record since the last
 * compaction, in commit order (docs/FORMAT.md, "Compaction on Redis": the
 * records a compaction folds are trimmed, not archived). The counterpart of
 * replay-source.ts's auditTrail for a directory, for replay and replay
 * --state --at.
 *
 * It reads the manifest first: records after its seq are the history (an
 * unreadable manifest is warned and the stream is read from its start, as a
 * store does). A compaction may trim past the reader while it reads: the
 * records it folded are then gone, which a RECORDS_MISSING warning names
 * (with the snapshot that holds them), and the trail goes on after them.
 */
export type RedisTrailItem = { kind: 'record'; record: JournalRecord; place: StreamPlace } | { kind: 'problem'; warning: JournalWarning };

export interface RedisTrailOptions {
  maxLineBytes?: number;
  maxRecordBytes?: number;
}

export class RedisAuditTrail {
  private history: StreamHistory | undefined;

  private constructor(
    private readonly conn: RedisConnection,
    /** The snapshot the history starts after. */
    readonly base: RedisBase,
    private readonly options: RedisTrailOptions,
  ) {}

  /** Reads the base (manifest and snapshot); the records come from items(). */
  static async open(conn: RedisConnection, options: RedisTrailOptions = {}): Promise<RedisAuditTrail> {
    return new RedisAuditTrail(conn, await readRedisBase(conn), options);
  }

  /** Seq of the last record the history held: what it starts after, and, once read, where it ended. */
  get afterSeq(): number {
    return this.history?.lastSeq ?? this.baseSeq;
  }

  /** Seq the base folds up to (0 without a readable manifest). */
  get baseSeq(): number {
    return this.base.kind === 'snapshot' ? this.base.manifest.seq : 0;
  }

  /** Every record after the base, and every problem met, in stream order. */
  async *items(): AsyncGenerator<RedisTrailItem> {
    const file = this.conn.keys.snap;
    if (this.base.kind === 'bad-manifest') {
      yield { kind: 'problem', warning: { code: WarningCodes.SNAPSHOT_UNREADABLE, message: `${this.base.reason}; the stream is read from its start`, file } };
    } else if (this.base.kind === 'snapshot' && !this.base.snapshot.ok) {
      yield { kind: 'problem', warning: { code: WarningCodes.SNAPSHOT_UNREADABLE, message: `${this.base.snapshot.reason}; the records after it (seq ${this.base.manifest.seq}) are read`, file } };
    }
    this.history = new StreamHistory(this.conn, {
      afterSeq: this.baseSeq,
      maxLineBytes: this.options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES,
      maxRecordBytes: this.options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES,
    });
    for await (const item of this.history.read()) {
      if (item.kind === 'record') yield { kind: 'record', record: item.record, place: item.place };
      else if (item.kind === 'problem') yield item;
      else if (item.kind === 'gap') yield { kind: 'problem', warning: await missingRecords(this.conn, item.afterSeq, item.found, item.place) };
    }
  }
}

/** What a gap in the stream was: records a compaction folded and trimmed meanwhile, or records lost. */
export async function missingRecords(conn: RedisConnection, afterSeq: number, found: number, place: StreamPlace): Promise<JournalWarning> {
  const range = found - 1 === afterSeq + 1 ? `seq ${afterSeq + 1} is` : `seq ${afterSeq + 1}-${found - 1} are`;
  const manifest = await currentManifest(conn);
  const message =
    manifest && manifest.seq >= found - 1
      ? `${range} no longer in the stream: a compaction folded them into ${conn.keys.snap} (generation ${manifest.gen}, up to seq ${manifest.seq}) and trimmed them while they were read; they are not shown`
      : `${range} missing from the stream and no snapshot folds them: lost (evicted, deleted, or trimmed without a snapshot); restore the keys from a backup`;
  return { code: WarningCodes.RECORDS_MISSING, message, ...place };
}
