import type { FoldState, RetentionDecision } from '../compact/compactor.js';
import type { JournalRecord, Rejection } from '../engine/record-codec.js';
import { SessionEventTypes, applySessionEvent, decodeSessionEvent, reviveSession } from './session-events.js';
import { partitionSessions } from './session-retention.js';
import type { SessionData } from './session-types.js';

/**
 * The session state as the compactor folds it: the same reducer as the live
 * store, plus retention (TTL from last access, then LRU) and snapshot entries.
 */
export class SessionFold implements FoldState {
  readonly recordNamespace = 'session';
  readonly sessions = new Map<string, SessionData>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxSessions: number,
  ) {}

  get size(): number {
    return this.sessions.size;
  }

  reset(): void {
    this.sessions.clear();
  }

  restore(entry: unknown): Rejection | undefined {
    const made = reviveSession(entry);
    if ('code' in made) return made;
    this.sessions.set(made.revived.id, made.revived);
    return undefined;
  }

  apply(record: JournalRecord): Rejection | undefined {
    const event = decodeSessionEvent(record);
    if ('code' in event) return event;
    applySessionEvent(this.sessions, event);
    return undefined;
  }

  keyOf(record: JournalRecord): string | undefined {
    const id = (record.payload as { id?: unknown } | null)?.id;
    return typeof id === 'string' ? id : undefined;
  }

  drop(key: string): void {
    this.sessions.delete(key);
  }

  /** Insertion order is kept: it breaks ties between equal access times, as in the original. */
  *entries(): Iterable<unknown> {
    yield* this.sessions.values();
  }

  /** The latest access in the state: the store's own newest activity (the compactor's clock guard). */
  newestTime(): number | undefined {
    let newest: number | undefined;
    for (const s of this.sessions.values()) {
      const t = s.lastAccessedAt.getTime();
      if (newest === undefined || t > newest) newest = t;
    }
    return newest;
  }

  retention(now: number): RetentionDecision[] {
    const { expired, evicted } = partitionSessions(this.sessions.values(), now, this.ttlMs, this.maxSessions);
    return [...expired.map((s) => deletion(s.id, 'expired')), ...evicted.map((s) => deletion(s.id, 'evicted'))];
  }
}

function deletion(id: string, reason: 'expired' | 'evicted'): RetentionDecision {
  return { key: id, reason, type: SessionEventTypes.delete, payload: { id, reason } };
}
