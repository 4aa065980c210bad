import { KeyedView } from '../view/keyed-view.js';
import { applySessionEvent, cloneSession, type SessionEvent } from './session-events.js';
import type { SessionData } from './session-types.js';

/**
 * What this process sees of a session store: the keyed view (committed
 * sessions with this process's queued mutations rebased on top, see
 * KeyedView) with the session reducer. A rebased session keeps the object
 * callers may hold (getSession hands out the live objects) and gets the
 * rebased fields.
 */
export class SessionView extends KeyedView<SessionData, SessionEvent> {
  constructor() {
    super({
      keyOf: (event) => event.id,
      apply: applySessionEvent,
      clone: cloneSession,
      replace: (live, rebased) => {
        for (const key of Object.keys(live)) if (!(key in rebased)) delete (live as unknown as Record<string, unknown>)[key];
        return Object.assign(live, rebased);
      },
    });
  }

  /** The sessions callers see; getSession hands out these objects. */
  get sessions(): Map<string, SessionData> {
    return this.values;
  }

  restoreSession(session: SessionData): void {
    this.restore(session.id, session);
  }
}
