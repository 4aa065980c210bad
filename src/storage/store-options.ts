import type { JournalOptions } from './journal.js';
import type { WarningHandler } from '../engine/warnings.js';
import type { RedisLocation } from './redis/redis-location.js';

export type { RedisLocation } from './redis/redis-location.js';

/**
 * The store a tool function reads (verifyStore, storeStats, replayHistory,
 * sessionsAt, exportSessions, readChainHead): its directory, or its place on
 * Redis.
 */
export type StoreRef = string | { readonly redis: RedisLocation };

/**
 * The options every kind of store built on the journal (SessionStore,
 * KeyValueStore, and JournalEventStore without readOnly) takes and hands to
 * its Journal unchanged: documented, and passed on, here once.
 */
export interface StoreJournalOptions {
  /** Store directory (created 0700 when missing). Give each store a directory of its own. Exactly one of `dir` and `redis`. */
  dir?: string;
  /**
   * Keep the store on a Redis server instead (docs/SCALING.md): every key is
   * `{prefix}:...`. Open it with the async `open`; reads answer from this
   * process's view, and `await store.catchUp()` brings in what other hosts
   * acknowledged.
   */
  redis?: RedisLocation;
  /** fsync each group commit before acknowledging it (default true); on Redis, false silences REDIS_NOT_DURABLE. */
  fsync?: boolean;
  /** Where replay and commit warnings go (default: one line each on stderr). */
  onWarning?: WarningHandler;
  /** Longest journal line, written or read (default 1 MiB); a longer record is spread over several lines. */
  maxLineBytes?: number;
  /**
   * Largest journal record, in UTF-8 bytes of its payload (default 64 MiB, at
   * most 256 MiB): a larger mutation throws RECORD_TOO_LARGE and changes
   * nothing. Read the store with the limit it was written with.
   */
  maxRecordBytes?: number;
  /** How long to wait for the store lock before LOCK_TIMEOUT (default 20 s, longer than lockStaleMs). */
  lockTimeoutMs?: number;
  /** A lock left by a dead process is taken over after this long (default 10 s, at least 2 s). */
  lockStaleMs?: number;
  /** Clock in epoch ms (default Date.now); tests control time with it. */
  clock?: () => number;
  /** Chain records with sha256 hashes for `verify` (default true). */
  hashChain?: boolean;
  /**
   * Open for reading only, as a short-lived process that only looks
   * something up does: no lock is taken and nothing is written, ever. Reads
   * do not refresh access times (LRU does not see them), a missing store
   * reads as empty and is not created, and every mutation throws READ_ONLY.
   */
  readOnly?: boolean;
}

const PASSED_THROUGH = ['dir', 'redis', 'fsync', 'onWarning', 'maxLineBytes', 'maxRecordBytes', 'lockTimeoutMs', 'lockStaleMs', 'clock', 'hashChain', 'readOnly'] as const;

/** The journal options a store's own options set (those left undefined keep the Journal's defaults). */
export function passedToJournal(options: StoreJournalOptions): Partial<JournalOptions> {
  const passed: Partial<Record<(typeof PASSED_THROUGH)[number], unknown>> = {};
  for (const key of PASSED_THROUGH) if (options[key] !== undefined) passed[key] = options[key];
  return passed as Partial<JournalOptions>;
}
