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
  private entries: QueuedEntry[] = [];
  private lastTicket = 0;
  private durableTicket = 0;
  private urgentCount = 0;
  private waiters: Waiter[] = [];

  push(entry: Omit<QueuedEntry, 'ticket' | 'seq'>): QueuedEntry {
    const queued: QueuedEntry = { type: entry.type, payloadJson: entry.payloadJson, payloadBytes: entry.payloadBytes, time: entry.time, deferred: entry.deferred, seq: 0, ticket: ++this.lastTicket };
    this.entries.push(queued);
    if (!entry.deferred) this.urgentCount++;
    return queued;
  }

  get size(): number {
    return this.entries.length;
  }

  /** Work that should start a commit now: an urgent entry, or someone waiting. */
  get wantsCommit(): boolean {
    return this.entries.length > 0 && (this.urgentCount > 0 || this.waiters.length > 0);
  }

  /** Removes the oldest entries, at least one, up to about `maxBytes`. */
  take(maxBytes: number): QueuedEntry[] {
    let bytes = 0;
    let n = 0;
    while (n < this.entries.length && (n === 0 || bytes + this.entries[n]!.payloadBytes <= maxBytes)) {
      bytes += this.entries[n]!.payloadBytes;
      n++;
    }
    const batch = this.entries.splice(0, n);
    for (const e of batch) if (!e.deferred) this.urgentCount--;
    return batch;
  }

  /** Puts a failed batch back in front, unchanged in order. */
  restore(batch: QueuedEntry[]): void {
    for (const e of batch) {
      e.seq = 0;
      if (!e.deferred) this.urgentCount++;
    }
    this.entries = batch.concat(this.entries);
  }

  /** A promise for the durability of everything appended so far. */
  waitForAll(): Promise<void> {
    const ticket = this.lastTicket;
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
