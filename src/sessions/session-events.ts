import { isValidDate, parseIsoInstant } from '../engine/dates.js';
import type { JournalRecord, Rejection } from '../engine/record-codec.js';
import { WarningCodes } from '../engine/warnings.js';
import { invalidPayload, isPayloadObject, kindsByType, notAnObject, unknownType } from '../engine/record-kinds.js';
import { isValidSessionId, type ConversationTurn, type SessionData } from './session-types.js';

/** Journal event types of the session reducer. */
export const SessionEventTypes = {
  create: 'session.create',
  touch: 'session.touch',
  update: 'session.update',
  turn: 'session.turn',
  reset: 'session.reset',
  conversation: 'session.conversation',
  delete: 'session.delete',
  import: 'session.import',
} as const;

export type DeleteReason = 'deleted' | 'expired' | 'evicted';

/** A decoded session event; `time` is the mutation's clock reading in epoch ms. */
export type SessionEvent =
  | { kind: 'create'; id: string; time: number }
  | { kind: 'touch'; id: string; time: number }
  | { kind: 'update'; id: string; time: number; data: Partial<SessionData> }
  | { kind: 'turn'; id: string; time: number; turn: ConversationTurn }
  | { kind: 'reset'; id: string; time: number }
  | { kind: 'conversation'; id: string; time: number; conversationId: string }
  | { kind: 'delete'; id: string; time: number; reason: DeleteReason }
  /** A whole session brought in from another store; a no-op when the id exists, so importing twice adds nothing. */
  | { kind: 'import'; id: string; time: number; session: SessionData };

/** Keys that would reach an object's prototype through assignment. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

const DELETE_REASONS: ReadonlySet<string> = new Set(['deleted', 'expired', 'evicted']);
const KIND_BY_TYPE = kindsByType<SessionEvent['kind']>(SessionEventTypes);

const invalid = invalidPayload;
const badDate = (message: string): Rejection => ({ code: WarningCodes.INVALID_DATE, message });

/** The journal payload of an event (the envelope carries type and time). */
export function sessionPayload(event: SessionEvent): Record<string, unknown> {
  switch (event.kind) {
    case 'update': {
      // JSON has no undefined: keys assigned undefined travel by name.
      const unset = Object.keys(event.data).filter((k) => (event.data as Record<string, unknown>)[k] === undefined);
      return unset.length > 0 ? { id: event.id, data: event.data, unset } : { id: event.id, data: event.data };
    }
    case 'turn': {
      const { prompt, response, timestamp } = event.turn; // a turn's fields only: anything else on the caller's object is not the store's
      return { id: event.id, turn: { prompt, response, timestamp } };
    }
    case 'conversation':
      return { id: event.id, conversationId: event.conversationId };
    case 'delete':
      return { id: event.id, reason: event.reason };
    case 'import':
      return { id: event.id, session: event.session };
    default:
      return { id: event.id };
  }
}

/** Validates a record from the journal into an event, or says why not. Never throws. */
export function decodeSessionEvent(record: JournalRecord): SessionEvent | Rejection {
  return decodeSessionPayload(record.type, record.time, record.payload);
}

/**
 * The event a record of `type`, `time` and `payload` (parsed JSON) holds, or
 * why not: the one rule for what a session record means, used by every
 * replay and by SessionStore for its own mutations before they are queued.
 * Never throws.
 */
