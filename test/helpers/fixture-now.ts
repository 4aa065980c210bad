/**
 * The documented "now" of every fixture family (fixtures/README.md, "Fixture
 * time"): the instant a test evaluates a committed fixture at, so that TTL,
 * LRU and "how old is it" never depend on the calendar the suite runs on.
 * Pass these to a store's `clock`, to `compact --now`, `stats --now`, a child's
 * `clock`, and so on; never the wall clock.
 */

const at = (iso: string): number => Date.parse(iso);

/** fixtures/journals/*: records from 2026-11-21T09:00:07Z to 09:01:24Z; three hours later. */
export const JOURNALS_NOW = at('2026-11-21T12:00:00.000Z');

/** fixtures/stores/*, by sub-family (each written at its own time; see fixtures/README.md). */
export const STORES_NOW = {
  /** audit-basic: records 2026-03-09T21:00Z to 2026-03-10T23:30Z; the end of that day. */
  audit: at('2026-03-11T00:00:00.000Z'),
  /** verify-*: written from 2026-01-01T12:00Z, last compacted 2026-01-03T17:02Z, last record 17:11Z. */
  verify: at('2026-01-03T18:00:00.000Z'),
  /** repair-*: records from 2026-11-21T09:00:07Z to 09:00:50Z. */
  repair: at('2026-11-21T12:00:00.000Z'),
  /** events-0.1.0: events stored 2026-11-20T09:00:00Z to 09:00:06Z; half an hour later (inside the 1 h TTL). */
  events: at('2026-11-20T09:30:00.000Z'),
  /** snapshot-fractional-seq: one session accessed 2026-11-01T00:00Z. */
  snapshotFractionalSeq: at('2026-11-01T12:00:00.000Z'),
} as const;

/** fixtures/imports/*: sessions from 2026-11-20T08:00Z to 2026-11-21T08:00Z. */
export const IMPORTS_NOW = at('2026-11-21T12:00:00.000Z');

/**
 * Stores the tests write themselves (no committed bytes) start here: far
 * enough from any plausible run date that a stray wall-clock read shows up.
 */
export const TEST_T0 = at('2026-01-01T12:00:00.000Z');
