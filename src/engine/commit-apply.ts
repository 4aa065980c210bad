import { CHAIN_START, PART_EVENT, type CommitHeader, type JournalRecord, type Rejection } from './record-codec.js';
import { joinParts } from './record-parts.js';
import type { JournalConsumer, LaterRejection } from './journal-consumer.js';
import type { SnapshotEntry } from './snapshot-entry.js';
import { WarningCodes, type JournalWarning } from './warnings.js';
import type { RecordPlace } from './commit-framing.js';

/**
 * What a reader does with a commit the framing rule applies
 * (commit-framing.ts), once: join the parts of spread records
 * (record-parts.ts), hand each record to the consumer, and report what it
 * rejects at every line the record came from; how a writer recognises its
 * own commit left in doubt among those applied; and, likewise, how a
 * snapshot's entries are restored. Never throws: a
 * consumer that throws is a bug, and must still not break a replay. Both
 * backends' readers (storage/file/chain-reader.ts, storage/redis/
 * stream-reader.ts) apply commits through it; what only one has (rotation
 * markers of segments) is in the `apply` they pass.
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
    return reducerFailed(err);
  }
}

/** What a consumer that threw is reported as. */
export function reducerFailed(err: unknown): Rejection {
  return { code: WarningCodes.INVALID_PAYLOAD, message: `reducer failed: ${(err as Error).message}` };
}

/**
 * Restores a snapshot's entries into the consumer (restoreEntry when it has
 * one, so it may parse lazily), each rejection warned at its entry's place:
 * the same for a snapshot file and for Redis chunks.
 */
export function restoreEntries(consumer: Pick<JournalConsumer, 'restore' | 'restoreEntry'>, entries: readonly SnapshotEntry[], warn: (w: JournalWarning) => void): void {
  for (const entry of entries) {
    const rejection = guardConsumer(() => (consumer.restoreEntry ? consumer.restoreEntry(entry) : consumer.restore(entry.value)));
    if (rejection) warn({ ...rejection, ...entry.place });
  }
}

/**
 * The chain head once a commit is applied: the hash of its last readable
 * line, parts that do not join included (their bytes are in the chain), or
 * CHAIN_START when that line has none; `head` when no line was readable.
 */
export function chainHeadAfter(records: readonly JournalRecord[], head: string): string {
  const last = records[records.length - 1];
  return last ? (last.hash ?? CHAIN_START) : head;
}

/** What a writer knows of a commit it wrote but could not prove in place: enough to recognise it when read back. */
export interface CommitInDoubt {
  /** Its `c`. */
  tag: string;
  /** Seq of its first line. */
  firstSeq: number;
  /** The writer's `pid@host`. */
  writer: string;
}

/**
 * True when an applied commit is the writer's own left in doubt: same tag,
 * its first readable line at the first seq, and attributed to the writer
 * (docs/FORMAT.md, "Who wrote a line"). Applied commits begin at increasing
 * seqs, so no other commit readers apply has all three.
 */
export function isCommitInDoubt(doubt: CommitInDoubt | undefined, header: CommitHeader | undefined, first: JournalRecord | undefined): boolean {
  return doubt !== undefined && header !== undefined && doubt.tag === header.id && first?.seq === doubt.firstSeq && first.writer === doubt.writer;
}

/**
 * Applies the readable records of one commit: `apply` gets each whole
 * record (joined when spread) with the indices of its first and last line
 * and the consumer's `later` (JournalConsumer.apply); its rejection, and
 * parts that do not join, are warned at their places.
 *
 * `landed`, given for the writer's own commit in doubt (isCommitInDoubt),
 * gets each whole record instead of `apply`: the writer hands its entries to
 * the consumer when it acknowledges them (group-commit.ts `committed`), so
 * applying them here would apply them twice. Parts that do not join are
 * warned all the same: their entries did not land, and are written again.
 */
export function applyCommitRecords<P extends RecordPlace>(
  records: readonly JournalRecord[],
  places: readonly P[],
  maxRecordBytes: number,
  apply: (record: JournalRecord, later: LaterRejection) => Rejection | undefined,
  warn: (w: JournalWarning) => void,
  landed?: (record: JournalRecord) => void,
): void {
  // One `later` per commit, not per record: a consumer calls it during apply, so it reads the lines of the record being applied.
  let first = 0;
  let last = 0;
  const later: LaterRejection = () => {
    const kept = places.slice(first, last + 1); // `places` is only lent for this commit
    return (rejection: Rejection) => reportRejection(rejection, kept, 0, kept.length - 1, warn);
  };
  const one = landed
    ? (record: JournalRecord) => landed(record)
    : (record: JournalRecord, firstLine: number, lastLine: number) => {
        first = firstLine;
        last = lastLine;
        let rejection: Rejection | undefined;
        try {
          rejection = apply(record, later);
        } catch (err) {
          rejection = reducerFailed(err);
        }
        if (rejection) reportRejection(rejection, places, firstLine, lastLine, warn);
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
