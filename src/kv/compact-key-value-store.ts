import { compactStore, type CompactOptions, type CompactResult } from '../compact/compactor.js';
import { KvFold } from './kv-fold.js';
import { DEFAULT_KV_MAX_ENTRIES, DEFAULT_KV_TTL_MS } from './key-value-store.js';

export interface CompactKeyValueStoreOptions extends CompactOptions {
  /** Keys neither set nor read for this long are dropped (default 24 h, as KeyValueStore). */
  ttlMs?: number;
  /** Keep at most this many, most recently used first (default 1000, as KeyValueStore). */
  maxEntries?: number;
}

/**
 * Compacts a KeyValueStore directory: snapshot, TTL then LRU (journaled as
 * `kv.delete` records, so running processes drop the keys too), archive.
 * Safe beside live writers; refuses a store of another kind (STORE_KIND_MISMATCH).
 */
export function compactKeyValueStore(options: CompactKeyValueStoreOptions): Promise<CompactResult> {
  return compactStore(options, new KvFold(options.ttlMs ?? DEFAULT_KV_TTL_MS, options.maxEntries ?? DEFAULT_KV_MAX_ENTRIES));
}