export function decodeSessionPayload(type: string, time: number, payload: unknown): SessionEvent | Rejection {
  const kind = KIND_BY_TYPE.get(type);
  if (!kind) return unknownType(type);
  if (!isPayloadObject(payload)) return notAnObject(type);
  const p = payload;
  if (!isValidSessionId(p.id)) return invalid(`invalid session id ${JSON.stringify(p.id)?.slice(0, 80)}`);
  const base = { id: p.id, time };
  switch (kind) {
    case 'create':
    case 'touch':
    case 'reset':
      return { kind, ...base };
    case 'conversation':
      if (typeof p.conversationId !== 'string') return invalid('conversationId is not a string');
      return { kind, ...base, conversationId: p.conversationId };
    case 'delete':
      return { kind, ...base, reason: typeof p.reason === 'string' && DELETE_REASONS.has(p.reason) ? (p.reason as DeleteReason) : 'deleted' };
    case 'turn': {
      const turn = reviveTurn(p.turn);
      return 'code' in turn ? turn : { kind, ...base, turn };
    }
    case 'import': {
      const made = reviveSession(p.session);
      if ('code' in made) return made;
      if (made.revived.id !== p.id) return invalid('imported session id differs from the record id');
      return { kind, ...base, session: made.revived };
    }
    case 'update': {
      const made = reviveSessionFields(p.data);
      if ('code' in made) return made;
      const data = made.revived;
      // A session is kept under its id (updateSession refuses a rename): one renamed in place would read as another session under this key.
      if (Object.hasOwn(data, 'id') && data.id !== p.id) return invalid(`an update of session ${JSON.stringify(p.id)} cannot change its id (to ${JSON.stringify(data.id)?.slice(0, 80)})`);
      if (p.unset !== undefined) {
        if (!Array.isArray(p.unset) || !p.unset.every((k) => typeof k === 'string' && !FORBIDDEN_KEYS.has(k))) return invalid('unset is not a list of field names');
        for (const key of p.unset as string[]) (data as Record<string, unknown>)[key] = undefined;
      }
      return { kind, ...base, data };
    }
  }
}

/** The session id of a `session.import` record, when its payload names a valid one (the rest is checked by decodeSessionEvent). */
export function importedSessionId(record: JournalRecord): string | undefined {
  if (record.type !== SessionEventTypes.import) return undefined;
  const p = record.payload as Record<string, unknown> | null;
  return p !== null && typeof p === 'object' && isValidSessionId(p.id) ? p.id : undefined;
}

/** A turn from JSON: strings and a valid ISO timestamp, or a rejection. */
export function reviveTurn(value: unknown): ConversationTurn | Rejection {
  const t = value as Record<string, unknown> | null;
  if (t === null || typeof t !== 'object' || Array.isArray(t)) return invalid('turn is not an object');
  if (typeof t.prompt !== 'string' || typeof t.response !== 'string') return invalid('turn prompt and response must be strings');
  const ms = parseIsoInstant(t.timestamp);
  if (ms === undefined) return badDate(`invalid turn timestamp ${JSON.stringify(t.timestamp) ?? 'undefined'}`);
  return { prompt: t.prompt, response: t.response, timestamp: new Date(ms) };
}

/**
 * A value revived from a user's fields, wrapped: a session may have fields
 * of any name, `code` and `message` included, so the bare value could be
 * taken for a Rejection (`'code' in`) and dropped.
 */
export interface Revived<T> {
  revived: T;
}

/**
 * Session fields from JSON (an update's data, or a snapshot entry): dates
 * revived and checked, forbidden keys refused. Unknown keys are kept, as
 * codex-mcp-server's Object.assign keeps them.
 */
export function reviveSessionFields(value: unknown): Revived<Partial<SessionData>> | Rejection {
  const o = value as Record<string, unknown> | null;
  if (o === null || typeof o !== 'object' || Array.isArray(o)) return invalid('session fields are not an object');
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(o)) {
    if (FORBIDDEN_KEYS.has(key)) return invalid(`forbidden key ${JSON.stringify(key)}`);
    const v = o[key];
    if (key === 'createdAt' || key === 'lastAccessedAt') {
      const ms = parseIsoInstant(v);
      if (ms === undefined) return badDate(`invalid ${key} ${JSON.stringify(v) ?? 'undefined'}`);
      out[key] = new Date(ms);
    } else if (key === 'turns') {
      if (!Array.isArray(v)) return invalid('turns is not an array');
      const turns: ConversationTurn[] = [];
      for (const item of v) {
        const turn = reviveTurn(item);
        if ('code' in turn) return { code: turn.code, message: `turns[${turns.length}]: ${turn.message}` };
        turns.push(turn);
      }
      out[key] = turns;
    } else {
      out[key] = v;
    }
  }
  return { revived: out as Partial<SessionData> };
}

