import { KeyedView } from '../view/keyed-view.js';
import { CommittedSessions } from './committed-sessions.js';
import { applySessionEvent, cloneSession, type SessionEvent } from './session-events.js';
import type { SessionData } from './session-types.js';

/**
 * What this process sees of a session store: the keyed view (committed
 * sessions with this process's queued mutations rebased on top, see
 * KeyedView) with the session reducer. Its shadows share the sessions'
 * turns instead of copying them, so a commit costs O(mutation), not
 * O(session) (CommittedSessions). A rebased session keeps the object
 * callers may hold (getSession hands out the live objects) and gets the
 * rebased fields.
 */
export class SessionView extends KeyedView<SessionData, SessionEvent> {
  constructor() {
    const reducer = {
      keyOf: (event: SessionEvent) => event.id,
      apply: applySessionEvent,
      clone: cloneSession,
      replace: (live: SessionData, rebased: SessionData) => {
        for (const key of Object.keys(live)) if (!(key in rebased)) delete (live as unknown as Record<string, unknown>)[key];
        return Object.assign(live, rebased);
      },
    };
    super(reducer, new CommittedSessions());
  }

  /** The sessions callers see; getSession hands out these objects. */
  get sessions(): Map<string, SessionData> {
    return this.values;
  }

  restoreSession(session: SessionData): void {
    this.restore(session.id, session);
  }

  /** A snapshot's session, or an imported one (isVacant), made (parsed, checked) when first read: see KeyedView.restoreLazily. */
  restoreSessionLazily(id: string, make: () => SessionData | undefined): void {
    this.restoreLazily(id, make);
  }
}
