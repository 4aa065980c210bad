/** Strict ISO-8601 instant: the form `Date.prototype.toISOString` writes, or with an offset. */
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/;

/**
 * Parses an ISO-8601 instant to epoch milliseconds, or undefined when the text
 * is not one. Rejects calendar nonsense (2026-02-30) that `Date.parse` rolls over.
 */
export function parseIsoInstant(text: unknown): number | undefined {
  if (typeof text !== 'string' || !ISO_INSTANT.test(text)) return undefined;
  const ms = Date.parse(text);
  if (!Number.isFinite(ms)) return undefined;
  // Date.parse rolls impossible dates over (2026-02-30 becomes March 2): the
  // local date and time written must survive a round trip through the offset.
  const offset = /([+-])(\d{2}):(\d{2})$/.exec(text);
  const offsetMs = offset ? (offset[1] === '-' ? -1 : 1) * (Number(offset[2]) * 60 + Number(offset[3])) * 60_000 : 0;
  if (new Date(ms + offsetMs).toISOString().slice(0, 16) !== text.slice(0, 16)) return undefined;
  return ms;
}

export function isValidDate(value: unknown): value is Date {
  return value instanceof Date && Number.isFinite(value.getTime());
}
