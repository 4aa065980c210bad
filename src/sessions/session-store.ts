import { crypto } from '../lazy.js';
import { ErrorCodes, SessionJournalError, requirePositive, requirePositiveInteger } from '../errors.js';
import { isStorableTime, isValidDate } from '../engine/dates.js';
import { Journal, type JournalOptions } from '../storage/journal.js';
import type { JournalRecord, Rejection } from '../engine/record-codec.js';
import { WarningCodes, writeWarningToStderr, type JournalWarning, type WarningHandler } from '../engine/warnings.js';
import type { SnapshotEntry } from '../engine/snapshot-entry.js';
import type { LaterRejection } from '../engine/journal-consumer.js';
import { reducerFailed } from '../engine/commit-apply.js';
import type { QueuedEntry } from '../engine/commit-queue.js';
import { SessionEventTypes, applySessionEvent, decodeSessionEvent, decodeSessionPayload, importedSessionId, reviveSession, sessionIdOfEntryLine, sessionPayload, type Revived, type SessionEvent } from './session-events.js';
import { isValidSessionId, type ConversationTurn, type SessionData, type SessionStorage } from './session-types.js';
import { partitionSessions } from './session-retention.js';
import { SessionView } from './session-view.js';
import { autoCompactorFor, type AutoCompactPolicy, type AutoCompactor } from '../compact/auto-compact.js';
import { passedToJournal, type StoreJournalOptions } from '../storage/store-options.js';

export interface SessionStoreOptions extends StoreJournalOptions {
  /**
   * Sessions not accessed for this long (by this process's clock) are left
   * out of listSessions (default 24 h); compaction, which passes the same
   * value, journals their removal.
   */
  ttlMs?: number;
  /** listSessions shows at most this many, a positive integer, most recently accessed first (default 100); compaction evicts the rest. */
  maxSessions?: number;
  /**
   * Largest prompt + response of one turn, in UTF-8 bytes: a larger turn
   * throws TURN_TOO_LARGE and changes nothing. Default: no limit but
   * maxRecordBytes.
   */
  maxTurnBytes?: number;
  /** Access-time refreshes are written at most this late (default 1 s). */
  touchFlushMs?: number;
  /**
   * Compact in a child process when the journal outgrows its snapshot
   * (default: at 16 MiB and 100 % growth); false leaves compaction to cron.
   * After a compaction child fails (an AUTO_COMPACT_FAILED warning), none is
   * started again for 5 minutes (on `clock`); after one found another
   * compaction running, for 30 s.
   */
  autoCompact?: Partial<AutoCompactPolicy> | false;
}

export const DEFAULT_TTL_MS = 24 * 60 * 60 * 1000;
export const DEFAULT_MAX_SESSIONS = 100;
/** No limit of its own: a turn is bounded by maxRecordBytes only. */
export const DEFAULT_MAX_TURN_BYTES = Number.POSITIVE_INFINITY;

/**
 * A drop-in for codex-mcp-server's SessionStorage, durable and shared by
 * processes. Every method is synchronous like the original: mutations apply
 * in memory at once and are journaled by group commit; reads first apply
 * what other processes have committed (one fstat when nothing is new).
 * Like the original, no method throws because of the store's files: when
 * they cannot be read (CATCH_UP_FAILED) or written (COMMIT_FAILED), methods
 * answer from and apply to this process's view, and flush() rejects until
 * the store is usable again. Only open, bad arguments and CLOSED throw.
 */
export class SessionStore implements SessionStorage {
  readonly ttlMs: number;
  readonly maxSessions: number;
  private readonly maxTurnBytes: number;
  private readonly view = new SessionView();
  /** Set by attach(), right after the constructor: the replay at open needs the view first. */
  private journal!: Journal;
  private autoCompactor: AutoCompactor | undefined;
  private readonly journalOptions: JournalOptions;
  private readonly autoCompactPolicy: SessionStoreOptions['autoCompact'];
  private readonly onWarning: WarningHandler;
  readonly readOnly: boolean;
  /** onWarning, for what this store finds itself (a lazily made snapshot entry may be made during the replay at open, before `journal` is set). */
  private readonly report: (warning: JournalWarning) => void;

