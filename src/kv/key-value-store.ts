import { ErrorCodes, SessionJournalError, requirePositive, requirePositiveInteger } from '../errors.js';
import { Journal, type JournalOptions } from '../storage/journal.js';
import type { JournalRecord, Rejection } from '../engine/record-codec.js';
import { writeWarningToStderr, type WarningHandler } from '../engine/warnings.js';
import { autoCompactorFor, type AutoCompactPolicy, type AutoCompactor } from '../compact/auto-compact.js';
import { KeyedView } from '../view/keyed-view.js';
import { partitionEntries } from './kv-fold.js';
import { KvEventTypes, MAX_KEY_LENGTH, applyKvEvent, decodeKvEvent, decodeKvPayload, isValidKey, kvPayload, reviveKvEntry, type JsonValue, type KvEntry, type KvEvent } from './kv-records.js';
import { passedToJournal, type StoreJournalOptions } from '../storage/store-options.js';

export interface KeyValueStoreOptions extends StoreJournalOptions {
  /** Keys neither set nor read for this long (by this process's clock) read as absent (default 24 h); compaction, given the same value, journals their removal. */
  ttlMs?: number;
  /** entries() lists at most this many, most recently used first (default 1000); compaction evicts the rest. */
  maxEntries?: number;
  /** Last-use refreshes by get() are written at most this late (default 1 s), or with the next commit, or at exit. */
  touchFlushMs?: number;
  /** Compact in a child process (`compact --kind kv`) when the journal outgrows its snapshot (default: at 256 KiB and 100 % growth, DEFAULT_KV_AUTO_COMPACT); false leaves it to cron. */
  autoCompact?: Partial<AutoCompactPolicy> | false;
}

export const DEFAULT_KV_TTL_MS = 24 * 60 * 60 * 1000;
export const DEFAULT_KV_MAX_ENTRIES = 1000;
/**
 * Far below the sessions' 16 MiB: a kv store is opened by every short-lived
 * process, each replaying the whole journal (about 20 µs a record in a cold
 * process), while its snapshot stays small (maxEntries keys). At 256 KiB, a
 * thousand or so small sets, a fork replays a few milliseconds at most, and
 * one background compaction per thousand writes costs far less.
 */
export const DEFAULT_KV_AUTO_COMPACT: AutoCompactPolicy = { minBytes: 256 * 1024, growthPercent: 100 };


type KvView = KeyedView<KvEntry, KvEvent>;

/**
 * A durable Map of JSON values shared by processes, for short-lived ones
 * (a hook's forks) that would otherwise rewrite one JSON file each and lose
 * each other's entries. The same journal as SessionStore underneath: each
 * mutation applies in memory at once and is journaled by group commit, so
 * concurrent processes never lose each other's keys, and what a resolved
 * flush() covered survives SIGKILL.
 *
 * Time has one owner, as for sessions: readers only *hide* what their clock
 * finds expired (get/has answer as if absent, entries() leaves it out) and
 * entries() lists at most maxEntries; nothing is deleted for the others.
 * Compaction (its guarded clock, or `--now`) journals the removal with the
 * same rule, so what a reader hides is what compaction will drop.
 */
export class KeyValueStore {
  readonly ttlMs: number;
  readonly maxEntries: number;
  private readonly view: KvView;
  private readonly journal: Journal;
  private readonly autoCompactor: AutoCompactor | undefined;
  readonly readOnly: boolean;

  private constructor(prepared: Prepared, journal: Journal, options: KeyValueStoreOptions) {
    this.readOnly = options.readOnly ?? false;
    this.ttlMs = prepared.ttlMs;
    this.maxEntries = prepared.maxEntries;
    this.view = prepared.view;
    this.journal = journal;
    const compactArgs = ['--kind', 'kv', '--ttl', `${this.ttlMs}ms`, '--max-entries', String(this.maxEntries)];
    this.autoCompactor = this.readOnly ? undefined : autoCompactorFor(options.autoCompact, journal, compactArgs, options.onWarning ?? writeWarningToStderr, DEFAULT_KV_AUTO_COMPACT);
    prepared.hooks.onDurable = () => this.autoCompactor?.maybeStart();
  }

