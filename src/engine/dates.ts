/** Strict ISO-8601 instant: the form `Date.prototype.toISOString` writes, or with an offset. */
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Digits at [from, from + n) of `s` as a number, or -1 if any is not a digit. */
function digits(s: string, from: number, n: number): number {
  let value = 0;
  for (let i = from; i < from + n; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    value = value * 10 + d;
  }
  return value;
}

/**
 * The exact form this library writes (`toISOString`: 2026-11-22T10:00:00.000Z),
 * parsed without a regular expression or Date.parse: replay reads two of these
 * per turn record, and this is most of its cost otherwise.
 */
function parseWrittenForm(s: string): number | undefined {
  if (s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45 || s.charCodeAt(10) !== 84 || s.charCodeAt(13) !== 58 || s.charCodeAt(16) !== 58 || s.charCodeAt(19) !== 46 || s.charCodeAt(23) !== 90) {
    return undefined;
  }
  const year = digits(s, 0, 4);
  const month = digits(s, 5, 2);
  const day = digits(s, 8, 2);
  const hour = digits(s, 11, 2);
  const minute = digits(s, 14, 2);
  const second = digits(s, 17, 2);
  const ms = digits(s, 20, 3);
  if (year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59 || ms < 0) return undefined;
  const leap = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > DAYS_IN_MONTH[month - 1]! + (leap ? 1 : 0)) return undefined;
  if (year >= 100) return Date.UTC(year, month - 1, day, hour, minute, second, ms);
  // Date.UTC reads years 0-99 as 1900-1999 (and 1900 has no February 29 where year 0 has one).
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  return date.setUTCHours(hour, minute, second, ms);
}

/**
 * Parses an ISO-8601 instant to epoch milliseconds, or undefined when the text
 * is not one. Rejects calendar nonsense (2026-02-30) that `Date.parse` rolls over.
 */
export function parseIsoInstant(text: unknown): number | undefined {
  if (typeof text !== 'string') return undefined;
  if (text.length === 24) {
    const fast = parseWrittenForm(text);
    if (fast !== undefined) return fast;
  }
  if (!ISO_INSTANT.test(text)) return undefined;
  const ms = Date.parse(text);
  if (!Number.isFinite(ms)) return undefined;
  // Date.parse rolls impossible dates over (2026-02-30 becomes March 2): the
  // local date and time written must survive a round trip through the offset.
  const offset = /([+-])(\d{2}):(\d{2})$/.exec(text);
  const offsetMs = offset ? (offset[1] === '-' ? -1 : 1) * (Number(offset[2]) * 60 + Number(offset[3])) * 60_000 : 0;
  if (new Date(ms + offsetMs).toISOString().slice(0, 16) !== text.slice(0, 16)) return undefined;
  return ms;
}

/** The instants ISO_INSTANT can write: years 0000 to 9999 (toISOString writes others as `+010000-…`, which no reader accepts). */
const EARLIEST_MS = -62167219200000; // 0000-01-01T00:00:00.000Z
const LATEST_MS = 253402300799999; // 9999-12-31T23:59:59.999Z

/** An instant a store can hold (a record's time, a session's or turn's date): epoch ms within years 0000 to 9999. */
export function isStorableTime(ms: number): boolean {
  return ms >= EARLIEST_MS && ms <= LATEST_MS;
}

/**
 * A Date a store can hold: valid, and within years 0000 to 9999. Any
 * other would be acknowledged and then refused by every replay.
 */
export function isValidDate(value: unknown): value is Date {
  return value instanceof Date && isStorableTime(value.getTime());
}

/**
 * A format 2 envelope `ts`: epoch milliseconds as a JSON integer, in the
 * same range the ISO form of format 1 allows, or undefined. As strict as
 * parseIsoInstant: a fraction, a string or a number past year 9999 is not a time.
 */
export function parseEpochMs(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && isStorableTime(value) ? value : undefined;
}