  private constructor(options: SessionStoreOptions) {
    this.readOnly = options.readOnly ?? false;
    const onWarning = options.onWarning ?? writeWarningToStderr;
    this.report = (warning) => {
      try {
        onWarning(warning);
      } catch {
        // a failing warning handler must not break a read
      }
    };
    this.ttlMs = requirePositive('ttlMs', options.ttlMs ?? DEFAULT_TTL_MS);
    this.maxSessions = requirePositiveInteger('maxSessions', options.maxSessions ?? DEFAULT_MAX_SESSIONS);
    this.maxTurnBytes = options.maxTurnBytes === undefined ? DEFAULT_MAX_TURN_BYTES : requirePositive('maxTurnBytes', options.maxTurnBytes);
    this.journalOptions = {
      ...passedToJournal(options),
      storeKind: 'session',
      consumer: {
        reset: () => this.view.reset(),
        restore: (entry) => this.restoreEntry(entry),
        restoreEntry: (entry) => this.restoreSnapshotEntry(entry),
        apply: (record, later) => this.applyRecord(record, later),
        committed: (entries) => this.view.committed(entries),
      },
      deferredFlushMs: options.touchFlushMs ?? 1000,
      onDurable: () => this.autoCompactor?.maybeStart(),
    };
    this.autoCompactPolicy = options.autoCompact;
    this.onWarning = options.onWarning ?? writeWarningToStderr;
  }

  /** Opens (creating if needed) and replays the store: a directory, or a store on Redis (`redis`). */
  static async open(options: SessionStoreOptions): Promise<SessionStore> {
    const store = new SessionStore(options);
    return store.attach(await Journal.open(store.journalOptions));
  }

  /** The same, for code that must build its storage synchronously (a directory only: SYNC_UNSUPPORTED for Redis). */
  static openSync(options: SessionStoreOptions): SessionStore {
    const store = new SessionStore(options);
    return store.attach(Journal.openSync(store.journalOptions));
  }

  private attach(journal: Journal): this {
    this.journal = journal;
    const compactArgs = ['--ttl', `${this.ttlMs}ms`, '--max-sessions', String(this.maxSessions)];
    this.autoCompactor = this.readOnly ? undefined : autoCompactorFor(this.autoCompactPolicy, journal, compactArgs, this.onWarning);
    return this;
  }

  /**
   * Applies what every process and host had acknowledged before the call.
   * Reads of a store directory do this by themselves (one fstat); a store on
   * Redis answers reads from this process's view, so a request handler
   * awaits this first. Rejects (REDIS_UNAVAILABLE, IO_ERROR) when the store
   * cannot be read; the view is then as it was.
   */
  catchUp(): Promise<void> {
    return this.journal.follow();
  }

  /** The store directory (for a store on Redis: its server and prefix). */
  get dir(): string {
    return this.journal.dir;
  }

  // ---- the SessionStorage contract ---------------------------------------

  /** Over maxSessions, the least recently used are hidden from listSessions, not deleted (see expireNow). */
  createSession(): string {
    this.journal.tryCatchUp();
    const id = crypto().randomUUID();
    this.record({ kind: 'create', id, time: this.journal.now() });
    return id;
  }

  ensureSession(sessionId: string): void {
    this.journal.tryCatchUp();
    if (!isValidSessionId(sessionId)) {
      throw new SessionJournalError(ErrorCodes.INVALID_SESSION_ID, 'Session ID must be 1-256 characters and contain only letters, numbers, hyphens, and underscores', {
        details: { sessionId: String(sessionId).slice(0, 300) },
      });
    }
    const exists = this.view.sessions.has(sessionId);
    // On an existing session this only refreshes its access time, so it waits for the next commit.
    this.record({ kind: 'create', id: sessionId, time: this.journal.now() }, exists);
  }

  getSession(sessionId: string): SessionData | undefined {
    this.journal.tryCatchUp();
    const session = this.view.sessions.get(sessionId);
    if (session) this.touch(sessionId);
    return session;
  }

  updateSession(sessionId: string, data: Partial<SessionData>): void {
    this.journal.tryCatchUp();
    if (!this.view.sessions.has(sessionId)) return;
    this.record({ kind: 'update', id: sessionId, time: this.journal.now(), data: checkUpdate(data) });
  }

  deleteSession(sessionId: string): boolean {
    this.journal.tryCatchUp();
    if (!this.view.sessions.has(sessionId)) return false;
    this.record({ kind: 'delete', id: sessionId, time: this.journal.now(), reason: 'deleted' });
    return true;
  }

  /**
   * Newest access first, without the sessions this process's clock finds
   * expired or beyond maxSessions. They are only hidden: nothing is
   * journaled, so a process with a fast clock deletes nothing for the
   * others; compaction (or expireNow) journals their removal.
   */
  listSessions(): SessionData[] {
    this.journal.tryCatchUp();
    return partitionSessions(this.view.sessions.values(), this.journal.now(), this.ttlMs, this.maxSessions).live;
  }

  addTurn(sessionId: string, turn: ConversationTurn): void {
    this.journal.tryCatchUp();
    if (!this.view.sessions.has(sessionId)) return;
    this.record({ kind: 'turn', id: sessionId, time: this.journal.now(), turn: this.checkTurn(turn) });
  }