/**
 * The id of a session snapshot entry read off its line without parsing it,
 * or undefined. The compactor writes entries with sorted keys
 * (fast-json-stable-stringify), so a session's line begins with its
 * top-level createdAt (after codexConversationId, when set) and then its
 * id; a line that begins any other way (a field updateSession added, an
 * older writer) gives undefined and is parsed at once. Whatever this finds
 * is checked against the parsed entry when it is made.
 */
const ENTRY_ID_PREFIX = /^\{(?:"codexConversationId":"(?:[^"\\]|\\.)*",)?"createdAt":"[^"\\]*","id":"([A-Za-z0-9_-]{1,256})"[,}]/;

export function sessionIdOfEntryLine(text: string): string | undefined {
  return ENTRY_ID_PREFIX.exec(text)?.[1];
}

/** A whole session from a snapshot entry, or a rejection. */
export function reviveSession(value: unknown): Revived<SessionData> | Rejection {
  const made = reviveSessionFields(value);
  if ('code' in made) return made;
  const fields = made.revived;
  if (!isValidSessionId(fields.id)) return invalid(`invalid session id ${JSON.stringify(fields.id)?.slice(0, 80)}`);
  if (!isValidDate(fields.createdAt) || !isValidDate(fields.lastAccessedAt)) return badDate('session without valid createdAt and lastAccessedAt');
  return { revived: { ...fields, turns: fields.turns ?? [] } as SessionData };
}

/** A copy that shares turn objects (which are never mutated) but not arrays or dates. */
export function cloneSession(s: SessionData): SessionData {
  return { ...s, createdAt: new Date(s.createdAt), lastAccessedAt: new Date(s.lastAccessedAt), turns: Array.isArray(s.turns) ? s.turns.slice() : s.turns };
}

/**
 * The session reducer: applies one event to a map of sessions, as
 * codex-mcp-server's InMemorySessionStorage mutates its map, except that
 * lastAccessedAt never moves back: every event sets it to the later of its
 * current value and the event's time. Writers' clocks differ, and a lagging
 * writer's turn must not make a live session look idle (docs/FORMAT.md,
 * "Time"). Each event touches only the session it names, which is what makes
 * per-session rebase (and so multi-process convergence) exact.
 */
export function applySessionEvent(sessions: Map<string, SessionData>, event: SessionEvent): void {
  const session = sessions.get(event.id);
  switch (event.kind) {
    case 'create':
      if (!session) sessions.set(event.id, { id: event.id, createdAt: new Date(event.time), lastAccessedAt: new Date(event.time), turns: [] });
      else accessedAt(session, session.lastAccessedAt, event.time);
      return;
    case 'delete':
      sessions.delete(event.id);
      return;
    case 'import':
      if (!session) sessions.set(event.id, cloneSession(event.session));
      return;
  }
  if (!session) return; // mutators ignore unknown ids
  // As in the original, an update's own lastAccessedAt is overwritten by the access it is.
  const before = session.lastAccessedAt;
  switch (event.kind) {
    case 'touch':
      break;
    case 'update':
      for (const key of Object.keys(event.data)) {
        if (FORBIDDEN_KEYS.has(key)) continue;
        const value = (event.data as Record<string, unknown>)[key];
        // A copy: later turns are pushed onto the session's array, and the
        // event must stay as it was journaled (it is applied again on rebase).
        (session as unknown as Record<string, unknown>)[key] = key === 'turns' && Array.isArray(value) ? value.slice() : value;
      }
      break;
    case 'turn':
      if (!Array.isArray(session.turns)) session.turns = [];
      session.turns.push(event.turn);
      break;
    case 'reset':
      session.turns = [];
      session.codexConversationId = undefined;
      break;
    case 'conversation':
      session.codexConversationId = event.conversationId;
      break;
  }
  accessedAt(session, before, event.time);
}

/** lastAccessedAt = max(before, time), always a Date object of the session's own. */
function accessedAt(session: SessionData, before: Date, time: number): void {
  session.lastAccessedAt = new Date(Math.max(before.getTime(), time));
}
