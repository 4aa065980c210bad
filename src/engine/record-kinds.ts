import type { Rejection } from './record-codec.js';
import { WarningCodes } from './warnings.js';

/**
 * What every reducer's decoder checks first, and how it says so, written
 * once for the session, key-value and event-stream reducers: a record's type
 * is one of the reducer's, and its payload is a JSON object.
 */

/** A reducer's kinds by the journal type that carries each: `{ set: 'kv.set' }` gives `'kv.set' -> 'set'`. */
export function kindsByType<K extends string>(typesByKind: Readonly<Record<K, string>>): ReadonlyMap<string, K> {
  return new Map(Object.entries<string>(typesByKind).map(([kind, type]) => [type, kind as K]));
}

/** A type no kind of the reducer has. */
export function unknownType(type: string): Rejection {
  return { code: WarningCodes.UNKNOWN_EVENT_TYPE, message: `unknown event type ${JSON.stringify(type)}; skipped` };
}

/** A payload a reducer can read fields of: a JSON object (not null, not an array). */
export function isPayloadObject(payload: unknown): payload is Record<string, unknown> {
  return payload !== null && typeof payload === 'object' && !Array.isArray(payload);
}

/** A payload that is not one. */
export function notAnObject(type: string): Rejection {
  return invalidPayload(`${type} payload is not an object`);
}

export function invalidPayload(message: string): Rejection {
  return { code: WarningCodes.INVALID_PAYLOAD, message };
}
