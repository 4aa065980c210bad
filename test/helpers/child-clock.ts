/**
 * The clock of the stores in the multi-process tests. A parent cannot share
 * its FakeClock with a child, so it sends a time line: the documented "now"
 * it starts at (a fixture or test now, never the wall clock) and the moment of
 * the system-wide monotonic clock it started. Every process reading it, the
 * parent included, reads the same time: startMs plus the monotonic time
 * since. So time still moves forward during a run as in production, processes
 * agree on it, and no calendar date leaks in. Used by every child helper
 * (child-store.ts, crash-writer.ts).
 */

/** What a parent sends: where the time line starts, in epoch ms and on the monotonic clock. */
export interface ChildClock {
  startMs: number;
  /** process.hrtime (CLOCK_MONOTONIC: one clock for every process of the machine) at startMs, in ms. */
  originMs: number;
}

const monotonicMs = (): number => Number(process.hrtime.bigint() / 1_000_000n);

/** A time line starting now (by the monotonic clock) at the documented instant `startMs`. */
export function timeline(startMs: number): ChildClock {
  if (!Number.isFinite(startMs)) throw new TypeError(`a time line needs a finite startMs (got ${startMs})`);
  return { startMs, originMs: monotonicMs() };
}

/** The store `clock` reading `spec`'s time line. */
export function clockOf(spec: ChildClock): () => number {
  return () => spec.startMs + (monotonicMs() - spec.originMs);
}
