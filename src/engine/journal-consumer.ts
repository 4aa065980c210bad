import type { QueuedEntry } from './commit-queue.js';
import type { JournalRecord, Rejection } from './record-codec.js';
import type { SnapshotEntry } from './snapshot-entry.js';

/** See JournalConsumer.apply: the record's places are kept only by a consumer that asks. */
export type LaterRejection = () => (rejection: Rejection) => void;

/**
 * What the engine drives. A reducer turns records into state; the engine only
 * knows envelopes, order and durability. No method may throw on bad content:
 * return a Rejection and the engine reports it with file and line.
 */
export interface JournalConsumer {
  /** Drop all state: replay is starting again (the store changed under an open). */
  reset(): void;
  /** Restore one snapshot entry. */
  restore(entry: unknown): Rejection | undefined;
  /**
   * Optional, called instead of restore: the entry with its line, parsed
   * only when `entry.value` is read, for a consumer that makes its state
   * lazily (a rejection found later is the consumer's to report, with
   * `entry.place`).
   */
  restoreEntry?(entry: SnapshotEntry): Rejection | undefined;
  /**
   * Apply one record read from the files: another writer's, or any at open.
   * `later`, called during the call, gives a function that warns a
   * rejection found afterwards (a value the consumer makes at its first
   * read) at the record's lines, as a rejection returned here is warned.
   */
  apply(record: JournalRecord, later?: LaterRejection): Rejection | undefined;
  /** This journal's own entries were just written, right after every record before them was applied. */
  committed?(entries: readonly QueuedEntry[]): void;
}
