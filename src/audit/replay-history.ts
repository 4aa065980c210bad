import { DEFAULT_MAX_LINE_BYTES } from '../storage/journal.js';
import { requireStoreDir } from '../storage/file/store-files.js';
import { writeWarningToStderr, type JournalWarning, type WarningHandler } from '../engine/warnings.js';
import type { JournalRecord } from '../engine/record-codec.js';
import type { RedisLocation, StoreRef } from '../storage/store-options.js';
import { recordMatcher, type ReplayFilter } from './replay-filter.js';
import { toReplayEvent, type ReplayEvent } from './replay-format.js';
import { auditTrail } from './replay-source.js';
import { RedisAuditTrail } from './redis-trail.js';
import { connectToStore } from '../storage/redis/history-reader.js';

export interface ReplayOptions extends ReplayFilter {
  /** The longest line read (default 1 MiB, as the store's). */
  maxLineBytes?: number;
  /** Unreadable lines and commits no reader applies, each with file and line (default: one line each on stderr). */
  onWarning?: WarningHandler;
}

/**
 * The audit trail as `session-journal replay --ndjson` prints it: every
 * event of the store in commit order, across the archived and the live
 * segments (on Redis: the stream since the last compaction), that passes
 * the filter. Read-only and lockless, so it is safe
 * beside live writers and compactions (a segment a compaction archives
 * under it is read from the archive). It reads the segments there when it
 * starts, each to its end, and does not wait for new events (the command's
 * --follow does); stopping early (`break`) closes the files.
 */
export async function* replayHistory(store: StoreRef, options: ReplayOptions = {}): AsyncGenerator<ReplayEvent, void, undefined> {
  const matches = recordMatcher(options);
  const onWarning = options.onWarning ?? writeWarningToStderr;
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const items = typeof store === 'string' ? (requireStoreDir(store), auditTrail(store, { maxLineBytes })) : redisTrail(store.redis, onWarning, maxLineBytes);
  for await (const item of items) {
    if (item.kind === 'problem') onWarning(item.warning);
    else if (item.kind === 'record' && matches(item.record)) yield toReplayEvent(item.record);
  }
}

/**
 * On Redis the history is what the stream holds since the last compaction
 * (its records are trimmed, not archived: redis-trail.ts); the connection
 * closes when the history ends or the caller stops early.
 */
async function* redisTrail(redis: RedisLocation, onWarning: WarningHandler, maxLineBytes: number): AsyncGenerator<{ kind: 'record'; record: JournalRecord } | { kind: 'problem'; warning: JournalWarning }> {
  const conn = await connectToStore(redis, onWarning);
  try {
    const trail = await RedisAuditTrail.open(conn, { maxLineBytes });
    yield* trail.items();
  } finally {
    await conn.close();
  }
}
