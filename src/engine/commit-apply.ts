import { PART_EVENT, type JournalRecord, type Rejection } from './record-codec.js';
import { joinParts } from './record-parts.js';
import { WarningCodes, type JournalWarning } from './warnings.js';
import type { RecordPlace } from './commit-framing.js';

/**
 * What a reader does with a commit the framing rule applies
 * (commit-framing.ts), once: join the parts of spread records
 * (record-parts.ts), hand each record to the consumer, and report what it
 * rejects at every line the record came from. Never throws: a consumer that
 * throws is a bug, and must still not break a replay.
 *
 * The file reader (segment-chain.ts applyCommit/applyRecord) holds the same
 * steps beside its own (rotation markers, a writer's commit in doubt); it
 * is meant to call this.
 */

/** True when a commit holds a part of a spread record: only then are its records joined. */
export function hasParts(records: readonly JournalRecord[]): boolean {
  for (const r of records) if (r.type === PART_EVENT) return true;
  return false;
}

/** A consumer's verdict on a record, with a throw turned into a rejection. */
export function guardConsumer(apply: () => Rejection | undefined): Rejection | undefined {
  try {
    return apply();
  } catch (err) {
    return { code: WarningCodes.INVALID_PAYLOAD, message: `reducer failed: ${(err as Error).message}` };
  }
}

/**
 * Applies the readable records of one commit: `apply` gets each whole
 * record (joined when spread) with the indices of its first and last line;
 * its rejection, and parts that do not join, are warned at their places.
 */
export function applyCommitRecords<P extends RecordPlace>(
  records: readonly JournalRecord[],
  places: readonly P[],
  maxRecordBytes: number,
  apply: (record: JournalRecord, first: number, last: number) => Rejection | undefined,
  warn: (w: JournalWarning) => void,
): void {
  const one = (record: JournalRecord, first: number, last: number) => {
    const rejection = guardConsumer(() => apply(record, first, last));
    if (rejection) reportRejection(rejection, places, first, last, warn);
  };
  if (!hasParts(records)) {
    for (let i = 0; i < records.length; i++) one(records[i]!, i, i);
    return;
  }
  joinParts(records.length, (i) => records[i]!, maxRecordBytes, {
    whole: one,
    broken: (first, last, rejection) => {
      for (let i = first; i <= last; i++) warn({ ...rejection, ...places[i]! });
    },
  });
}

/** A rejected record, warned at its place; a spread one at each of its lines (so compaction can keep every one aside). */
export function reportRejection<P extends RecordPlace>(rejection: Rejection, places: readonly P[], first: number, last: number, warn: (w: JournalWarning) => void): void {
  if (first === last) {
    warn({ ...rejection, ...places[first]! });
    return;
  }
  for (let i = first; i <= last; i++) warn({ ...rejection, message: `${rejection.message} (line ${i - first + 1} of the ${last - first + 1} the record is spread over)`, ...places[i]! });
}