  resetSession(sessionId: string): void {
    this.journal.tryCatchUp();
    if (!this.view.sessions.has(sessionId)) return;
    this.record({ kind: 'reset', id: sessionId, time: this.journal.now() });
  }

  setCodexConversationId(sessionId: string, conversationId: string): void {
    this.journal.tryCatchUp();
    if (!this.view.sessions.has(sessionId)) return;
    if (typeof conversationId !== 'string') throw new TypeError('conversationId must be a string');
    this.record({ kind: 'conversation', id: sessionId, time: this.journal.now(), conversationId });
  }

  getCodexConversationId(sessionId: string): string | undefined {
    this.journal.tryCatchUp();
    return this.view.sessions.get(sessionId)?.codexConversationId;
  }

  // ---- expiry ------------------------------------------------------------

  /**
   * Journals, as `session.delete` records, the removal of every session this
   * process's clock finds expired (TTL) and then of the least recently used
   * beyond maxSessions (LRU), deciding under the store lock after catching up
   * with every other writer. Resolves, once they are durable, with the
   * counts. Unlike compaction this trusts the local clock: a process whose
   * clock runs ahead deletes sessions other processes still use. Call it
   * only where the clock is known good (docs/OPERATIONS.md, "Clocks").
   */
  async expireNow(): Promise<{ expired: number; evicted: number }> {
    const counts = { expired: 0, evicted: 0 };
    let decided: QueuedEntry[] = [];
    await this.journal.appendDecided(
      () => {
        // Run again (on Redis, another host moved the head first): the last run's deletes were dropped unwritten, and leave the view.
        this.view.withdraw(decided);
        decided = [];
        const now = this.journal.now();
        const { expired, evicted } = partitionSessions(this.view.sessions.values(), now, this.ttlMs, this.maxSessions);
        for (const [list, reason] of [[expired, 'expired'], [evicted, 'evicted']] as const) {
          for (const s of list) decided.push(this.record({ kind: 'delete', id: s.id, time: now, reason }));
          counts[reason] = list.length;
        }
        return []; // recorded above, so the view applies them too
      },
      { repeatable: true },
    );
    return counts;
  }

  // ---- durability --------------------------------------------------------

  /** Resolves when every mutation made before the call is durable. */
  flush(): Promise<void> {
    return this.journal.flush();
  }

  flushSync(): void {
    this.journal.flushSync();
  }

  /**
   * Flushes and releases the store. Later mutations throw CLOSED. An
   * automatic compaction already running goes on in its own process: it is
   * safe beside (and after) this one.
   */
  close(): Promise<void> {
    return this.journal.close();
  }

  closeSync(): void {
    this.journal.closeSync();
  }

  // ---- internals ---------------------------------------------------------

  /**
   * Queues a mutation for the journal and applies it to the view now, as
   * every replay will read it back: the view gets the event decoded from
   * the journaled payload, never the caller's objects, and a mutation a
   * replay would refuse is refused here, with the decoder's reason, before
   * anything is queued.
   */
  private record(event: SessionEvent, deferred = false): QueuedEntry {
    if (this.readOnly) throw new SessionJournalError(ErrorCodes.READ_ONLY, `store ${this.dir} was opened readOnly; ${event.kind} needs a writer`, { details: { dir: this.dir } });
    const type = SessionEventTypes[event.kind];
    const { entry, decoded } = this.journal.appendDecoded(type, sessionPayload(event), (payloadJson, time) => asReplayed(type, payloadJson, time), { time: event.time, deferred });
    this.view.applyLocal(decoded, entry);
    return entry;
  }

  /** A read refreshed the access time: coalesced into one queued touch per session. */
  private touch(sessionId: string): void {
    if (this.readOnly) return; // a reader leaves no trace, access times included
    const time = this.journal.now();
    if (!isStorableTime(Math.trunc(time))) return; // a read must not throw for a broken clock; its access is not recorded
    if (this.view.extendQueuedTouch(sessionId, time)) return;
    this.record({ kind: 'touch', id: sessionId, time }, true);
  }

  private checkTurn(turn: ConversationTurn): ConversationTurn {
    if (turn === null || typeof turn !== 'object') throw new TypeError('turn must be an object');
    if (typeof turn.prompt !== 'string' || typeof turn.response !== 'string') throw new TypeError('turn prompt and response must be strings');
    if (!isValidDate(turn.timestamp)) throw new SessionJournalError(ErrorCodes.INVALID_DATE, 'turn timestamp must be a valid Date within years 0000-9999');
    const bytes = Buffer.byteLength(turn.prompt) + Buffer.byteLength(turn.response);
    if (bytes > this.maxTurnBytes) {
      throw new SessionJournalError(ErrorCodes.TURN_TOO_LARGE, `turn of ${bytes} bytes exceeds maxTurnBytes (${this.maxTurnBytes})`, {
        details: { bytes, limit: this.maxTurnBytes },
      });
    }
    return turn;
  }

