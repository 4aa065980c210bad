import { parseIsoInstant } from '../engine/dates.js';
import type { JournalRecord, Rejection } from '../engine/record-codec.js';
import { WarningCodes } from '../engine/warnings.js';
import { invalidPayload, isPayloadObject, kindsByType, notAnObject, unknownType } from '../engine/record-kinds.js';

/** Journal event types of the key-value reducer (docs/FORMAT.md, "Key-value records"). */
export const KvEventTypes = {
  /** `{key, value}`: the key holds `value` (any JSON value) from now on. */
  set: 'kv.set',
  /** `{key}`: the key was read; only its last use moves (coalesced, written late). */
  touch: 'kv.touch',
  /** `{key, reason}`: the key is gone; `deleted`, `expired` (TTL) or `evicted` (LRU), the last two journaled by compaction. */
  delete: 'kv.delete',
} as const;

/** The record namespace of a key-value store: `compact --kind kv` folds `kv.*` records and refuses a store of another kind. */
export const KV_NAMESPACE = 'kv';

/** Longest key, in UTF-16 code units (JavaScript string length). */
export const MAX_KEY_LENGTH = 1024;

/** A JSON value as JSON.parse gives it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** One key's state: its value and when it was last set or read (epoch ms). */
export interface KvEntry {
  readonly key: string;
  readonly value: JsonValue;
  readonly lastUsedAt: number;
}

export type KvDeleteReason = 'deleted' | 'expired' | 'evicted';

export type KvEvent =
  | { kind: 'set'; key: string; time: number; value: JsonValue }
  | { kind: 'touch'; key: string; time: number }
  | { kind: 'delete'; key: string; time: number; reason: KvDeleteReason };

const DELETE_REASONS: ReadonlySet<string> = new Set(['deleted', 'expired', 'evicted']);
const KIND_BY_TYPE = kindsByType<KvEvent['kind']>(KvEventTypes);

/**
 * The key rule: a string of 1 to MAX_KEY_LENGTH characters, without
 * control characters (U+0000-U+001F, U+007F), so a key prints as one line
 * in `replay` and in a terminal. Any other character is allowed.
 */
export function isValidKey(key: unknown): key is string {
  return typeof key === 'string' && key.length > 0 && key.length <= MAX_KEY_LENGTH && !/[\x00-\x1f\x7f]/.test(key);
}

const invalid = invalidPayload;
const quoted = (v: unknown) => JSON.stringify(v)?.slice(0, 80);
const hasOwn = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

/** Every value reachable from a stored value is frozen: callers get it itself, and a change in place would be journaled nowhere. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** The journal payload of an event (the envelope carries type and time). */
export function kvPayload(event: KvEvent): Record<string, unknown> {
  switch (event.kind) {
    case 'set':
      return { key: event.key, value: event.value };
    case 'delete':
      return { key: event.key, reason: event.reason };
    default:
      return { key: event.key };
  }
}

/** Validates a record into an event, or says why not. Never throws. */
export function decodeKvEvent(record: JournalRecord): KvEvent | Rejection {
  return decodeKvPayload(record.type, record.time, record.payload);
}

/** The event a record of `type`, `time` and parsed `payload` holds, or why not: for every replay, and for KeyValueStore's own mutations before they are queued. Never throws. */
export function decodeKvPayload(type: string, time: number, payload: unknown): KvEvent | Rejection {
  const kind = KIND_BY_TYPE.get(type);
  if (!kind) return unknownType(type);
  if (!isPayloadObject(payload)) return notAnObject(type);
  const p = payload;
  if (!isValidKey(p.key)) return invalid(`invalid key ${quoted(p.key)}`);
  const base = { key: p.key, time };
  switch (kind) {
    case 'set':
      if (!hasOwn(p, 'value')) return invalid('kv.set without "value"');
      return { kind, ...base, value: deepFreeze(p.value as JsonValue) };
    case 'delete':
      return { kind, ...base, reason: typeof p.reason === 'string' && DELETE_REASONS.has(p.reason) ? (p.reason as KvDeleteReason) : 'deleted' };
    default:
      return { kind, ...base };
  }
}

/** A snapshot entry: `{key, value, lastUsedAt}` (an ISO instant). */
export function snapshotEntry(entry: KvEntry): Record<string, unknown> {
  return { key: entry.key, value: entry.value, lastUsedAt: new Date(entry.lastUsedAt).toISOString() };
}

/** A snapshot entry back into an entry, or why not (a session or an event stream is not one). Never throws. */
export function reviveKvEntry(raw: unknown): KvEntry | Rejection {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return invalid('snapshot entry is not an object');
  const e = raw as Record<string, unknown>;
  if (!isValidKey(e.key)) return invalid(`snapshot entry without a valid key (${quoted(e.key)})`);
  if (!hasOwn(e, 'value')) return invalid(`snapshot entry ${quoted(e.key)} without "value"`);
  const lastUsedAt = parseIsoInstant(e.lastUsedAt);
  if (lastUsedAt === undefined) return { code: WarningCodes.INVALID_DATE, message: `snapshot entry ${quoted(e.key)}: lastUsedAt is not a valid ISO instant` };
  return { key: e.key, value: deepFreeze(e.value as JsonValue), lastUsedAt };
}

/**
 * The reducer. Every event refreshes the last use as max(lastUsedAt, ts), so
 * it never moves back (a writer whose clock lags cannot make a key look
 * idle; docs/FORMAT.md, "Time"). Entries are never changed in place.
 */
export function applyKvEvent(state: Map<string, KvEntry>, event: KvEvent): void {
  const current = state.get(event.key);
  switch (event.kind) {
    case 'set':
      state.set(event.key, { key: event.key, value: event.value, lastUsedAt: current ? Math.max(current.lastUsedAt, event.time) : event.time });
      return;
    case 'touch':
      if (current && event.time > current.lastUsedAt) state.set(event.key, { ...current, lastUsedAt: event.time });
      return;
    case 'delete':
      state.delete(event.key);
      return;
  }
}
