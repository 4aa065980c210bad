/** Items split by retention at one reference time. */
export interface UsePartition<T> {
  /** Kept, most recently used first (ties in input order: the sort is stable). */
  live: T[];
  /** Not used for more than the TTL before the reference time. */
  expired: T[];
  /** Beyond `max` among the rest: the least recently used. */
  evicted: T[];
}

/**
 * The one retention rule of the keyed store kinds, TTL from last use and
 * then LRU, used three ways: a reader hides what it would drop, an explicit
 * expiry and the compactor journal it. Exactly `ttlMs` idle is still live.
 */
export function partitionByUse<T>(items: Iterable<T>, lastUsed: (item: T) => number, reference: number, ttlMs: number, max: number): UsePartition<T> {
  const expired: T[] = [];
  const kept: T[] = [];
  for (const item of items) (reference - lastUsed(item) > ttlMs ? expired : kept).push(item);
  kept.sort((a, b) => lastUsed(b) - lastUsed(a));
  return { live: kept.slice(0, max), expired, evicted: kept.slice(max) };
}
