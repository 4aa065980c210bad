import type { Shadows } from '../view/keyed-view.js';
import { applySessionEvent, cloneSession, type SessionEvent } from './session-events.js';
import type { SessionData } from './session-types.js';

/**
 * The committed state of the sessions that have local mutations queued (the
 * view's "shadows"), kept at a cost independent of the sessions' size.
 *
 * A shadow is taken when a session's first local mutation is queued, and
 * dropped when its last one is committed, so for a busy session that is once
 * per commit. Copying its turns then made every addTurn O(turns). Instead a
 * new shadow shares the live session's turns array and remembers how many of
 * its turns are committed: the store only ever appends to that array (a turn
 * event pushes; reset, an update of turns and a rebase give the live session
 * a new array), so its first `count` entries stay the committed turns. Our
 * own turn committing finds itself next in that array and only moves the
 * count; anything else (another process's turn, a commit out of order)
 * copies the committed prefix first, which is the rare path that rebases
 * anyway.
 */
export class CommittedSessions implements Shadows<SessionData, SessionEvent> {
  private readonly sessions = new Map<string, SessionData>();
  /** Sessions whose `turns` is still the live array: how many of its first entries are committed. */
  private readonly sharedTurns = new Map<string, number>();

  /** The committed state is what the live session is now (no local mutation queued yet); its turns array is shared, not copied. */
  capture(_id: string, live: SessionData): void {
    const shadow: SessionData = { ...live, createdAt: new Date(live.createdAt), lastAccessedAt: new Date(live.lastAccessedAt) };
    this.sessions.set(live.id, shadow);
    if (Array.isArray(live.turns)) this.sharedTurns.set(live.id, live.turns.length);
    else this.sharedTurns.delete(live.id);
  }

  /** The committed state is this session, which the caller hands over. */
  set(id: string, session: SessionData): void {
    this.sessions.set(id, session);
    this.sharedTurns.delete(id);
  }

  drop(id: string): void {
    this.sessions.delete(id);
    this.sharedTurns.delete(id);
  }

  clear(): void {
    this.sessions.clear();
    this.sharedTurns.clear();
  }

  /** A committed record for this session, ours or another process's. */
  apply(event: SessionEvent): void {
    let step = event;
    const count = this.sharedTurns.get(event.id);
    const shared = count === undefined ? undefined : this.sessions.get(event.id)!.turns;
    if (shared && event.kind === 'turn') {
      if (shared[count!] === event.turn) {
        // The live array already holds this turn right after the committed ones.
        this.sharedTurns.set(event.id, count! + 1);
        step = { kind: 'touch', id: event.id, time: event.time };
      } else {
        this.ownTurns(event.id);
      }
    }
    applySessionEvent(this.sessions, step);
    if (shared && this.sessions.get(event.id)?.turns !== shared) this.sharedTurns.delete(event.id);
  }

  /** A copy of the committed session for a rebase to apply local events to (O(turns): rebases are the rare path). */
  copy(id: string): SessionData | undefined {
    const session = this.sessions.get(id);
    if (!session) return undefined;
    const count = this.sharedTurns.get(id);
    if (count === undefined) return cloneSession(session);
    return { ...session, createdAt: new Date(session.createdAt), lastAccessedAt: new Date(session.lastAccessedAt), turns: session.turns.slice(0, count) };
  }

  private ownTurns(id: string): void {
    const session = this.sessions.get(id)!;
    session.turns = session.turns.slice(0, this.sharedTurns.get(id));
    this.sharedTurns.delete(id);
  }
}
