import type { QueuedEntry } from '../journal/commit-queue.js';
import { CommittedSessions } from './committed-sessions.js';
import { applySessionEvent, type SessionEvent } from './session-events.js';
import type { SessionData } from './session-types.js';

interface LocalEvent {
  event: SessionEvent;
  entry: QueuedEntry;
}

/**
 * What this process sees: the sessions committed to the journal, with this
 * process's not-yet-committed mutations applied on top.
 *
 * A local mutation applies at once. Another process's record for a session
 * with local mutations still queued is committed before them (ours go after
 * it in the file), so the session is rebased: its committed copy (the shadow)
 * takes the record, and the queued local events are applied again on top. The
 * result equals a fresh replay of the file, which is what convergence needs.
 * Keeping the shadows costs O(mutation), not O(session): see CommittedSessions.
 */
export class SessionView {
  /** The sessions callers see; getSession hands out these objects. */
  readonly sessions = new Map<string, SessionData>();
  /** Committed state of sessions with queued local events (absent: no such session). */
  private readonly shadows = new CommittedSessions();
  /** Queued local events per session, in order. */
  private readonly local = new Map<string, LocalEvent[]>();
  private readonly byTicket = new Map<number, LocalEvent>();

  /**
   * Replay starts over (the journal reloads from a new base). Committed state
   * is dropped; queued local mutations are kept and re-applied, since they
   * are still on their way to the journal.
   */
  reset(): void {
    this.sessions.clear();
    this.shadows.clear();
    for (const id of this.local.keys()) this.rebase(id);
  }

  restore(session: SessionData): void {
    if (!this.local.has(session.id)) {
      this.sessions.set(session.id, session);
      return;
    }
    this.shadows.set(session);
    this.rebase(session.id);
  }

  applyLocal(event: SessionEvent, entry: QueuedEntry): void {
    let queued = this.local.get(event.id);
    if (!queued) {
      queued = [];
      this.local.set(event.id, queued);
      const current = this.sessions.get(event.id);
      if (current) this.shadows.capture(current);
    }
    const local = { event, entry };
    queued.push(local);
    this.byTicket.set(entry.ticket, local);
    applySessionEvent(this.sessions, event);
  }

  /** Moves a still-queued trailing touch forward in time instead of queuing another. */
  extendQueuedTouch(id: string, time: number): boolean {
    const queued = this.local.get(id);
    const last = queued?.[queued.length - 1];
    if (!last || last.event.kind !== 'touch' || last.entry.seq !== 0) return false;
    last.event.time = time;
    last.entry.time = time;
    applySessionEvent(this.sessions, last.event);
    return true;
  }

  /** A record from the journal written by someone else (or replayed at open). */
  applyCommitted(event: SessionEvent): void {
    if (!this.local.has(event.id)) {
      applySessionEvent(this.sessions, event);
      return;
    }
    this.shadows.apply(event);
    this.rebase(event.id);
  }

  /** Our own entries reached the journal, after every record before them was applied. */
  committed(entries: readonly QueuedEntry[]): void {
    for (const entry of entries) {
      const local = this.byTicket.get(entry.ticket);
      if (!local) continue;
      this.byTicket.delete(entry.ticket);
      const id = local.event.id;
      const queued = this.local.get(id)!;
      // In order, except after a doubt whose commit landed only in part (journal.ts, settleDoubt).
      queued.splice(queued.indexOf(local), 1);
      if (queued.length === 0) {
        this.local.delete(id);
        this.shadows.drop(id);
      } else {
        this.shadows.apply(local.event);
      }
    }
  }

  private rebase(id: string): void {
    const scratch = new Map<string, SessionData>();
    const committed = this.shadows.copy(id);
    if (committed) scratch.set(id, committed);
    for (const { event } of this.local.get(id)!) applySessionEvent(scratch, event);
    const result = scratch.get(id);
    const live = this.sessions.get(id);
    if (!result) {
      this.sessions.delete(id);
    } else if (!live) {
      this.sessions.set(id, result);
    } else {
      // Keep the object callers may hold; give it the rebased fields.
      for (const key of Object.keys(live)) if (!(key in result)) delete (live as unknown as Record<string, unknown>)[key];
      Object.assign(live, result);
    }
  }
}
