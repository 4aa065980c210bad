import { compactStore, type CompactOptions, type CompactResult } from '../compact/compactor.js';
import { ErrorCodes, SessionJournalError, requirePositive } from '../errors.js';
import type { QueuedEntry } from '../engine/commit-queue.js';
import { Journal, type JournalOptions } from '../storage/journal.js';
import { writeWarningToStderr, type WarningHandler } from '../engine/warnings.js';
import { autoCompactorFor, type AutoCompactPolicy, type AutoCompactor } from '../compact/auto-compact.js';
import { isValidMcpSessionId, MAX_MCP_SESSION_ID_LENGTH } from './event-records.js';
import { McpSessionEventStore, type EventId, type EventMessage, type EventStoreCore, type PendingEvent, type StreamId } from './event-store-view.js';
import { EventStreams } from './event-streams.js';
import { passedToJournal, type StoreJournalOptions } from '../storage/store-options.js';

export { McpSessionEventStore, type EventId, type EventMessage, type StreamId } from './event-store-view.js';

export interface JournalEventStoreOptions extends Omit<StoreJournalOptions, 'readOnly'> {
  /** Store directory (created 0700 when missing), or `redis` instead. Do not share it with a SessionStore. */
  dir?: string;
  /** Streams whose newest event is older than this are dropped by compaction (default 1 h). */
  ttlMs?: number;
  /** fsync each group commit before storeEvent resolves (default true). */
  fsync?: boolean;
  /** Largest message stored, as JSON in UTF-8 bytes (default 64 MiB): a larger one rejects with RECORD_TOO_LARGE. */
  maxRecordBytes?: number;
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

/**
 * A durable EventStore for the MCP SDK's Streamable HTTP transports,
 * shared by processes. Give each MCP session's transport its own view,
 * `eventStore: store.forSession(sessionId)` (README, "A durable EventStore"),
 * so sessions never see each other's streams; the store itself is the
 * EventStore of one unscoped set of streams.
 *
 * - `storeEvent` resolves once the event is committed (and fsynced, unless
 *   `fsync: false`); concurrent calls share one group commit.
 * - An event id is `${seq}-${nonce}`: the record's store-wide sequence
 *   number, and 128 random bits kept in the record. It cannot be guessed
 *   from other ids, and is looked up whole: an id with any character
 *   changed is unknown (`UNKNOWN_EVENT_ID`).
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
  /** Set by attach(), right after the constructor: the replay at open needs the state first. */
  private journal!: Journal;
  private readonly pending = new Map<QueuedEntry, PendingEvent>();
  private readonly onWarning: WarningHandler;
  private autoCompactor: AutoCompactor | undefined;
  private core!: EventStoreCore;
  private unscoped!: McpSessionEventStore;
  private readonly journalOptions: JournalOptions;
  private readonly autoCompactPolicy: JournalEventStoreOptions['autoCompact'];

  private constructor(options: JournalEventStoreOptions) {
    this.ttlMs = requirePositive('ttlMs', options.ttlMs ?? DEFAULT_EVENT_TTL_MS);
    this.state = new EventStreams(this.ttlMs);
    this.onWarning = options.onWarning ?? writeWarningToStderr;
    this.journalOptions = {
      ...passedToJournal(options),
      readOnly: false, // an event store always writes: storeEvent is its reason to exist
      storeKind: 'event',
      consumer: {
        reset: () => this.state.reset(),
        restore: (entry) => this.state.restore(entry),
        apply: (record) => this.state.apply(record),
        committed: (entries) => this.committed(entries),
      },
      onWarning: this.onWarning,
      onDurable: () => this.autoCompactor?.maybeStart(),
    };
    this.autoCompactPolicy = options.autoCompact;
  }

  /** Opens (creating if needed) and replays the store: a directory, or a store on Redis (`redis`). */
  static async open(options: JournalEventStoreOptions): Promise<JournalEventStore> {
    const store = new JournalEventStore(options);
    store.attach(await Journal.open(store.journalOptions));
    return store;
  }

  private attach(journal: Journal): void {
    this.journal = journal;
    // In a child process, as for sessions: the fold must not stall this server's event loop.
    this.autoCompactor = autoCompactorFor(this.autoCompactPolicy, journal, ['--kind', 'events', '--ttl', `${this.ttlMs}ms`], this.onWarning);
    this.core = { journal, state: this.state, pending: this.pending };
    this.unscoped = new McpSessionEventStore(this.core, undefined);
  }

  /**
   * Applies what every process and host had stored before the call. A store
   * directory's reads do this by themselves; on Redis, a server resuming a
   * stream another host wrote awaits this first (replayEventsAfter does).
   */
  catchUp(): Promise<void> {
    return this.journal.follow();
  }

  get dir(): string {
    return this.journal.dir;
  }

  /** Streams and events currently held, over every view (on a directory, after catching up with other processes; on Redis, as of the last catchUp()). */
  stats(): { streams: number; events: number } {
    this.journal.catchUp();
    return { streams: this.state.size, events: this.state.eventCount };
  }

  /**
   * The EventStore of one MCP session: pass it to that session's transport.
   * Its streams, `_GET_stream` included, are apart from every other
   * session's, and its event ids are unknown to every other view. Views of
   * the same session id (in this or another process, or after a restart)
   * share its streams. `mcpSessionId`: 1-256 visible ASCII characters, as
   * the MCP spec requires of session ids.
   */
  forSession(mcpSessionId: string): McpSessionEventStore {
    if (!isValidMcpSessionId(mcpSessionId)) {
      throw new SessionJournalError(ErrorCodes.INVALID_OPTION, `MCP session id must be 1-${MAX_MCP_SESSION_ID_LENGTH} visible ASCII characters`, { details: { mcpSessionId: String(mcpSessionId).slice(0, 100) } });
    }
    return new McpSessionEventStore(this.core, mcpSessionId);
  }

  // ---- the SDK's EventStore, for the unscoped streams ----------------------

  /** See McpSessionEventStore.storeEvent. */
  storeEvent(streamId: StreamId, message: EventMessage): Promise<EventId> {
    return this.unscoped.storeEvent(streamId, message);
  }

  /** See McpSessionEventStore.getStreamIdForEventId. */
  getStreamIdForEventId(eventId: EventId): Promise<StreamId | undefined> {
    return this.unscoped.getStreamIdForEventId(eventId);
  }

  /** See McpSessionEventStore.replayEventsAfter. */
  replayEventsAfter(lastEventId: EventId, options: { send: (eventId: EventId, message: never) => Promise<void> }): Promise<StreamId> {
    return this.unscoped.replayEventsAfter(lastEventId, options);
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
  async compact(options: Partial<Omit<CompactOptions, 'dir' | 'redis'>> = {}): Promise<CompactResult> {
    const where = this.journalOptions.redis ? { redis: this.journalOptions.redis } : { dir: this.dir };
    const result = await compactEventStore({ onWarning: this.onWarning, maxLineBytes: this.journal.maxLineBytes, maxRecordBytes: this.journal.maxRecordBytes, ...options, ...where, ttlMs: this.ttlMs });
    await this.journal.follow();
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
      this.state.add(p.streamId, p.session, { seq: entry.seq, time: p.time, message: p.message, nonce: p.nonce });
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
