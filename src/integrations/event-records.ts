import { crypto } from '../lazy.js';
import type { JournalRecord, Rejection } from '../engine/record-codec.js';
import { invalidPayload, isPayloadObject, notAnObject, unknownType } from '../engine/record-kinds.js';

/** Journal event types of the MCP event-stream reducer (docs/FORMAT.md, "Event-store records"). */
export const StreamEventTypes = {
  /**
   * `{s, m, nonce, session?}`: message `m` was sent on stream `s` (of MCP
   * session `session`, when stored through a per-session view); its event id
   * is `${seq}-${nonce}`.
   */
  store: 'event.store',
  /** `{s, reason, session?}`: stream `s` (of `session`) and all its events are gone (`expired`: TTL, by compaction). */
  delete: 'event.delete',
} as const;

/** One stored event. `seq` is the store-wide sequence number of its record. */
export interface StoredEvent {
  seq: number;
  /** Epoch ms when it was stored. */
  time: number;
  message: unknown;
  /**
   * The random part of its id. Absent on events stored before ids had one
   * (session-journal 0.1.0): they are replayed with their old id, the bare
   * seq, but no id names them as a place to resume from (it could be guessed).
   */
  nonce?: string;
}

export type StreamEvent =
  | { kind: 'store'; streamId: string; session: string | undefined; event: StoredEvent }
  | { kind: 'delete'; streamId: string; session: string | undefined; reason: string };

/** Longest stream id accepted (the SDK uses UUIDs and `_GET_stream`). */
export const MAX_STREAM_ID_LENGTH = 1024;

/** Longest MCP session id a per-session view accepts (the SDK's are UUIDs). */
export const MAX_MCP_SESSION_ID_LENGTH = 256;

/** Random bytes in each event id: 128 bits, as a UUID v4 has 122. */
const NONCE_BYTES = 16;
/** Base64url of NONCE_BYTES bytes, or longer (a future version may use more). */
const NONCE_PATTERN = /^[A-Za-z0-9_-]{22,86}$/;
/** The MCP spec's rule for session ids: visible ASCII (0x21-0x7E). */
const MCP_SESSION_ID_PATTERN = /^[\x21-\x7e]+$/;

const invalid = invalidPayload;

export function isValidStreamId(id: unknown): id is string {
  return typeof id === 'string' && id.length > 0 && id.length <= MAX_STREAM_ID_LENGTH;
}

export function isValidMcpSessionId(id: unknown): id is string {
  return typeof id === 'string' && id.length <= MAX_MCP_SESSION_ID_LENGTH && MCP_SESSION_ID_PATTERN.test(id);
}

export function isValidNonce(nonce: unknown): nonce is string {
  return typeof nonce === 'string' && NONCE_PATTERN.test(nonce);
}

/**
 * Random bytes drawn 256 nonces at a time, as crypto.randomUUID caches its
 * own: one randomBytes(16) call costs about 20 µs on a loaded 2-core
 * machine, a slice of the pool under 1 µs.
 */
const noncePool = Buffer.alloc(NONCE_BYTES * 256);
let noncePoolOffset = noncePool.length;

export function newNonce(): string {
  if (noncePoolOffset === noncePool.length) {
    crypto().randomFillSync(noncePool);
    noncePoolOffset = 0;
  }
  const nonce = noncePool.toString('base64url', noncePoolOffset, noncePoolOffset + NONCE_BYTES);
  noncePoolOffset += NONCE_BYTES;
  return nonce;
}

/**
 * The id handed to the SDK: the seq keeps ids readable and ordered for a
 * human; the nonce makes them unguessable. The store never parses an id: it
 * looks the whole string up, so changing any character makes it unknown.
 */
export function eventIdOf(event: StoredEvent): string {
  return event.nonce === undefined ? String(event.seq) : `${event.seq}-${event.nonce}`;
}

/** A JSON-RPC message, or the empty `{}` priming message: any JSON object. */
export function isMessageObject(m: unknown): m is Record<string, unknown> {
  return m !== null && typeof m === 'object' && !Array.isArray(m);
}

/** The priming message the SDK stores to hand out a first event id; it is not replayed. */
export function isPrimingMessage(m: unknown): boolean {
  return isMessageObject(m) && Object.keys(m).length === 0;
}

/** The payload of an `event.store` record. */
export function storePayload(streamId: string, message: object, nonce: string, session: string | undefined): object {
  return session === undefined ? { s: streamId, m: message, nonce } : { s: streamId, m: message, nonce, session };
}

/** The payload of an `event.delete` record. */
export function deletePayload(streamId: string, session: string | undefined, reason: string): object {
  return session === undefined ? { s: streamId, reason } : { s: streamId, reason, session };
}

/** Validates a record into an event, or says why not. Never throws. */
export function decodeStreamEvent(record: JournalRecord): StreamEvent | Rejection {
  if (record.type !== StreamEventTypes.store && record.type !== StreamEventTypes.delete) return unknownType(record.type);
  if (!isPayloadObject(record.payload)) return notAnObject(record.type);
  const p = record.payload;
  if (!isValidStreamId(p.s)) return invalid(`invalid stream id ${JSON.stringify(p.s)?.slice(0, 80)}`);
  if (p.session !== undefined && !isValidMcpSessionId(p.session)) return invalid(`invalid MCP session id ${JSON.stringify(p.session)?.slice(0, 80)}`);
  const session = p.session as string | undefined;
  if (record.type === StreamEventTypes.delete) return { kind: 'delete', streamId: p.s, session, reason: typeof p.reason === 'string' ? p.reason : 'deleted' };
  if (!isMessageObject(p.m)) return invalid('event.store message "m" is not a JSON object');
  if (p.nonce !== undefined && !isValidNonce(p.nonce)) return invalid('event.store "nonce" is not 22-86 base64url characters');
  const event: StoredEvent = { seq: record.seq, time: record.time, message: p.m };
  if (p.nonce !== undefined) event.nonce = p.nonce as string;
  return { kind: 'store', streamId: p.s, session, event };
}
