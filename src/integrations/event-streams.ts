import type { FoldState, RetentionDecision } from '../compact/compactor.js';
import { parseIsoInstant } from '../engine/dates.js';
import type { JournalRecord, Rejection } from '../engine/record-codec.js';
import { WarningCodes } from '../engine/warnings.js';
import { StreamEventTypes, decodeStreamEvent, deletePayload, eventIdOf, isMessageObject, isValidMcpSessionId, isValidNonce, isValidStreamId, type StoredEvent } from './event-records.js';

interface Stream {
  /** The SDK's stream id (a request stream's UUID, or `_GET_stream`). */
  id: string;
  /** The MCP session whose view stored it; undefined for the store's own (unscoped) streams. */
  session: string | undefined;
  /** In sequence order: records are applied in file order, and seq grows with it. */
  events: StoredEvent[];
  /** Time of the newest event: TTL counts from it. */
  lastTime: number;
}

/**
 * A stream's key: its MCP session and its stream id, unambiguous because a
 * session id never holds a newline (visible ASCII only) and an unscoped key
 * starts with one. Every session's `_GET_stream` is a stream of its own.
 */
export function streamKey(session: string | undefined, streamId: string): string {
  return `${session ?? ''}\n${streamId}`;
}

/**
 * The event-stream state, shared by the live JournalEventStore and the
 * compactor: streams in first-event order, each with its events, and an index
 * from event id to stream so a stream is found from stored data, never by
 * parsing an id. Retention drops streams whose newest event is older than the TTL.
 */
export class EventStreams implements FoldState {
  readonly recordNamespace = 'event';
  private readonly streams = new Map<string, Stream>();
  /** Event id -> its stream and seq; only ids with a nonce (see StoredEvent.nonce). */
  private readonly index = new Map<string, { stream: Stream; seq: number }>();
  private events = 0;

  constructor(readonly ttlMs: number) {}

  get size(): number {
    return this.streams.size;
  }

  /** Events held, over all streams. */
  get eventCount(): number {
    return this.events;
  }

  reset(): void {
    this.streams.clear();
    this.index.clear();
    this.events = 0;
  }

  /** Adds one committed event (own or another writer's). */
  add(streamId: string, session: string | undefined, event: StoredEvent): void {
    const key = streamKey(session, streamId);
    let stream = this.streams.get(key);
    if (!stream) this.streams.set(key, (stream = { id: streamId, session, events: [], lastTime: event.time }));
    const last = stream.events[stream.events.length - 1];
    if (last && event.seq <= last.seq) return; // the same record twice (a duplicated line): keep the first
    stream.events.push(event);
    this.events++;
    if (event.time > stream.lastTime) stream.lastTime = event.time;
    if (event.nonce !== undefined) this.index.set(eventIdOf(event), { stream, seq: event.seq });
  }

  /**
   * Where an event id can be resumed from, as seen by `session` (undefined:
   * the unscoped store): the stream and the event's seq, or undefined when
   * the id is unknown, has no nonce, or belongs to another session's view.
   */
  find(eventId: string, session: string | undefined): { streamId: string; seq: number } | undefined {
    const found = this.index.get(eventId);
    if (!found || found.stream.session !== session) return undefined;
    return { streamId: found.stream.id, seq: found.seq };
  }

  /** Events of the stream after the one with sequence number `afterSeq`, oldest first (a copy). */
  eventsAfter(session: string | undefined, streamId: string, afterSeq: number): StoredEvent[] {
    const events = this.streams.get(streamKey(session, streamId))?.events ?? [];
    let i = events.length;
    while (i > 0 && events[i - 1]!.seq > afterSeq) i--;
    return events.slice(i);
  }

  // ---- JournalConsumer / FoldState ----------------------------------------

  restore(entry: unknown): Rejection | undefined {
    const e = entry as { stream?: unknown; session?: unknown; events?: unknown } | null;
    if (e === null || typeof e !== 'object' || !isValidStreamId(e.stream) || !Array.isArray(e.events)) {
      return { code: WarningCodes.INVALID_PAYLOAD, message: 'snapshot entry is not an event stream' };
    }
    if (e.session !== undefined && !isValidMcpSessionId(e.session)) return { code: WarningCodes.INVALID_PAYLOAD, message: `stream ${e.stream}: invalid MCP session id` };
    for (const ev of e.events as unknown[]) {
      const { seq, ts, m, nonce } = (ev ?? {}) as { seq?: unknown; ts?: unknown; m?: unknown; nonce?: unknown };
      const time = parseIsoInstant(ts);
      if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return { code: WarningCodes.INVALID_PAYLOAD, message: `stream ${e.stream}: event without a valid seq` };
      if (time === undefined) return { code: WarningCodes.INVALID_DATE, message: `stream ${e.stream}: event ${seq} has an invalid ts` };
      if (!isMessageObject(m)) return { code: WarningCodes.INVALID_PAYLOAD, message: `stream ${e.stream}: event ${seq} message is not an object` };
      if (nonce !== undefined && !isValidNonce(nonce)) return { code: WarningCodes.INVALID_PAYLOAD, message: `stream ${e.stream}: event ${seq} has an invalid nonce` };
    }
    for (const ev of e.events as Array<{ seq: number; ts: string; m: unknown; nonce?: string }>) {
      const event: StoredEvent = { seq: ev.seq, time: parseIsoInstant(ev.ts)!, message: ev.m };
      if (ev.nonce !== undefined) event.nonce = ev.nonce;
      this.add(e.stream, e.session as string | undefined, event);
    }
    return undefined;
  }

  apply(record: JournalRecord): Rejection | undefined {
    const decoded = decodeStreamEvent(record);
    if ('code' in decoded) return decoded;
    if (decoded.kind === 'store') this.add(decoded.streamId, decoded.session, decoded.event);
    else this.drop(streamKey(decoded.session, decoded.streamId));
    return undefined;
  }

  keyOf(record: JournalRecord): string | undefined {
    const p = record.payload as { s?: unknown; session?: unknown } | null;
    if (typeof p?.s !== 'string') return undefined;
    return streamKey(typeof p.session === 'string' ? p.session : undefined, p.s);
  }

  drop(key: string): void {
    const stream = this.streams.get(key);
    if (!stream) return;
    for (const ev of stream.events) if (ev.nonce !== undefined) this.index.delete(eventIdOf(ev));
    this.events -= stream.events.length;
    this.streams.delete(key);
  }

  *entries(): Iterable<unknown> {
    for (const s of this.streams.values()) {
      const events = s.events.map((ev) => (ev.nonce === undefined ? { seq: ev.seq, ts: new Date(ev.time).toISOString(), m: ev.message } : { seq: ev.seq, ts: new Date(ev.time).toISOString(), m: ev.message, nonce: ev.nonce }));
      yield s.session === undefined ? { stream: s.id, events } : { stream: s.id, session: s.session, events };
    }
  }

  /** The newest event's time: the store's own newest activity (the compactor's clock guard). */
  newestTime(): number | undefined {
    let newest: number | undefined;
    for (const s of this.streams.values()) if (newest === undefined || s.lastTime > newest) newest = s.lastTime;
    return newest;
  }

  retention(now: number): RetentionDecision[] {
    const decisions: RetentionDecision[] = [];
    for (const [key, s] of this.streams) {
      if (now - s.lastTime > this.ttlMs) decisions.push({ key, reason: 'expired', type: StreamEventTypes.delete, payload: deletePayload(s.id, s.session, 'expired') });
    }
    return decisions;
  }
}
