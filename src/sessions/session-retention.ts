import type { SessionData } from './session-types.js';

/** Sessions split by retention at one reference time. */
export interface SessionPartition {
  /** Kept, most recently accessed first (ties in the map's insertion order, as the original's stable sort). */
  live: SessionData[];
  /** Not accessed for more than the TTL before the reference time. */
  expired: SessionData[];
  /** Beyond maxSessions among the rest: the least recently accessed. */
  evicted: SessionData[];
}

/**
 * The one retention rule, TTL from last access and then LRU, used three ways:
 * a reader hides what it would drop (listSessions), `expireNow` and the
 * compactor journal it. Exactly `ttlMs` idle is still live, as in the original.
 */
export function partitionSessions(sessions: Iterable<SessionData>, reference: number, ttlMs: number, maxSessions: number): SessionPartition {
  const expired: SessionData[] = [];
  const kept: SessionData[] = [];
  for (const s of sessions) (reference - s.lastAccessedAt.getTime() > ttlMs ? expired : kept).push(s);
  kept.sort((a, b) => b.lastAccessedAt.getTime() - a.lastAccessedAt.getTime());
  return { live: kept.slice(0, maxSessions), expired, evicted: kept.slice(maxSessions) };
}
