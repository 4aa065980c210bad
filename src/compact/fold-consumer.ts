import type { JournalConsumer } from '../engine/journal-consumer.js';
import type { JournalRecord } from '../engine/record-codec.js';
import { WarningCodes } from '../engine/warnings.js';
import type { FoldState } from './compactor.js';

/**
 * Replays into the state until the rotation; after it, only notes which keys
 * are touched. A record of another namespace is rejected (so the replay
 * reports it at its line, and it is kept aside); records of each kind are
 * counted, to tell a store of the other kind from a store with a few foreign
 * records in it.
 */
export class FoldConsumer implements JournalConsumer {
  frozen = false;
  readonly touchedAfterRotation = new Set<string>();
  /** Records of other namespaces by namespace, and (under SNAPSHOT_ENTRIES) snapshot entries the state rejected. */
  readonly foreign = new Map<string, number>();
  /** Snapshot entries restored and records of the fold's own namespace read. */
  own = 0;
  /** Set when the last rejection was of a foreign record or entry: its warning is the next one (see takeForeignRejection). */
  private foreignRejection = false;
  constructor(private readonly state: FoldState) {}
  reset(): void {
    this.state.reset();
    this.touchedAfterRotation.clear();
    this.foreign.clear();
    this.own = 0;
  }
  restore(entry: unknown) {
    const rejection = this.state.restore(entry);
    if (!rejection) this.own++;
    else this.countForeign(SNAPSHOT_ENTRIES);
    return rejection;
  }
  /** True once for the warning of a foreign record or entry: the replay reports a rejection right after it. */
  takeForeignRejection(): boolean {
    const was = this.foreignRejection;
    this.foreignRejection = false;
    return was;
  }
  private countForeign(what: string): void {
    this.foreign.set(what, (this.foreign.get(what) ?? 0) + 1);
    this.foreignRejection = true;
  }
  apply(record: JournalRecord) {
    const namespace = record.type.slice(0, record.type.indexOf('.'));
    if (namespace !== this.state.recordNamespace && namespace !== 'journal') {
      if (this.frozen) {
        this.foreign.set(namespace, (this.foreign.get(namespace) ?? 0) + 1);
        return undefined;
      }
      this.countForeign(namespace);
      return { code: WarningCodes.UNKNOWN_EVENT_TYPE, message: `a ${record.type} record is not a ${this.state.recordNamespace}.* record: not folded (compaction keeps it aside)` };
    }
    if (namespace === this.state.recordNamespace) this.own++;
    if (!this.frozen) return this.state.apply(record);
    const key = this.state.keyOf(record);
    if (key !== undefined) this.touchedAfterRotation.add(key);
    return undefined;
  }
}

/** The key of FoldConsumer.foreign that counts snapshot entries the state rejected. */
export const SNAPSHOT_ENTRIES = 'snapshot';

