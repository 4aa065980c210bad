import { partitionByUse, type UsePartition } from '../view/use-retention.js';
import type { SessionData } from './session-types.js';

/** Sessions split by retention at one reference time (live: most recently accessed first). */
export type SessionPartition = UsePartition<SessionData>;

/**
 * TTL from last access, then LRU (partitionByUse), for sessions: a reader
 * hides what it would drop (listSessions), `expireNow` and the compactor
 * journal it. Ties keep the map's insertion order, as the original's stable
 * sort does; exactly `ttlMs` idle is still live, as in the original.
 */
export function partitionSessions(sessions: Iterable<SessionData>, reference: number, ttlMs: number, maxSessions: number): SessionPartition {
  return partitionByUse(sessions, (s) => s.lastAccessedAt.getTime(), reference, ttlMs, maxSessions);
}
