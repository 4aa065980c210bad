import type { FoldState, RetentionDecision } from '../compact/compactor.js';
import { parseIsoInstant } from '../journal/dates.js';
import type { JournalRecord, Rejection } from '../journal/record-codec.js';
import { WarningCodes } from '../journal/warnings.js';
import { StreamEventTypes, decodeStreamEvent, isMessageObject, isValidStreamId, type StoredEvent } from './event-records.js';

interface Stream {
  id: string;
  /** In sequence order: records are applied in file order, and seq grows with it. */
  events: StoredEvent[];
  /** Time of the newest event: TTL counts from it. */
  lastTime: number;
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
  /** Event id (the decimal seq) -> stream id. */
  private readonly index = new Map<string, string>();

  constructor(readonly ttlMs: number) {}

  get size(): number {
    return this.streams.size;
  }

  /** Events held, over all streams. */
  get eventCount(): number {
    return this.index.size;
  }

  reset(): void {
    this.streams.clear();
    this.index.clear();
  }

  /** Adds one committed event (own or another writer's). */
  add(streamId: string, event: StoredEvent): void {
    let stream = this.streams.get(streamId);
    if (!stream) this.streams.set(streamId, (stream = { id: streamId, events: [], lastTime: event.time }));
    const id = String(event.seq);
    if (this.index.has(id)) return; // the same seq twice (a duplicated line): keep the first
    stream.events.push(event);
    if (event.time > stream.lastTime) stream.lastTime = event.time;
    this.index.set(id, streamId);
  }

  streamOf(eventId: string): string | undefined {
    return this.index.get(eventId);
  }

  /** Events of `streamId` after the one with sequence number `afterSeq`, oldest first (a copy). */
  eventsAfter(streamId: string, afterSeq: number): StoredEvent[] {
    const events = this.streams.get(streamId)?.events ?? [];
    let i = events.length;
    while (i > 0 && events[i - 1]!.seq > afterSeq) i--;
    return events.slice(i);
  }

  // ---- JournalConsumer / FoldState ----------------------------------------

  restore(entry: unknown): Rejection | undefined {
    const e = entry as { stream?: unknown; events?: unknown } | null;
    if (e === null || typeof e !== 'object' || !isValidStreamId(e.stream) || !Array.isArray(e.events)) {
      return { code: WarningCodes.INVALID_PAYLOAD, message: 'snapshot entry is not an event stream' };
    }
    for (const ev of e.events as unknown[]) {
      const { seq, ts, m } = (ev ?? {}) as { seq?: unknown; ts?: unknown; m?: unknown };
      const time = parseIsoInstant(ts);
      if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return { code: WarningCodes.INVALID_PAYLOAD, message: `stream ${e.stream}: event without a valid seq` };
      if (time === undefined) return { code: WarningCodes.INVALID_DATE, message: `stream ${e.stream}: event ${seq} has an invalid ts` };
      if (!isMessageObject(m)) return { code: WarningCodes.INVALID_PAYLOAD, message: `stream ${e.stream}: event ${seq} message is not an object` };
    }
    for (const ev of e.events as Array<{ seq: number; ts: string; m: unknown }>) this.add(e.stream, { seq: ev.seq, time: parseIsoInstant(ev.ts)!, message: ev.m });
    return undefined;
  }

  apply(record: JournalRecord): Rejection | undefined {
    const event = decodeStreamEvent(record);
    if ('code' in event) return event;
    if (event.kind === 'store') this.add(event.streamId, { seq: event.seq, time: event.time, message: event.message });
    else this.drop(event.streamId);
    return undefined;
  }

  keyOf(record: JournalRecord): string | undefined {
    const s = (record.payload as { s?: unknown } | null)?.s;
    return typeof s === 'string' ? s : undefined;
  }

  drop(key: string): void {
    const stream = this.streams.get(key);
    if (!stream) return;
    for (const ev of stream.events) this.index.delete(String(ev.seq));
    this.streams.delete(key);
  }

  *entries(): Iterable<unknown> {
    for (const s of this.streams.values()) {
      yield { stream: s.id, events: s.events.map((ev) => ({ seq: ev.seq, ts: new Date(ev.time).toISOString(), m: ev.message })) };
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
    for (const s of this.streams.values()) {
      if (now - s.lastTime > this.ttlMs) decisions.push({ key: s.id, reason: 'expired', type: StreamEventTypes.delete, payload: { s: s.id, reason: 'expired' } });
    }
    return decisions;
  }
}
