import { compactStore, type CompactOptions, type CompactResult } from '../compact/compactor.js';
import { ErrorCodes, SessionJournalError, requirePositive } from '../errors.js';
import type { QueuedEntry } from '../journal/commit-queue.js';
import { Journal, type JournalOptions } from '../journal/journal.js';
import { writeWarningToStderr, type WarningHandler } from '../journal/warnings.js';
import { autoCompactorFor, type AutoCompactPolicy, type AutoCompactor } from '../compact/auto-compact.js';
import { StreamEventTypes, isMessageObject, isPrimingMessage, isValidStreamId, MAX_STREAM_ID_LENGTH } from './event-records.js';
import { EventStreams } from './event-streams.js';

/** The SDK's types (`@modelcontextprotocol/sdk/server/streamableHttp.js`), restated so there is no runtime dependency on it. */
export type StreamId = string;
export type EventId = string;
/** A JSON-RPC message as the SDK hands it over; stored as JSON. */
export type EventMessage = object;

export interface JournalEventStoreOptions {
  /** Store directory (created 0700 when missing). Do not share it with a SessionStore. */
  dir: string;
  /** Streams whose newest event is older than this are dropped by compaction (default 1 h). */
  ttlMs?: number;
  /** fsync each group commit before storeEvent resolves (default true). */
  fsync?: boolean;
  /** Where replay and commit warnings go (default: one line each on stderr). */
  onWarning?: WarningHandler;
  /** Longest journal line, written or read (default 1 MiB); a longer message is spread over several lines. */
  maxLineBytes?: number;
  /** Largest message stored, as JSON in UTF-8 bytes (default 64 MiB): a larger one rejects with RECORD_TOO_LARGE. */
  maxRecordBytes?: number;
  /** How long to wait for the store lock (default 20 s, the Journal's: longer than lockStaleMs). */
  lockTimeoutMs?: number;
  /** A store lock older than this is taken over (default 10 s). */
  lockStaleMs?: number;
  /** Chain each record's hash to the previous one, as SessionStore does (default true). */
  hashChain?: boolean;
  /** Clock in epoch ms (default Date.now). */
  clock?: () => number;
  /**
   * Compact automatically (fold, TTL, snapshot, archive), in a child process
   * running `session-journal compact --kind events`, when the journal
   * outgrows its snapshot (default: at 16 MiB and 100 % growth); false leaves
   * it to explicit `compact()` calls, which run in this process. After a
   * compaction child fails (an AUTO_COMPACT_FAILED warning), none is started
   * again for 5 minutes (on `clock`); after one found another compaction
   * running, for 30 s.
   */
  autoCompact?: Partial<AutoCompactPolicy> | false;
}

export const DEFAULT_EVENT_TTL_MS = 60 * 60 * 1000;

/** The code `replayEventsAfter` rejects with for an id it does not hold (kept as an export for callers that imported it). */
export const UNKNOWN_EVENT_ID = ErrorCodes.UNKNOWN_EVENT_ID;

interface Pending {
  streamId: string;
  message: unknown;
}

/**
 * A durable EventStore for the MCP SDK's Streamable HTTP transports
 * (`new StreamableHTTPServerTransport({ eventStore })`), shared by processes.
 *
 * - `storeEvent` resolves once the event is committed (and fsynced, unless
 *   `fsync: false`); concurrent calls share one group commit. The event id is
 *   the store-wide sequence number of its record, as a decimal string: unique
 *   and increasing across every process writing to the store.
 * - The stream of an event id is looked up in stored data (an index kept by
 *   the reducer), never parsed out of the id, so the standalone `_GET_stream`
 *   resumes like a request stream.
 * - Reads first apply what other processes committed (one fstat when nothing
 *   is new), so a client may resume on any server process sharing the store.
 * - The empty `{}` priming message is stored (it has an id) but not replayed.
 */
export class JournalEventStore {
  readonly ttlMs: number;
  private readonly state: EventStreams;
  private readonly journal: Journal;
  private readonly pending = new Map<QueuedEntry, Pending>();
  private readonly onWarning: WarningHandler;
  private readonly autoCompactor: AutoCompactor | undefined;

  private constructor(options: JournalEventStoreOptions) {
    this.ttlMs = requirePositive('ttlMs', options.ttlMs ?? DEFAULT_EVENT_TTL_MS);
    this.state = new EventStreams(this.ttlMs);
    this.onWarning = options.onWarning ?? writeWarningToStderr;
    const journalOptions: JournalOptions = {
      dir: options.dir,
      consumer: {
        reset: () => this.state.reset(),
        restore: (entry) => this.state.restore(entry),
        apply: (record) => this.state.apply(record),
        committed: (entries) => this.committed(entries),
      },
      onWarning: this.onWarning,
      onDurable: () => this.autoCompactor?.maybeStart(),
    };
    for (const key of ['fsync', 'maxLineBytes', 'maxRecordBytes', 'lockTimeoutMs', 'lockStaleMs', 'clock', 'hashChain'] as const) {
      if (options[key] !== undefined) (journalOptions as unknown as Record<string, unknown>)[key] = options[key];
    }
    this.journal = Journal.openSync(journalOptions);
    // In a child process, as for sessions: the fold must not stall this server's event loop.
    this.autoCompactor = autoCompactorFor(options.autoCompact, this.journal, ['--kind', 'events', '--ttl', `${this.ttlMs}ms`], this.onWarning);
  }

