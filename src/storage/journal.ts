import type { JournalConsumer } from '../engine/journal-consumer.js';
import { GroupCommitJournal, type GroupCommitOptions } from '../engine/group-commit.js';
import { ErrorCodes, SessionJournalError } from '../errors.js';
import type { StorageFactory } from '../engine/storage-port.js';
import { fileStorage, type FileStorageOptions } from './file/file-storage.js';
import type { RedisLocation } from './redis/redis-location.js';

export type { JournalConsumer } from '../engine/journal-consumer.js';
export { DEFAULT_MAX_LINE_BYTES } from '../engine/group-commit.js';

/** A journal's options: the engine's, and where the store is: a directory (`dir`) or a Redis server (`redis`). */
export interface JournalOptions extends GroupCommitOptions, Omit<FileStorageOptions, 'dir'> {
  consumer: JournalConsumer;
  /** Store directory; created 0700 when missing unless `create` is false. */
  dir?: string;
  /** A store on Redis instead (async open only). */
  redis?: RedisLocation;
  /** The kind of store (`session`, `kv`, `event`): a Redis store records it and refuses another kind. */
  storeKind?: string;
  /** Redis only, for the compactor: its fencing token; its appends succeed only while it holds the compaction lock. */
  fenceToken?: string;
}

/**
 * The engine over a storage: an append-only journal, replayed at open,
 * caught up cheaply before reads, and written by group commit. It knows
 * nothing about what the records mean. `open`/`openSync` pick the storage
 * from the options: a store directory (`dir`).
 */
export class Journal extends GroupCommitJournal {
  /** Opens the store and replays snapshot + journal. Throws only for the directory or I/O, never for content. */
  static openSync(options: JournalOptions): Journal {
    if (options.redis) throw new SessionJournalError(ErrorCodes.SYNC_UNSUPPORTED, `a store on Redis (prefix ${options.redis.prefix}) opens with the async open(), not openSync()`, { details: { prefix: options.redis.prefix } });
    const journal = new Journal(options, fileStorage({ ...options, dir: requireDir(options) }));
    journal.loadSync(options);
    return journal;
  }

  /** The same, letting the event loop run between replay steps (the journal is not usable before it resolves). */
  static async open(options: JournalOptions): Promise<Journal> {
    const journal = new Journal(options, await storageFor(options));
    await journal.load(options);
    return journal;
  }
}

/** The storage the options name: exactly one of a directory and a Redis server. */
async function storageFor(options: JournalOptions): Promise<StorageFactory> {
  if (!options.redis) return fileStorage({ ...options, dir: requireDir(options) });
  if (options.dir !== undefined) throw new TypeError('give a store either dir or redis, not both');
  // Loaded only for Redis stores: a directory's cold start never reads it.
  const { redisStorage } = await import('./redis/redis-storage.js');
  return redisStorage({ ...options.redis, fsync: options.fsync ?? true, kind: options.storeKind, fenceToken: options.fenceToken });
}

function requireDir(options: { dir?: string; redis?: unknown }): string {
  if (typeof options.dir !== 'string' || options.dir === '') throw new TypeError(options.redis ? 'give a store either dir or redis, not both' : 'a store needs dir (a directory) or redis ({ url, prefix })');
  return options.dir;
}
