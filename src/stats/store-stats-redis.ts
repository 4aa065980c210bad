import { ErrorCodes, SessionJournalError, requirePositive } from '../errors.js';
import { DEFAULT_MAX_LINE_BYTES, Journal } from '../storage/journal.js';
import { DEFAULT_TTL_MS } from '../sessions/session-store.js';
import type { RedisConnection } from '../storage/redis/connection.js';
import type { RedisLocation } from '../storage/redis/redis-location.js';
import { connectToStore, currentManifest } from '../storage/redis/history-reader.js';
import type { SnapshotManifest } from '../storage/redis/scripts.js';
import type { StoreStats, StoreStatsOptions } from './store-stats.js';
import { StatsReplay, journalFigures } from './stats-replay.js';

/** What `stats` says of a store on Redis beyond a directory's figures. */
export interface RedisStats {
  /** The server (without credentials) and the store's keys: `redis://host:port {P}`. */
  where: string;
  /** Entries in the stream `{P}:log` (XLEN): the records since the last compaction. */
  streamEntries: number;
  /** The memory the stream takes on the server (MEMORY USAGE), or null where the server refuses MEMORY. */
  streamMemoryBytes: number | null;
  /** Lines compactions could not fold, kept in `{P}:kept`. */
  keptAside: number;
  /** The manifest `{P}:snap` of the last compaction, or null: never compacted. */
  manifest: SnapshotManifest | null;
}

export type RedisStoreStats = StoreStats & { redis: RedisStats };

/**
 * storeStats for a store on Redis: the same read-only replay (the snapshot,
 * then the stream after it) and the same figures, where a directory's
 * files have a counterpart: `journalBytes` is the stream's memory on the
 * server (0 where MEMORY is refused), `snapshotBytes` the snapshot's text
 * (the manifest's `bytes`), `snapshot` the manifest and its generation, the
 * writers those of the stream. There are no segments and no archive (0).
 * `lastCompaction` is when the manifest was installed, by the server's
 * clock (null for a manifest written before that was recorded);
 * `redis.manifest` says which compaction it was (its generation and seq).
 */
export async function redisStoreStats(location: RedisLocation, options: StoreStatsOptions = {}): Promise<RedisStoreStats> {
  const ttlMs = requirePositive('ttlMs', options.ttlMs ?? DEFAULT_TTL_MS);
  const now = options.now ?? Date.now();
  const replay = new StatsReplay(ttlMs, options.onWarning);
  const { onWarning } = replay;
  const conn = await connectToStore(location, onWarning);
  try {
    const journal = await Journal.open({
      redis: location,
      readOnly: true,
      create: false,
      fsync: false, // read-only: the server's durability is the writers' concern
      flushOnExit: false,
      maxLineBytes: options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES,
      onWarning,
      consumer: replay.consumer,
    });
    let figures: ReturnType<typeof journalFigures>;
    try {
      figures = journalFigures(journal);
    } finally {
      await journal.close();
    }
    const summary = replay.summary(now);
    const manifest = (await currentManifest(conn)) ?? null;
    const memory = await streamMemory(conn);
    const entries = await conn.command(['XLEN', conn.keys.log]);
    const kept = await conn.command(['HLEN', conn.keys.kept]);
    return {
      now: new Date(now).toISOString(),
      ttlMs,
      sessions: summary.sessions,
      journalBytes: memory ?? 0,
      snapshotBytes: manifest?.bytes ?? 0,
      archiveBytes: 0,
      segments: { live: 0, archived: 0 },
      snapshot: manifest ? `${conn.keys.snap} generation ${manifest.gen}` : null,
      lastCompaction: manifest?.at !== undefined ? new Date(manifest.at).toISOString() : null,
      autoCompaction: null, // a store on Redis is compacted from cron, never automatically
      writers: summary.writers,
      ...figures,
      warnings: summary.warnings,
      redis: {
        where: conn.where,
        streamEntries: typeof entries === 'number' ? entries : 0,
        streamMemoryBytes: memory,
        keptAside: typeof kept === 'number' ? kept : 0,
        manifest,
      },
    };
  } finally {
    await conn.close();
  }
}

/** MEMORY USAGE of the stream, every entry counted (SAMPLES 0); null where the server refuses MEMORY (managed services rename it). */
async function streamMemory(conn: RedisConnection): Promise<number | null> {
  try {
    const usage = await conn.command(['MEMORY', 'USAGE', conn.keys.log, 'SAMPLES', '0']);
    return typeof usage === 'number' ? usage : 0;
  } catch (err) {
    if (err instanceof SessionJournalError && err.code === ErrorCodes.REDIS_COMMAND_FAILED) return null;
    throw err;
  }
}