  /** Opens (creating if needed) and replays the store, letting the event loop run between replay steps. */
  static async open(options: KeyValueStoreOptions): Promise<KeyValueStore> {
    const prepared = prepare(options);
    return new KeyValueStore(prepared, await Journal.open(prepared.journalOptions), options);
  }

  /** The same, synchronously: what a short-lived process wants (a directory only: SYNC_UNSUPPORTED for Redis). */
  static openSync(options: KeyValueStoreOptions): KeyValueStore {
    const prepared = prepare(options);
    return new KeyValueStore(prepared, Journal.openSync(prepared.journalOptions), options);
  }

  /** The store directory (for a store on Redis: its server and prefix). */
  get dir(): string {
    return this.journal.dir;
  }

  /**
   * Applies what every process and host had acknowledged before the call.
   * Reads of a store directory do this by themselves (one fstat); a store on
   * Redis answers reads from this process's view, so await this first.
   * Rejects (REDIS_UNAVAILABLE, IO_ERROR) when the store cannot be read.
   */
  catchUp(): Promise<void> {
    return this.journal.follow();
  }

  /**
   * The value of `key`, or undefined when it is absent or expired by this
   * process's clock. Reading refreshes the key's last use (a deferred
   * `kv.touch`: it rides with the next commit, or goes after touchFlushMs,
   * or at exit), so a key in use is neither expired nor evicted. The value is
   * the stored one, deeply frozen: change it with set().
   */
  get(key: string): JsonValue | undefined {
    checkKey(key);
    this.journal.tryCatchUp();
    const entry = this.live(key);
    if (!entry) return undefined;
    const now = this.journal.now();
    if (now > entry.lastUsedAt && !this.view.extendQueuedTouch(key, now)) this.record({ kind: 'touch', key, time: now }, true);
    return entry.value;
  }

  /** Whether get(key) would find a value. A check is not a use: the last use does not move. */
  has(key: string): boolean {
    checkKey(key);
    this.journal.tryCatchUp();
    return this.live(key) !== undefined;
  }

  /**
   * Sets `key` to `value`, which is stored as JSON: what get() returns, here
   * and in every process, is what JSON.parse(JSON.stringify(value)) gives.
   * A value JSON cannot hold at all (undefined, a function, a symbol) throws
   * TypeError; one over maxRecordBytes throws RECORD_TOO_LARGE; nothing
   * changes then.
   */
  set(key: string, value: unknown): this {
    checkKey(key);
    if (value === undefined || typeof value === 'function' || typeof value === 'symbol') throw new TypeError(`the value of ${JSON.stringify(key)} is not a JSON value`);
    this.record({ kind: 'set', key, time: this.journal.now(), value: value as JsonValue });
    return this;
  }

  /** Removes `key`; true when get() would have found it. A key hidden as expired is removed too (it is still in the store). */
  delete(key: string): boolean {
    checkKey(key);
    this.journal.tryCatchUp();
    if (!this.view.values.has(key)) return false;
    const visible = this.live(key) !== undefined;
    this.record({ kind: 'delete', key, time: this.journal.now(), reason: 'deleted' });
    return visible;
  }

  /**
   * [key, value] pairs, most recently used first (ties by key), without the
   * keys expired by this process's clock and at most maxEntries: exactly
   * what a compaction at this instant keeps. Listing does not refresh.
   */
  entries(): IterableIterator<[string, JsonValue]> {
    this.journal.tryCatchUp();
    const { live } = partitionEntries(this.view.values.values(), this.journal.now(), this.ttlMs, this.maxEntries);
    return live.map((e): [string, JsonValue] => [e.key, e.value]).values();
  }

  /** Resolves when every mutation made before the call is durable. */
  flush(): Promise<void> {
    return this.journal.flush();
  }

