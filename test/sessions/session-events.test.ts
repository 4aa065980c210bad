/**
 * applySessionEvent and time: lastAccessedAt never moves back, whatever the
 * event, so a writer whose clock lags cannot make a live session look idle.
 */
import test from 'ava';
import { applySessionEvent, type SessionEvent } from '../../src/sessions/session-events.js';
import type { SessionData } from '../../src/sessions/session-types.js';

const T = Date.UTC(2026, 0, 1, 12, 0, 0);
const LATE = T + 60_000;
const EARLY = T - 2 * 24 * 3600_000;

const kinds: Array<[string, (time: number) => SessionEvent]> = [
  ['create', (time) => ({ kind: 'create', id: 's', time })],
  ['touch', (time) => ({ kind: 'touch', id: 's', time })],
  ['update', (time) => ({ kind: 'update', id: 's', time, data: { lastAccessedAt: new Date(EARLY - 1), model: 'm' } })],
  ['turn', (time) => ({ kind: 'turn', id: 's', time, turn: { prompt: 'p', response: 'r', timestamp: new Date(time) } })],
  ['reset', (time) => ({ kind: 'reset', id: 's', time })],
  ['conversation', (time) => ({ kind: 'conversation', id: 's', time, conversationId: 'c' })],
];

function sessionAccessedAt(ms: number): Map<string, SessionData> {
  return new Map([['s', { id: 's', createdAt: new Date(T), lastAccessedAt: new Date(ms), turns: [] }]]);
}

for (const [kind, make] of kinds) {
  test(`${kind}: an event older than the last access keeps lastAccessedAt; a newer one moves it forward; createdAt stays`, (t) => {
    const sessions = sessionAccessedAt(LATE);
    applySessionEvent(sessions, make(EARLY));
    t.is(sessions.get('s')!.lastAccessedAt.getTime(), LATE);
    applySessionEvent(sessions, make(LATE + 5));
    t.is(sessions.get('s')!.lastAccessedAt.getTime(), LATE + 5);
    t.is(sessions.get('s')!.createdAt.getTime(), T);
  });
}
