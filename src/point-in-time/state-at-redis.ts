import { LineDecoder, type JournalRecord } from '../engine/record-codec.js';
import { DEFAULT_MAX_LINE_BYTES } from '../storage/journal.js';
import { WarningCodes } from '../engine/warnings.js';
import { reviveSession } from '../sessions/session-events.js';
import type { SessionData } from '../sessions/session-types.js';
import type { RedisConnection } from '../storage/redis/connection.js';
import { decodeStreamEntry, entriesOf } from '../storage/redis/stream-reader.js';
import { RedisAuditTrail } from '../audit/redis-trail.js';
import { HistoryPrunedError, applyRecordUpTo, type PointInTimeState, type StateOptions } from './state-at.js';

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * stateAt for a store on Redis (`replay --state --at` with --redis): the
 * snapshot as the base, then every session record of the stream after it
 * whose `ts` is at or before `at`. A compaction trims what it folds, so the
 * history reaches back to the last compaction only: for an instant before
 * the snapshot was taken, HistoryPrunedError (HISTORY_PRUNED), as for a
 * directory whose archive was pruned, with the earliest instant that can be
 * rebuilt when it is known.
 *
 * When the snapshot was taken is read as for a directory's: the time of the
 * record it folds up to, if the stream still holds it, else "before the first
 * record after it" (with nothing after it, any instant is taken to be after
 * it, as a directory's live snapshot with an empty segment is).
 */
export async function stateAtRedis(conn: RedisConnection, at: number, options: StateOptions): Promise<PointInTimeState> {
  const trail = await RedisAuditTrail.open(conn, { maxLineBytes: options.maxLineBytes });
  const sessions = new Map<string, SessionData>();
  const base = trail.base;
  const snap = conn.keys.snap;
  let applied = 0;
  let first: JournalRecord | undefined;
  const fold = async (afterSeq: number, check?: (first: JournalRecord) => void) => {
    for await (const item of trail.items()) {
      if (item.kind === 'problem') {
        options.onWarning(item.warning);
        continue;
      }
      const r = item.record;
      if (first === undefined) {
        first = r;
        check?.(r);
      }
      if (applyRecordUpTo(sessions, r, item.place, afterSeq, at, options.onWarning)) applied++;
    }
  };

  if (base.kind !== 'snapshot') {
    // No snapshot (or an unreadable manifest, warned by the trail): the stream must reach back to seq 1.
    await fold(0, (r) => {
      if (r.seq > 1) throw new HistoryPrunedError(`the stream ${conn.keys.log} starts at seq ${r.seq} and no snapshot folds the records before it`, undefined);
    });
    return { at, sessions: sortById(sessions), base: { kind: 'history' }, records: applied };
  }

  const { manifest, snapshot } = base;
  if (!snapshot.ok) {
    options.onWarning({ code: WarningCodes.SNAPSHOT_UNREADABLE, message: `${snapshot.reason}; not used as a base`, file: snap });
    throw new HistoryPrunedError(`the history up to seq ${manifest.seq} was compacted into ${snap}, which is unreadable: no base is left for any instant`, undefined);
  }
  if (manifest.seq === 0) {
    // A snapshot of an empty store: the stream is the whole history.
    await fold(0);
    return { at, sessions: sortById(sessions), base: { kind: 'history' }, records: applied };
  }
  const markerTime = await recordTime(conn, manifest.seq, options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES);
  for (const entry of snapshot.entries) {
    const made = reviveSession(entry.value);
    if ('code' in made) options.onWarning({ ...made, file: entry.place.file, line: entry.place.line });
    else sessions.set(made.revived.id, made.revived);
  }
  await fold(manifest.seq);
  const followingTime = first?.time;
  const precedes = markerTime !== undefined ? markerTime <= at : followingTime === undefined || followingTime <= at;
  if (!precedes) {
    const earliest = markerTime ?? followingTime;
    const when = earliest === undefined ? '' : markerTime !== undefined ? `, taken at ${iso(earliest)}` : `, taken before ${iso(earliest)}`;
    throw new HistoryPrunedError(`the history before ${iso(at)} was compacted away: the oldest base left is ${snap} (generation ${manifest.gen}, seq ${manifest.seq}${when}); on Redis the history reaches back to the last compaction`, earliest);
  }
  options.onNote(
    `the history up to seq ${manifest.seq} was compacted; the state at ${iso(at)} is rebuilt from ${snap} (generation ${manifest.gen}, seq ${manifest.seq}${markerTime === undefined ? '' : `, ${iso(markerTime)}`}) and the records after it`,
  );
  return {
    at,
    sessions: sortById(sessions),
    base: { kind: 'snapshot', snapshot: { file: snap, number: manifest.gen, seq: manifest.seq, ...(markerTime !== undefined && { time: markerTime }) } },
    records: applied,
  };
}

/** The ts of the record with `seq`, when the stream still holds it (a compaction installs before it trims). */
async function recordTime(conn: RedisConnection, seq: number, maxLineBytes: number): Promise<number | undefined> {
  const [entry] = entriesOf(await conn.command(['XRANGE', conn.keys.log, `${seq}-0`, `${seq}-0`]));
  if (!entry) return undefined;
  const decoded = decodeStreamEntry(entry, new LineDecoder(), maxLineBytes, conn.keys.log);
  return decoded.kind === 'record' ? decoded.record.time : undefined;
}

function sortById(sessions: Map<string, SessionData>): SessionData[] {
  return [...sessions.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
