import type { QueuedEntry } from '../engine/commit-queue.js';
import { LazyValues } from './lazy-values.js';

/** What a keyed view needs of a store kind's reducer: every event concerns exactly one key. */
export interface KeyedReducer<V, E extends { kind: string; time: number }> {
  keyOf(event: E): string;
  /** Applies one event to a state (creates, changes or removes the value of its key). */
  apply(state: Map<string, V>, event: E): void;
  /** A copy that later applies to the original do not change (for ClonedShadows). */
  clone(value: V): V;
  /**
   * Puts a rebased value in place of the live one; returns what the live map
   * holds afterwards. Default: the rebased value replaces it. (SessionView
   * keeps the object callers may hold and gives it the rebased fields.)
   */
  replace?(live: V, rebased: V): V;
}

interface LocalEvent<E> {
  event: E;
  entry: QueuedEntry;
}

/**
 * The committed state of the keys that have local events queued (the
 * view's "shadows"): taken when a key's first local event is queued, given
 * the committed records of that key, and copied for a rebase. A store kind
 * whose values are large keeps them its own way (sessions share their turns:
 * CommittedSessions); the default clones.
 */
export interface Shadows<V, E> {
  /** The committed state of `key` is `live` as it is now (no local event queued yet). */
  capture(key: string, live: V): void;
  /** The committed state of `key` is `value`, which the caller hands over. */
  set(key: string, value: V): void;
  drop(key: string): void;
  clear(): void;
  /** A committed record (ours or another process's) for a key with a shadow. */
  apply(event: E): void;
  /** A copy of the committed state for a rebase to apply local events to (undefined: no such key). */
  copy(key: string): V | undefined;
}

/** Shadows as clones (values small enough to copy once per commit). */
export class ClonedShadows<V, E extends { kind: string; time: number }> implements Shadows<V, E> {
  private readonly values = new Map<string, V>();

  constructor(private readonly reducer: KeyedReducer<V, E>) {}

  capture(key: string, live: V): void {
    this.values.set(key, this.reducer.clone(live));
  }

  set(key: string, value: V): void {
    this.values.set(key, value);
  }

  drop(key: string): void {
    this.values.delete(key);
  }

  clear(): void {
    this.values.clear();
  }

  apply(event: E): void {
    this.reducer.apply(this.values, event);
  }

  copy(key: string): V | undefined {
    const value = this.values.get(key);
    return value === undefined ? undefined : this.reducer.clone(value);
  }
}

/**
 * What one process sees of a keyed store: the values committed to the
 * journal, with this process's not-yet-committed mutations applied on top.
 * Shared by the store kinds whose records each touch one key (SessionStore,
 * KeyValueStore).
 *
 * A local mutation applies at once. Another process's record for a key with
 * local mutations still queued is committed before them (ours go after it in
 * the file), so the key is rebased: its committed copy (the shadow) takes the
 * record, and the queued local events are applied again on top. The result
 * equals a fresh replay of the file, which is what convergence needs.
 */
export class KeyedView<V, E extends { kind: string; time: number }> {
  /** The values callers see (some made only when first read: restoreLazily). */
  readonly values = new LazyValues<V>();
  /** Queued local events per key, in order. */
  private readonly local = new Map<string, LocalEvent<E>[]>();
  private readonly byTicket = new Map<number, LocalEvent<E>>();

  constructor(
    private readonly reducer: KeyedReducer<V, E>,
    /** Committed state of keys with queued local events (absent: no such key). */
    private readonly shadows: Shadows<V, E> = new ClonedShadows(reducer),
  ) {}

  /**
   * Replay starts over (the journal reloads from a new base). Committed state
   * is dropped; queued local mutations are kept and re-applied, since they
   * are still on their way to the journal.
   */
  reset(): void {
    this.values.clear();
    this.shadows.clear();
    for (const key of this.local.keys()) this.rebase(key);
  }

  /** A snapshot entry at open (or a reload). */
  restore(key: string, value: V): void {
    if (!this.local.has(key)) {
      this.values.set(key, value);
      return;
    }
    this.shadows.set(key, value);
    this.rebase(key);
  }

