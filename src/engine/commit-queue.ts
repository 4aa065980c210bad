/** A mutation waiting to be written: serialized once, when appended. */
export interface QueuedEntry {
  readonly type: string;
  readonly payloadJson: string;
  /** Epoch ms of the mutation; may be moved forward while still queued (coalesced touches). */
  time: number;
  /** Assigned under the lock when written (a record spread over several lines: its last line's seq); 0 while queued. */
  seq: number;
  /** Position in this process's append order; flush() waits on these. */
  readonly ticket: number;
  /** Deferred entries ride along with the next commit instead of starting one. */
  readonly deferred: boolean;
  /** Bytes of the payload, for batch sizing. */
  readonly payloadBytes: number;
}

/** Taken slots are dropped once at least this many, and at least as many as the entries still waiting. */
const COMPACT_AT = 1024;

interface Waiter {
  ticket: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Order and acknowledgement bookkeeping for group commit: which entries wait,
 * which tickets are durable, and who is waiting for what. It does no I/O.
 */
export class CommitQueue {
  /**
   * The queue is `entries[head..]`. Taking moves `head` instead of shifting
   * the array, which cost O(queue) per commit on a long queue; the taken
   * slots are cleared at once and dropped when the queue empties or they
   * outnumber the waiting entries, so each entry is moved O(1) times.
   */
  private entries: Array<QueuedEntry | undefined> = [];
  private head = 0;
  private lastTicketValue = 0;
  private durableTicket = 0;
  private urgentCount = 0;
  private waiters: Waiter[] = [];

  push(entry: Omit<QueuedEntry, 'ticket' | 'seq'>): QueuedEntry {
    const queued: QueuedEntry = { type: entry.type, payloadJson: entry.payloadJson, payloadBytes: entry.payloadBytes, time: entry.time, deferred: entry.deferred, seq: 0, ticket: ++this.lastTicketValue };
    this.entries.push(queued);
    if (!entry.deferred) this.urgentCount++;
    return queued;
  }

  get size(): number {
    return this.entries.length - this.head;
  }

  /** The ticket of the last entry pushed (0 before any): entries pushed after a moment have greater ones. */
  get lastTicket(): number {
    return this.lastTicketValue;
  }

  /** Work that should start a commit now: an urgent entry, or someone waiting. */
  get wantsCommit(): boolean {
    return this.size > 0 && (this.urgentCount > 0 || this.waiters.length > 0);
  }

  /** Removes the oldest entries, at least one, up to about `maxBytes`. */
  take(maxBytes: number): QueuedEntry[] {
    const batch: QueuedEntry[] = [];
    let bytes = 0;
    while (this.head < this.entries.length) {
      const e = this.entries[this.head]!;
      if (batch.length > 0 && bytes + e.payloadBytes > maxBytes) break;
      bytes += e.payloadBytes;
      batch.push(e);
      if (!e.deferred) this.urgentCount--;
      this.entries[this.head++] = undefined;
    }
    if (this.head === this.entries.length) {
      this.entries = [];
      this.head = 0;
    } else if (this.head >= COMPACT_AT && this.head * 2 >= this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    return batch;
  }

  /** Puts a failed batch back in front, unchanged in order. */
  restore(batch: QueuedEntry[]): void {
    for (const e of batch) {
      e.seq = 0;
      if (!e.deferred) this.urgentCount++;
    }
    if (batch.length <= this.head) {
      // Back into the slots it was taken from (or others as free): O(batch).
      this.head -= batch.length;
      for (let i = 0; i < batch.length; i++) this.entries[this.head + i] = batch[i];
    } else {
      this.entries = (batch as Array<QueuedEntry | undefined>).concat(this.entries.slice(this.head));
      this.head = 0;
    }
  }

  /** A promise for the durability of everything appended so far. */
  waitForAll(): Promise<void> {
    const ticket = this.lastTicketValue;
    if (ticket <= this.durableTicket) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ ticket, resolve, reject }));
  }

  get hasWaiters(): boolean {
    return this.waiters.length > 0;
  }

  markDurable(ticket: number): void {
    this.durableTicket = Math.max(this.durableTicket, ticket);
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      if (w.ticket <= this.durableTicket) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }

  /** Entries up to `ticket` were written but could not be synced: their waiters get `err`, nobody waits on them again. */
  markFailed(ticket: number, err: unknown): void {
    this.durableTicket = Math.max(this.durableTicket, ticket);
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      if (w.ticket <= ticket) w.reject(err);
      else still.push(w);
    }
    this.waiters = still;
  }

  /** A commit failed: nobody waiting can be satisfied by it. */
  failWaiters(err: unknown): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(err);
  }
}
