import type { JournalConsumer } from '../engine/journal-consumer.js';
import type { JournalRecord } from '../engine/record-codec.js';
import type { JournalWarning, WarningHandler } from '../engine/warnings.js';
import { SessionFold } from '../sessions/session-fold.js';

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
    ttlMs: number,
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
}