  /** Opens (creating if needed) and replays the store. */
  static async open(options: JournalEventStoreOptions): Promise<JournalEventStore> {
    return new JournalEventStore(options);
  }

  get dir(): string {
    return this.journal.dir;
  }

  /** Streams and events currently held (after catching up with other processes). */
  stats(): { streams: number; events: number } {
    this.journal.catchUp();
    return { streams: this.state.size, events: this.state.eventCount };
  }

  // ---- the SDK's EventStore ----------------------------------------------

  async storeEvent(streamId: StreamId, message: EventMessage): Promise<EventId> {
    if (!isValidStreamId(streamId)) {
      throw new SessionJournalError(ErrorCodes.INVALID_OPTION, `stream id must be a string of 1-${MAX_STREAM_ID_LENGTH} characters`, { details: { streamId: String(streamId).slice(0, 100) } });
    }
    if (!isMessageObject(message)) throw new TypeError('message must be a JSON-RPC message object (or {} for priming)');
    const entry = this.journal.append(StreamEventTypes.store, { s: streamId, m: message });
    this.pending.set(entry, { streamId, message });
    await this.journal.flush();
    return String(entry.seq);
  }

  async getStreamIdForEventId(eventId: EventId): Promise<StreamId | undefined> {
    this.journal.catchUp();
    return this.state.streamOf(String(eventId));
  }

  /**
   * Sends every event of the stream after `lastEventId`, in order, then
   * returns the stream id. Events stored while it sends are sent too: it
   * stops only when a look at the store finds nothing newer, so an event
   * committed by this process is either replayed here or (committed later)
   * delivered live by the transport, never neither.
   */
  async replayEventsAfter(lastEventId: EventId, { send }: { send: (eventId: EventId, message: never) => Promise<void> }): Promise<StreamId> {
    this.journal.catchUp();
    const id = String(lastEventId);
    const streamId = this.state.streamOf(id);
    if (streamId === undefined) {
      throw new SessionJournalError(UNKNOWN_EVENT_ID, `no stored event has id ${JSON.stringify(id.slice(0, 100))} (never stored here, or its stream expired)`, { details: { eventId: id.slice(0, 100) } });
    }
    let cursor = Number(id);
    for (;;) {
      const batch = this.state.eventsAfter(streamId, cursor);
      if (batch.length === 0) return streamId;
      for (const event of batch) {
        cursor = event.seq;
        if (!isPrimingMessage(event.message)) await send(String(event.seq), event.message as never);
      }
      this.journal.catchUp();
    }
  }

  // ---- maintenance -------------------------------------------------------

  /** Resolves when every event stored before the call is durable. */
  flush(): Promise<void> {
    return this.journal.flush();
  }

  /**
   * Compacts the store: a new snapshot, streams past the TTL dropped (and a
   * delete journaled, so other processes drop them too), folded segments
   * archived. Safe beside live writers in any process.
   */
  async compact(options: Partial<Omit<CompactOptions, 'dir'>> = {}): Promise<CompactResult> {
    const result = await compactEventStore({ onWarning: this.onWarning, maxLineBytes: this.journal.maxLineBytes, maxRecordBytes: this.journal.maxRecordBytes, ...options, dir: this.dir, ttlMs: this.ttlMs });
    this.journal.catchUp();
    return result;
  }

  /**
   * Flushes and releases the store. An automatic compaction already running
   * goes on in its own process: it is safe beside (and after) this one.
   */
  close(): Promise<void> {
    return this.journal.close();
  }

  // ---- internals ---------------------------------------------------------

  /** Our own entries were written, right after every earlier record was applied: index them in order. */
  private committed(entries: readonly QueuedEntry[]): void {
    for (const entry of entries) {
      const p = this.pending.get(entry);
      if (!p) continue;
      this.pending.delete(entry);
      this.state.add(p.streamId, { seq: entry.seq, time: entry.time, message: p.message });
    }
  }
}

export interface CompactEventStoreOptions extends CompactOptions {
  /** Streams whose newest event is older than this are dropped (default 1 h). */
  ttlMs?: number;
}

/** Compacts an event store (for cron or a maintenance task); safe beside live writers. */
export function compactEventStore(options: CompactEventStoreOptions): Promise<CompactResult> {
  return compactStore(options, new EventStreams(options.ttlMs ?? DEFAULT_EVENT_TTL_MS));
}
