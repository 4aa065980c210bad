import type { JournalRecord, Rejection } from '../journal/record-codec.js';
import { WarningCodes } from '../journal/warnings.js';

/** Journal event types of the MCP event-stream reducer (docs/FORMAT.md). */
export const StreamEventTypes = {
  /** `{s, m}`: message `m` was sent on stream `s`; its event id is the record's `seq`. */
  store: 'event.store',
  /** `{s, reason}`: stream `s` and all its events are gone (`expired`: TTL, by compaction). */
  delete: 'event.delete',
} as const;

/** One stored event. `seq` is the store-wide sequence number: the event id is `String(seq)`. */
export interface StoredEvent {
  seq: number;
  /** Epoch ms when it was stored. */
  time: number;
  message: unknown;
}

export type StreamEvent = { kind: 'store'; streamId: string; seq: number; time: number; message: unknown } | { kind: 'delete'; streamId: string; reason: string };

/** Longest stream id accepted (the SDK uses UUIDs and `_GET_stream`). */
export const MAX_STREAM_ID_LENGTH = 1024;

const invalid = (message: string): Rejection => ({ code: WarningCodes.INVALID_PAYLOAD, message });

export function isValidStreamId(id: unknown): id is string {
  return typeof id === 'string' && id.length > 0 && id.length <= MAX_STREAM_ID_LENGTH;
}

/** A JSON-RPC message, or the empty `{}` priming message: any JSON object. */
export function isMessageObject(m: unknown): m is Record<string, unknown> {
  return m !== null && typeof m === 'object' && !Array.isArray(m);
}

/** The priming message the SDK stores to hand out a first event id; it is not replayed. */
export function isPrimingMessage(m: unknown): boolean {
  return isMessageObject(m) && Object.keys(m).length === 0;
}

/** Validates a record into an event, or says why not. Never throws. */
export function decodeStreamEvent(record: JournalRecord): StreamEvent | Rejection {
  const p = record.payload as Record<string, unknown> | null;
  if (record.type !== StreamEventTypes.store && record.type !== StreamEventTypes.delete) {
    return { code: WarningCodes.UNKNOWN_EVENT_TYPE, message: `unknown event type ${JSON.stringify(record.type)}; skipped` };
  }
  if (p === null || typeof p !== 'object' || Array.isArray(p)) return invalid(`${record.type} payload is not an object`);
  if (!isValidStreamId(p.s)) return invalid(`invalid stream id ${JSON.stringify(p.s)?.slice(0, 80)}`);
  if (record.type === StreamEventTypes.delete) return { kind: 'delete', streamId: p.s, reason: typeof p.reason === 'string' ? p.reason : 'deleted' };
  if (!isMessageObject(p.m)) return invalid('event.store message "m" is not a JSON object');
  return { kind: 'store', streamId: p.s, seq: record.seq, time: record.time, message: p.m };
}