  /**
   * A snapshot entry whose value is made when first read: `make` parses and
   * checks it, and reports (then returns undefined) when it is bad. At open
   * no local event is queued; after a reload with some queued, the value is
   * needed for the rebase at once.
   */
  restoreLazily(key: string, make: () => V | undefined): void {
    if (!this.local.has(key)) {
      this.values.setPending(key, make);
      return;
    }
    const value = make();
    if (value !== undefined) this.restore(key, value);
  }

  /**
   * True when a committed event that only creates its key (a value brought
   * in whole) may be kept by restoreLazily, as a snapshot entry is: the key
   * holds nothing, made or pending, and has no local event queued. A queued
   * local delete leaves the key empty while its committed state (the
   * shadow) holds a value, which the event must not replace. Otherwise the
   * event is applied at once, which makes a pending value first, so "only
   * when absent" still decides.
   */
  isVacant(key: string): boolean {
    return !this.local.has(key) && !this.values.holds(key);
  }

  applyLocal(event: E, entry: QueuedEntry): void {
    const key = this.reducer.keyOf(event);
    let queued = this.local.get(key);
    if (!queued) {
      queued = [];
      this.local.set(key, queued);
      const current = this.values.get(key);
      if (current !== undefined) this.shadows.capture(key, current);
    }
    const local = { event, entry };
    queued.push(local);
    this.byTicket.set(entry.ticket, local);
    this.reducer.apply(this.values, event);
  }

  /** Moves a still-queued trailing touch (an event of kind `touch`) forward in time instead of queuing another. */
  extendQueuedTouch(key: string, time: number): boolean {
    const queued = this.local.get(key);
    const last = queued?.[queued.length - 1];
    if (!last || last.event.kind !== 'touch' || last.entry.seq !== 0) return false;
    last.event.time = time;
    last.entry.time = time;
    this.reducer.apply(this.values, last.event);
    return true;
  }

  /** A record from the journal written by someone else (or replayed at open). */
  applyCommitted(event: E): void {
    const key = this.reducer.keyOf(event);
    if (!this.local.has(key)) {
      this.reducer.apply(this.values, event);
      return;
    }
    this.shadows.apply(event);
    this.rebase(key);
  }

  /** Our own entries reached the journal, after every record before them was applied. */
  committed(entries: readonly QueuedEntry[]): void {
    for (const entry of entries) {
      const taken = this.takeLocal(entry);
      if (!taken) continue;
      const { key, local, queued } = taken;
      if (queued.length === 0) {
        this.local.delete(key);
        this.shadows.drop(key);
      } else {
        this.shadows.apply(local.event);
      }
    }
  }

  /**
   * Local events whose entries left the queue unwritten (a decision made
   * again on a view caught up: appendDecided's `repeatable`) leave the view
   * too: each key they touched is what its commits and its remaining local
   * events make it.
   */
  withdraw(entries: readonly QueuedEntry[]): void {
    const keys = new Set<string>();
    for (const entry of entries) {
      const taken = this.takeLocal(entry);
      if (taken) keys.add(taken.key);
    }
    for (const key of keys) {
      this.rebase(key);
      if (this.local.get(key)!.length > 0) continue;
      this.local.delete(key);
      this.shadows.drop(key);
    }
  }

  /** Takes the local event of `entry` off its key's queue (in order, except after a doubt whose commit landed only in part: journal.ts, settleDoubt). */
  private takeLocal(entry: QueuedEntry): { key: string; local: LocalEvent<E>; queued: LocalEvent<E>[] } | undefined {
    const local = this.byTicket.get(entry.ticket);
    if (!local) return undefined;
    this.byTicket.delete(entry.ticket);
    const key = this.reducer.keyOf(local.event);
    const queued = this.local.get(key)!;
    queued.splice(queued.indexOf(local), 1);
    return { key, local, queued };
  }

  private rebase(key: string): void {
    const scratch = new Map<string, V>();
    const committed = this.shadows.copy(key);
    if (committed !== undefined) scratch.set(key, committed);
    for (const { event } of this.local.get(key)!) this.reducer.apply(scratch, event);
    const result = scratch.get(key);
    const live = this.values.get(key);
    if (result === undefined) this.values.delete(key);
    else if (live === undefined || !this.reducer.replace) this.values.set(key, result);
    else this.values.set(key, this.reducer.replace(live, result));
  }
}
