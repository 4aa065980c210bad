/**
 * The clock of a child process's store in the multi-process tests. A parent
 * cannot share its FakeClock with a child, so it sends where the child's
 * clock starts (a documented fixture or test "now", never Date.now()); the
 * child's clock then advances with its own monotonic time, so time still
 * moves forward during a run as it would in production, but no calendar date
 * leaks in. Used by every child helper (child-store.ts, crash-writer.ts), and
 * by a parent whose own store shares the children's time line.
 */
import { performance } from 'node:perf_hooks';

/** What a parent sends: the epoch ms the child's clock reads when the child builds it. */
export interface ChildClock {
  startMs: number;
}

/** A store `clock` reading startMs now, and later startMs plus the monotonic time elapsed since this call. */
export function anchoredClock(startMs: number): () => number {
  if (!Number.isFinite(startMs)) throw new TypeError(`an anchored clock needs a finite startMs (got ${startMs})`);
  const origin = performance.now();
  return () => startMs + Math.floor(performance.now() - origin);
}

/** The store `clock` a child builds from its parent's `spec`. */
export const childClock = (spec: ChildClock): (() => number) => anchoredClock(spec.startMs);
