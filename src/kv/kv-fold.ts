import type { FoldState, RetentionDecision } from '../compact/compactor.js';
import type { JournalRecord, Rejection } from '../engine/record-codec.js';
import { partitionByUse, type UsePartition } from '../view/use-retention.js';
import { KV_NAMESPACE, KvEventTypes, applyKvEvent, decodeKvEvent, reviveKvEntry, snapshotEntry, type KvEntry } from './kv-records.js';

const byKey = (a: KvEntry, b: KvEntry) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

/**
 * TTL from last use, then LRU beyond maxEntries (partitionByUse), with ties
 * in last use broken by key: every process, and the compactor, orders the
 * same entries the same way whatever order its map holds them in.
 */
export function partitionEntries(entries: Iterable<KvEntry>, reference: number, ttlMs: number, maxEntries: number): UsePartition<KvEntry> {
  return partitionByUse([...entries].sort(byKey), (e) => e.lastUsedAt, reference, ttlMs, maxEntries);
}

/** The key-value state as the compactor folds it: the live store's reducer, plus retention and snapshot entries. */
export class KvFold implements FoldState {
  readonly recordNamespace = KV_NAMESPACE;
  readonly entriesByKey = new Map<string, KvEntry>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
  ) {}

  get size(): number {
    return this.entriesByKey.size;
  }

  reset(): void {
    this.entriesByKey.clear();
  }

  restore(raw: unknown): Rejection | undefined {
    const entry = reviveKvEntry(raw);
    if ('code' in entry) return entry;
    this.entriesByKey.set(entry.key, entry);
    return undefined;
  }

  apply(record: JournalRecord): Rejection | undefined {
    const event = decodeKvEvent(record);
    if ('code' in event) return event;
    applyKvEvent(this.entriesByKey, event);
    return undefined;
  }

  keyOf(record: JournalRecord): string | undefined {
    const key = (record.payload as { key?: unknown } | null)?.key;
    return typeof key === 'string' ? key : undefined;
  }

  drop(key: string): void {
    this.entriesByKey.delete(key);
  }

  /** Sorted by key: the same state gives the same snapshot bytes. */
  *entries(): Iterable<unknown> {
    for (const e of [...this.entriesByKey.values()].sort(byKey)) yield snapshotEntry(e);
  }

  /** The latest use in the state: the store's own newest activity (the compactor's clock guard). */
  newestTime(): number | undefined {
    let newest: number | undefined;
    for (const e of this.entriesByKey.values()) if (newest === undefined || e.lastUsedAt > newest) newest = e.lastUsedAt;
    return newest;
  }

  retention(now: number): RetentionDecision[] {
    const { expired, evicted } = partitionEntries(this.entriesByKey.values(), now, this.ttlMs, this.maxEntries);
    return [...expired.map((e) => deletion(e.key, 'expired')), ...evicted.map((e) => deletion(e.key, 'evicted'))];
  }
}

function deletion(key: string, reason: 'expired' | 'evicted'): RetentionDecision {
  return { key, reason, type: KvEventTypes.delete, payload: { key, reason } };
}
