import type { LinePlace } from './line-place.js';

/**
 * One entry of a snapshot as a store's consumer restores it (restoreEntry):
 * what every storage hands the store, whatever holds the snapshot, so a store
 * knows no backend's snapshot format.
 */
export interface SnapshotEntry {
  /**
   * The entry's line as written, while it is not parsed yet; '' once it is
   * (the value holds it then: a snapshot's state is not kept twice, as text
   * and as objects, by a reader that parses every entry, such as compaction).
   */
  readonly text: string;
  /** The entry parsed, at first use (undefined if its line is not JSON). */
  readonly value: unknown;
  readonly place: LinePlace;
}
