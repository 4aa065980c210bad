import type { JournalConsumer } from '../engine/journal-consumer.js';
import type { JournalRecord } from '../engine/record-codec.js';
import type { JournalWarning, WarningHandler } from '../engine/warnings.js';
import { SessionFold } from '../sessions/session-fold.js';
import type { StoreStats } from './store-stats.js';

/**
 * What `stats` replays a session store into, on any backend: the sessions
 * (a fold that keeps every one, expired or not), each writer's records and
 * last activity, and the warnings met on the way. Starts over when the
 * replay does.
 */
export class StatsReplay {
  readonly fold: SessionFold;
  readonly writers = new Map<string, { records: number; last: number }>();
  warnings = 0;
  readonly consumer: JournalConsumer;

  constructor(
    private readonly ttlMs: number,
    private readonly report: WarningHandler | undefined,
  ) {
    const fold = (this.fold = new SessionFold(ttlMs, Number.MAX_SAFE_INTEGER));
    this.consumer = {
      reset: () => {
        fold.reset();
        this.writers.clear();
        this.warnings = 0;
      },
      restore: (entry) => fold.restore(entry),
      apply: (record: JournalRecord) => {
        const w = this.writers.get(record.writer) ?? { records: 0, last: -Infinity };
        w.records++;
        w.last = Math.max(w.last, record.time);
        this.writers.set(record.writer, w);
        return fold.apply(record);
      },
    };
  }

  readonly onWarning = (w: JournalWarning): void => {
    this.warnings++;
    this.report?.(w);
  };

  /** The figures the replay gives on any backend: the sessions live and expired at `now`, the writers (most recent first), the warnings. */
  summary(now: number): Pick<StoreStats, 'sessions' | 'writers' | 'warnings'> {
    let expired = 0;
    for (const s of this.fold.sessions.values()) if (now - s.lastAccessedAt.getTime() > this.ttlMs) expired++;
    return {
      sessions: { total: this.fold.size, live: this.fold.size - expired, expired },
      writers: [...this.writers]
        .sort((a, b) => b[1].last - a[1].last || a[0].localeCompare(b[0]))
        .map(([writer, w]) => ({ writer, records: w.records, lastSeen: new Date(w.last).toISOString() })),
      warnings: this.warnings,
    };
  }
}

/** The head and the records since the base, of a journal opened for stats. */
export function journalFigures(journal: { lastSeq: number; lastHash: string; recordsSinceBase: number }): Pick<StoreStats, 'head' | 'recordsSinceSnapshot'> {
  return { head: { seq: journal.lastSeq, h: journal.lastHash }, recordsSinceSnapshot: journal.recordsSinceBase };
}
