import { readClaim } from '../storage/file/compaction-claim.js';
import fs from 'node:fs';
import path from 'node:path';
import { requirePositive } from '../errors.js';
import { DEFAULT_MAX_LINE_BYTES, Journal } from '../storage/journal.js';
import { archiveDir, fileSizeOrZero, listStore, readStoreSubdir, requireStoreDir, segmentName, snapshotName } from '../storage/file/store-files.js';
import type { WarningHandler } from '../engine/warnings.js';
import { StatsReplay, journalFigures } from './stats-replay.js';
import { DEFAULT_TTL_MS } from '../sessions/session-store.js';
import { listHistorySegments } from '../storage/file/history-reader.js';
import type { RedisLocation, StoreRef } from '../storage/store-options.js';
import { redisStoreStats, type RedisStoreStats } from './store-stats-redis.js';

export interface WriterStats {
  /** `pid@host`. */
  writer: string;
  /** Records it wrote in the live segments. */
  records: number;
  /** Time (ts) of its newest record there, ISO. */
  lastSeen: string;
}

export interface StoreStats {
  /** The instant expiry was evaluated at, ISO. */
  now: string;
  ttlMs: number;
  sessions: { total: number; live: number; expired: number };
  /** Bytes of the live segments. */
  journalBytes: number;
  /** Bytes of the live snapshots. */
  snapshotBytes: number;
  /** Bytes of archive/ (gzipped segments and snapshots). */
  archiveBytes: number;
  segments: { live: number; archived: number };
  /** The newest snapshot in the store, or null. */
  snapshot: string | null;
  /** When the newest snapshot was written (its mtime, ISO), or null: the last compaction. */
  lastCompaction: string | null;
  /**
   * The automatic compaction's claim (DIR/compact.claim, docs/FORMAT.md), or
   * null when there is none: one running, or the last one busy or failed and
   * why ('damaged' when the file is not a claim).
   */
  autoCompaction: { state: 'running' | 'busy' | 'failed'; at: string; by: string; message?: string } | { state: 'damaged' } | null;
  /** Distinct writers in the live segments, most recently seen first. */
  writers: WriterStats[];
  head: { seq: number; h: string };
  /** Records read from the segments after the snapshot. */
  recordsSinceSnapshot: number;
  /** Replay warnings met on the way (details: session-journal verify). */
  warnings: number;
}

export interface StoreStatsOptions {
  /** Sessions not accessed for this long count as expired (default 24 h, as SessionStore). */
  ttlMs?: number;
  /** The instant expiry is evaluated at, epoch ms (default: the current time). */
  now?: number;
  /** The longest line read (default 1 MiB, as the store's). */
  maxLineBytes?: number;
  /** Each replay warning (default: only counted, in `warnings`). */
  onWarning?: WarningHandler;
}

/**
 * Figures about a session store, from a read-only replay of its newest
 * snapshot and live segments (no lock, nothing written). A session is
 * expired when it was last accessed more than `ttlMs` before `now`.
 */
export function storeStats(dir: string, options?: StoreStatsOptions): StoreStats;
/** The same figures for a store on Redis, its keys in place of files, and `redis` (the stream's entries and memory, the manifest). */
export function storeStats(store: { readonly redis: RedisLocation }, options?: StoreStatsOptions): Promise<RedisStoreStats>;
/** Either (`await` it): for code that takes any StoreRef. */
export function storeStats(store: StoreRef, options?: StoreStatsOptions): StoreStats | Promise<RedisStoreStats>;
export function storeStats(store: StoreRef, options: StoreStatsOptions = {}): StoreStats | Promise<RedisStoreStats> {
  if (typeof store !== 'string') {
    const { redis } = store;
    return redisStoreStats(redis, options);
  }
  const dir = store;
  requireStoreDir(dir);
  const ttlMs = requirePositive('ttlMs', options.ttlMs ?? DEFAULT_TTL_MS);
  const now = options.now ?? Date.now();
  const replay = new StatsReplay(ttlMs, options.onWarning);
  const journal = Journal.openSync({
    dir,
    readOnly: true,
    create: false,
    flushOnExit: false,
    maxLineBytes: options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES,
    onWarning: replay.onWarning,
    consumer: replay.consumer,
  });
  let figures: ReturnType<typeof journalFigures>;
  try {
    figures = journalFigures(journal);
  } finally {
    journal.closeSync();
  }
  const listing = listStore(dir);
  const newest = listing.snapshots[listing.snapshots.length - 1];
  let lastCompaction: string | null = null;
  if (newest !== undefined) {
    try {
      lastCompaction = fs.lstatSync(path.join(dir, snapshotName(newest))).mtime.toISOString();
    } catch {
      // moved by a compaction meanwhile
    }
  }
  const summary = replay.summary(now);
  let archiveBytes = 0;
  for (const name of readStoreSubdir(archiveDir(dir))) if (name.endsWith('.gz')) archiveBytes += fileSizeOrZero(path.join(archiveDir(dir), name));
  return {
    now: new Date(now).toISOString(),
    ttlMs,
    sessions: summary.sessions,
    journalBytes: listing.segments.reduce((sum, n) => sum + fileSizeOrZero(path.join(dir, segmentName(n))), 0),
    snapshotBytes: listing.snapshots.reduce((sum, n) => sum + fileSizeOrZero(path.join(dir, snapshotName(n))), 0),
    archiveBytes,
    segments: { live: listing.segments.length, archived: listHistorySegments(dir).filter((s) => s.archived).length },
    snapshot: newest === undefined ? null : snapshotName(newest),
    lastCompaction,
    autoCompaction: claimFigures(readClaim(dir)),
    writers: summary.writers,
    ...figures,
    warnings: summary.warnings,
  };
}

function claimFigures(claim: ReturnType<typeof readClaim>): StoreStats['autoCompaction'] {
  if (claim === undefined) return null;
  if (claim === 'damaged') return { state: 'damaged' };
  return { ...claim, at: new Date(claim.at).toISOString() };
}
