import { ErrorCodes, SessionJournalError } from '../errors.js';
import type { QueuedEntry } from '../engine/commit-queue.js';
import type { Journal } from '../storage/journal.js';
import { StreamEventTypes, eventIdOf, isMessageObject, isPrimingMessage, isValidStreamId, MAX_STREAM_ID_LENGTH, newNonce, storePayload } from './event-records.js';
import type { EventStreams } from './event-streams.js';

/** The SDK's types (`@modelcontextprotocol/sdk/server/streamableHttp.js`), restated so there is no runtime dependency on it. */
export type StreamId = string;
export type EventId = string;
/** A JSON-RPC message as the SDK hands it over; stored as JSON. */
export type EventMessage = object;

/** An event appended by this process, indexed once its commit has numbered it. */
export interface PendingEvent {
  streamId: string;
  session: string | undefined;
  /** As the journal holds them: the message parsed back from its JSON, the record's time. */
  message: unknown;
  time: number;
  nonce: string;
}

/** What the views of one JournalEventStore share: its journal, its state, and its uncommitted events. */
export interface EventStoreCore {
  readonly journal: Journal;
  readonly state: EventStreams;
  readonly pending: Map<QueuedEntry, PendingEvent>;
}

/**
 * The SDK's EventStore for one MCP session, from `JournalEventStore.forSession`:
 * its streams are its own. An event id stored through another session's view
 * (or through the unscoped store) is unknown here, and each session's
 * standalone `_GET_stream` is a stream of its own. Stream ids are the SDK's
 * own, so the transport maps them back to its streams.
 */
export class McpSessionEventStore {
  /** @internal Use JournalEventStore.forSession. */
  constructor(
    private readonly core: EventStoreCore,
    /** The MCP session this view belongs to; undefined for the unscoped store. */
    readonly sessionId: string | undefined,
  ) {}

  /** Stores the message; resolves with its event id once it is committed (and fsynced, unless `fsync: false`). */
  async storeEvent(streamId: StreamId, message: EventMessage): Promise<EventId> {
    if (!isValidStreamId(streamId)) {
      throw new SessionJournalError(ErrorCodes.INVALID_OPTION, `stream id must be a string of 1-${MAX_STREAM_ID_LENGTH} characters`, { details: { streamId: String(streamId).slice(0, 100) } });
    }
    if (!isMessageObject(message)) throw new TypeError('message must be a JSON-RPC message object (or {} for priming)');
    const nonce = newNonce();
    // This process replays the message as every other one reads it from the journal, not the caller's object (which it may change or reuse).
    const { entry, decoded } = this.core.journal.appendDecoded(StreamEventTypes.store, storePayload(streamId, message, nonce, this.sessionId), (payloadJson, time) => ({
      message: (JSON.parse(payloadJson) as { m: unknown }).m,
      time,
    }));
    this.core.pending.set(entry, { streamId, session: this.sessionId, nonce, ...decoded });
    await this.core.journal.flush();
    return eventIdOf({ seq: entry.seq, time: entry.time, message, nonce });
  }

  /** The stream of an event id this view stored, or undefined (the SDK then answers 400 without replaying). */
  async getStreamIdForEventId(eventId: EventId): Promise<StreamId | undefined> {
    await this.core.journal.follow();
    return this.core.state.find(String(eventId), this.sessionId)?.streamId;
  }

  /**
   * Sends every event of the stream after `lastEventId`, in order, then
   * returns the stream id. Events stored while it sends are sent too: it
   * stops only when a look at the store finds nothing newer, so an event
   * committed by this process is either replayed here or (committed later)
   * delivered live by the transport, never neither.
   */
  async replayEventsAfter(lastEventId: EventId, { send }: { send: (eventId: EventId, message: never) => Promise<void> }): Promise<StreamId> {
    const { journal, state } = this.core;
    await journal.follow();
    const id = String(lastEventId);
    const found = state.find(id, this.sessionId);
    if (found === undefined) {
      throw new SessionJournalError(ErrorCodes.UNKNOWN_EVENT_ID, `no stored event of this ${this.sessionId === undefined ? 'store' : 'MCP session'} has id ${JSON.stringify(id.slice(0, 100))} (never stored here, stored through another view, or its stream expired)`, {
        details: { eventId: id.slice(0, 100) },
      });
    }
    let cursor = found.seq;
    for (;;) {
      const batch = state.eventsAfter(this.sessionId, found.streamId, cursor);
      if (batch.length === 0) return found.streamId;
      for (const event of batch) {
        cursor = event.seq;
        if (!isPrimingMessage(event.message)) await send(eventIdOf(event), event.message as never);
      }
      await journal.follow();
    }
  }
}