  private restoreEntry(entry: unknown): Rejection | undefined {
    const made = reviveSession(entry);
    if ('code' in made) return made;
    this.view.restoreSession(made.revived);
    return undefined;
  }

  /**
   * A snapshot's session, kept as its line until first read: opening a store
   * of ten thousand sessions to read one parses one. A line whose id cannot
   * be read off it is restored at once, as before.
   */
  private restoreSnapshotEntry(entry: SnapshotEntry): Rejection | undefined {
    const id = sessionIdOfEntryLine(entry.text);
    if (id === undefined) return this.restoreEntry(entry.value);
    this.view.restoreSessionLazily(id, () =>
      this.madeAtFirstRead(
        () => {
          const made = reviveSession(entry.value);
          if ('code' in made || made.revived.id === id) return made;
          return { code: WarningCodes.INVALID_PAYLOAD, message: `snapshot entry read as session ${JSON.stringify(id)} holds ${JSON.stringify(made.revived.id)}` };
        },
        (rejection) => this.report({ ...rejection, ...entry.place }),
      ),
    );
    return undefined;
  }

  private applyRecord(record: JournalRecord, later?: LaterRejection): Rejection | undefined {
    const imported = later && importedSessionId(record);
    if (imported !== undefined && this.view.isVacant(imported)) {
      // A session brought in whole (`import`) is kept as a snapshot entry is, until first read: a freshly imported store opens as cheaply as a compacted one.
      const reportAtRecord = later!();
      this.view.restoreSessionLazily(imported, () =>
        this.madeAtFirstRead(() => {
          const event = decodeSessionEvent(record);
          return 'code' in event ? event : { revived: (event as Extract<SessionEvent, { kind: 'import' }>).session };
        }, reportAtRecord),
      );
      return undefined;
    }
    const event = decodeSessionEvent(record);
    if ('code' in event) return event;
    this.view.applyCommitted(event);
    return undefined;
  }

  /**
   * A lazily kept session, made at its first read: the session, or undefined
   * once why not is reported. It runs inside a read, which must not throw on
   * file content, so a reducer that throws is a rejection here as it is at
   * open (the engine's guard).
   */
  private madeAtFirstRead(make: () => Revived<SessionData> | Rejection, report: (rejection: Rejection) => void): SessionData | undefined {
    let made: Revived<SessionData> | Rejection;
    try {
      made = make();
    } catch (err) {
      made = reducerFailed(err);
    }
    if (!('code' in made)) return made.revived;
    try {
      report(made);
    } catch {
      // a failing warning handler must not break a read
    }
    return undefined;
  }
}

/**
 * The argument's types: an object, whose dates are Date objects (JSON would
 * let a string through as a date). What the fields may hold beyond that
 * (no forbidden key, no other id, turns a replay reads) is the decoder's to
 * say, in record().
 */
function checkUpdate(data: Partial<SessionData>): Partial<SessionData> {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new SessionJournalError(ErrorCodes.INVALID_UPDATE, 'updateSession data must be an object');
  }
  for (const key of ['createdAt', 'lastAccessedAt'] as const) {
    if (Object.hasOwn(data, key) && !isValidDate(data[key])) {
      throw new SessionJournalError(ErrorCodes.INVALID_DATE, `updateSession ${key} must be a valid Date within years 0000-9999`, { details: { key } });
    }
  }
  if (Array.isArray(data.turns) && !data.turns.every((t) => isValidDate((t as ConversationTurn | null)?.timestamp))) {
    throw new SessionJournalError(ErrorCodes.INVALID_DATE, 'updateSession turns must have valid Date timestamps within years 0000-9999', { details: { key: 'turns' } });
  }
  return data;
}

/**
 * The event a replay reads from this payload, or the replay's refusal as an
 * error: INVALID_DATE for a date, INVALID_UPDATE for the rest of an update.
 * Other mutations are checked as arguments before they get here, so a
 * refusal of one is a bug of ours (TypeError).
 */
function asReplayed(type: string, payloadJson: string, time: number): SessionEvent {
  const event = decodeSessionPayload(type, time, JSON.parse(payloadJson));
  if (!('code' in event)) return event;
  if (event.code === WarningCodes.INVALID_DATE) throw new SessionJournalError(ErrorCodes.INVALID_DATE, `${type}: ${event.message}: a replay would skip it, so it is not written`);
  if (type === SessionEventTypes.update) throw new SessionJournalError(ErrorCodes.INVALID_UPDATE, `updateSession: ${event.message}: a replay would skip it, so it is not written`);
  throw new TypeError(`${type}: ${event.message}`);
}

export { applySessionEvent };