  /** Writes and syncs everything queued, blocking. */
  flushSync(): void {
    this.journal.flushSync();
  }

  /** Flushes and releases the store; later mutations throw CLOSED. */
  close(): Promise<void> {
    return this.journal.close();
  }

  closeSync(): void {
    this.journal.closeSync();
  }

  /** The entry of `key` unless this process's clock finds it expired. */
  private live(key: string): KvEntry | undefined {
    const entry = this.view.values.get(key);
    return entry && this.journal.now() - entry.lastUsedAt <= this.ttlMs ? entry : undefined;
  }

  private record(event: KvEvent, deferred = false): void {
    if (this.readOnly) {
      if (event.kind === 'touch') return; // a reader leaves no trace, last use included
      throw new SessionJournalError(ErrorCodes.READ_ONLY, `store ${this.journal.dir} was opened readOnly; ${event.kind} needs a writer`, { details: { dir: this.journal.dir } });
    }
    // The view gets the event as every reader decodes it from the journal (a value with sorted keys, undefined members gone, frozen), so it equals a fresh replay.
    const type = KvEventTypes[event.kind];
    const { entry, decoded } = this.journal.appendDecoded(type, kvPayload(event), (payloadJson, time) => asReplayed(type, payloadJson, time), { time: event.time, deferred });
    this.view.applyLocal(decoded, entry);
  }
}

interface Prepared {
  ttlMs: number;
  maxEntries: number;
  view: KvView;
  journalOptions: JournalOptions;
  /** Set by the store once it exists: the journal is made before it. */
  hooks: { onDurable?: () => void };
}

/** Validated limits (before any file is touched), the view, and the journal options whose consumer feeds the view. */
function prepare(options: KeyValueStoreOptions): Prepared {
  const ttlMs = requirePositive('ttlMs', options.ttlMs ?? DEFAULT_KV_TTL_MS);
  const maxEntries = requirePositiveInteger('maxEntries', options.maxEntries ?? DEFAULT_KV_MAX_ENTRIES);
  // Entries are never changed in place (applyKvEvent makes new ones), so a shadow copy is the entry itself.
  const view: KvView = new KeyedView<KvEntry, KvEvent>({ keyOf: (e) => e.key, apply: applyKvEvent, clone: (e) => e });
  const hooks: Prepared['hooks'] = {};
  const journalOptions: JournalOptions = {
    ...passedToJournal(options),
    storeKind: 'kv',
    consumer: {
      reset: () => view.reset(),
      restore: (raw): Rejection | undefined => {
        const entry = reviveKvEntry(raw);
        if ('code' in entry) return entry;
        view.restore(entry.key, entry);
        return undefined;
      },
      apply: (record: JournalRecord): Rejection | undefined => {
        const event = decodeKvEvent(record);
        if ('code' in event) return event;
        view.applyCommitted(event);
        return undefined;
      },
      committed: (entries) => view.committed(entries),
    },
    deferredFlushMs: options.touchFlushMs ?? 1000,
    onDurable: () => hooks.onDurable?.(),
  };
  return { ttlMs, maxEntries, view, journalOptions, hooks };
}

function checkKey(key: unknown): asserts key is string {
  if (!isValidKey(key)) {
    throw new SessionJournalError(ErrorCodes.INVALID_KEY, `a key is a string of 1-${MAX_KEY_LENGTH} characters without control characters`, {
      details: { key: typeof key === 'string' ? key.slice(0, 100) : String(key).slice(0, 100) },
    });
  }
}

/** The event a replay reads from this payload. Keys are checked before, so what is left to refuse is a value whose JSON is nothing (a toJSON giving undefined). */
function asReplayed(type: string, payloadJson: string, time: number): KvEvent {
  const decoded = decodeKvPayload(type, time, JSON.parse(payloadJson));
  if ('code' in decoded) throw new TypeError(`${type}: ${decoded.message}: a replay would skip it, so it is not written`);
  return decoded;
}
