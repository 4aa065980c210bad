import { ErrorCodes, SessionJournalError } from '../errors.js';
import { WarningCodes, type WarningHandler } from '../engine/warnings.js';

/**
 * How far the compactor's clock may run ahead of the file system's, and lag
 * behind the store's newest activity, before the guard acts (default 1 h: far
 * above NTP-kept drift and coarse mtimes, small beside a 24 h TTL).
 */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 60 * 60 * 1000;

/**
 * Refuses, before anything changes, a compaction whose clock is ahead of the
 * file system's by more than `maxSkewMs`: its TTL and archive ages would
 * delete what other processes still use (CLOCK_SKEW, `compact` exit 5).
 */
export function refuseFastClock(dir: string, now: number, fsNow: number, maxSkewMs: number, reference = `the file system holding ${dir}`): void {
  if (now - fsNow <= maxSkewMs) return;
  const aheadMs = Math.round(now - fsNow);
  throw new SessionJournalError(
    ErrorCodes.CLOCK_SKEW,
    `this compaction's clock (${iso(now)}) is ${aheadMs} ms ahead of ${reference} (${iso(fsNow)}), more than the ${maxSkewMs} ms allowed; nothing was changed`,
    { details: { dir, now, fileSystemNow: fsNow, aheadMs, maxSkewMs } },
  );
}

/**
 * The time TTL counts idleness to: the compactor's clock, but never later
 * than the store's own newest activity. A compactor running ahead therefore
 * cannot expire what the store shows as recently used; the price is that a
 * store idle since its last activity keeps the sessions of its last TTL
 * window until something is written again (readers hide them meanwhile).
 * A clock behind that activity by more than `maxSkewMs` (a slow compactor,
 * or a writer running ahead) only expires less, and is reported.
 */
export function retentionReference(dir: string, now: number, storeNewest: number | undefined, maxSkewMs: number, onWarning: WarningHandler): number {
  if (storeNewest === undefined) return now;
  if (storeNewest - now > maxSkewMs) {
    onWarning({
      code: WarningCodes.CLOCK_SKEW,
      message: `the newest activity in the store (${iso(storeNewest)}) is ${Math.round(storeNewest - now)} ms after this compaction's clock (${iso(now)}): a clock is wrong here (this one, or a writer's); TTL counts from this clock, so only sessions idle by it expire`,
      file: dir,
    });
  }
  return Math.min(now, storeNewest);
}

function iso(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}
