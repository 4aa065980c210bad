import { ErrorCodes, SessionJournalError } from '../errors.js';
import { ROTATE_EVENT, type JournalRecord } from '../engine/record-codec.js';
import { requireStoreDir } from '../storage/file/store-files.js';
import { WarningCodes, writeWarningToStderr, type JournalWarning, type WarningHandler } from '../engine/warnings.js';
import { applySessionEvent, decodeSessionEvent, reviveSession } from '../sessions/session-events.js';
import type { SessionData } from '../sessions/session-types.js';
import { readArchivedSnapshotSync, readSnapshotSync } from '../storage/file/snapshot-file.js';
import { listHistorySegments, listStoreFiles, type StoreFile } from '../storage/file/history-reader.js';
import { auditTrail } from '../audit/replay-source.js';
import type { StoreRef } from '../storage/store-options.js';
import { withStoreConnection } from '../storage/redis/history-reader.js';
import { stateAtRedis } from './state-at-redis.js';

/** A snapshot anywhere in the store (live directory or archive), read whole. */
export interface SnapshotBase {
  number: number;
  file: string;
  archived: boolean;
  /** Sequence number of the last record it folds (the rotation marker that closed segment number - 1). */
  seq: number;
  entries: { value: unknown; line: number }[];
}

/** How a point-in-time state was rebuilt. */
export interface StateBase {
  kind: 'history' | 'snapshot';
  /** The snapshot used when the history before it was pruned. */
  snapshot?: { file: string; number: number; seq: number; time?: number };
}

export interface PointInTimeState {
  at: number;
  /** The sessions at `at`, ordered by id. */
  sessions: SessionData[];
  base: StateBase;
  /** Records folded after the base. */
  records: number;
}

/** The history that would be needed for the requested time is gone. */
export class HistoryPrunedError extends SessionJournalError {
  constructor(
    message: string,
    /** The earliest instant from which a state can be rebuilt, when known. */
    readonly earliest: number | undefined,
  ) {
    super(ErrorCodes.HISTORY_PRUNED, message, { details: { earliest } });
    this.name = 'HistoryPrunedError';
  }
}

export interface StateOptions {
  maxLineBytes?: number;
  onWarning: (w: JournalWarning) => void;
  /** Said on stderr: how the state was rebuilt when the history was pruned. */
  onNote: (text: string) => void;
}


export interface SessionsAtOptions {
  /** The longest line read (default 1 MiB, as the store's). */
  maxLineBytes?: number;
  /** Unreadable lines and records the fold rejects, each with file and line (default: one line each on stderr). */
  onWarning?: WarningHandler;
  /** How the state was rebuilt when the history before `at` was pruned (default: nothing; `base` says it too). */
  onNote?: (text: string) => void;
}

/**
 * The sessions as they were at `at` (epoch ms), as `session-journal replay
 * --state --at` prints them: the records up to `at` folded in commit order,
 * from a snapshot where the history before it was pruned. Read-only and
 * lockless. Rejects with HistoryPrunedError (code HISTORY_PRUNED) when the
 * archive no longer reaches back to `at`.
 */
export async function sessionsAt(store: StoreRef, at: number, options: SessionsAtOptions = {}): Promise<PointInTimeState> {
  const state: StateOptions = { maxLineBytes: options.maxLineBytes, onWarning: options.onWarning ?? writeWarningToStderr, onNote: options.onNote ?? (() => undefined) };
  if (typeof store !== 'string') {
    // On Redis the history reaches back to the last compaction (state-at-redis.ts).
    return withStoreConnection(store.redis, state.onWarning, (conn) => stateAtRedis(conn, at, state));
  }
  requireStoreDir(store);
  return stateAt(store, at, state);
}

/** Snapshot files, live and archived (a number in both is read from the live store), ascending. */
export function listAllSnapshots(dir: string): StoreFile[] {
  return listStoreFiles(dir, 'snapshot');
}

/** Reads and checks one snapshot (gzipped when archived): header, entries, footer with the right count. */
export function readSnapshotBase(file: StoreFile): SnapshotBase | { reason: string } {
  const result = file.archived ? readArchivedSnapshotSync(file.file) : readSnapshotSync(file.file, () => undefined);
  if (!result.ok) return { reason: result.reason };
  return { ...file, seq: result.header.seq, entries: result.entries.map((e) => ({ value: e.value, line: e.place.line })) };
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * The sessions as they were at `at`: every record of the history whose `ts`
 * is at or before `at`, in commit order, folded with the live store's
 * reducer. When the oldest segments were pruned from the archive (or
 * compacted with --no-archive), the fold starts from the oldest snapshot
 * still present that precedes `at`, and says so through `onNote`.
 */
export async function stateAt(dir: string, at: number, options: StateOptions): Promise<PointInTimeState> {
  const segments = listHistorySegments(dir);
  const snapshots = listAllSnapshots(dir);
  const complete = segments.length === 0 ? snapshots.length === 0 : segments[0]!.number === 1;
  const sessions = new Map<string, SessionData>();
  if (complete) {
    const records = await fold(dir, sessions, 0, at, options);
    return { at, sessions: sortById(sessions), base: { kind: 'history' }, records };
  }

  const first = segments[0]?.number ?? Infinity;
  const candidates: SnapshotBase[] = [];
  for (const s of snapshots) {
    // Snapshot N folds segments < N; the history must hold every segment from N on.
    if (segments.length > 0 && s.number < first) continue;
    const base = readSnapshotBase(s);
    if ('reason' in base) {
      options.onWarning({ code: WarningCodes.SNAPSHOT_UNREADABLE, message: `${base.reason}; not used as a base`, file: s.file });
      continue;
    }
    candidates.push(base);
  }
  if (candidates.length === 0) {
    throw new HistoryPrunedError(`the history before segment ${first} was pruned and no snapshot left covers it`, undefined);
  }

  // When was each candidate taken? Its rotation marker's ts, if that segment is
  // still in the history; otherwise only "before the first record after it".
  const markerTime = new Map<number, number>();
  const followingTime = new Map<number, number>();
  const bySeq = [...candidates].sort((a, b) => a.seq - b.seq);
  let next = 0;
  for await (const item of auditTrail(dir, { maxLineBytes: options.maxLineBytes })) {
    if (item.kind !== 'record') continue;
    const r = item.record;
    while (next < bySeq.length && r.seq > bySeq[next]!.seq) followingTime.set(bySeq[next++]!.seq, r.time);
    if (candidates.some((c) => c.seq === r.seq)) markerTime.set(r.seq, r.time);
  }
  const takenBy = (c: SnapshotBase): { time: number | undefined; precedes: boolean } => {
    const marker = markerTime.get(c.seq);
    if (marker !== undefined) return { time: marker, precedes: marker <= at };
    const following = followingTime.get(c.seq);
    return { time: undefined, precedes: following === undefined || following <= at };
  };
  const chosen = candidates.find((c) => takenBy(c).precedes);
  if (!chosen) {
    const oldest = candidates[0]!;
    const earliest = markerTime.get(oldest.seq) ?? followingTime.get(oldest.seq);
    const when = earliest === undefined ? '' : markerTime.has(oldest.seq) ? `, taken at ${iso(earliest)}` : `, taken before ${iso(earliest)}`;
    throw new HistoryPrunedError(`the history before ${iso(at)} was pruned from the archive: the oldest base left is ${oldest.file} (seq ${oldest.seq}${when})`, earliest);
  }

  for (const entry of chosen.entries) {
    const made = reviveSession(entry.value);
    if ('code' in made) options.onWarning({ ...made, file: chosen.file, line: entry.line });
    else sessions.set(made.revived.id, made.revived);
  }
  const { time } = takenBy(chosen);
  options.onNote(
    `the history before segment ${first} was pruned; the state at ${iso(at)} is rebuilt from ${chosen.file} (seq ${chosen.seq}${time === undefined ? '' : `, ${iso(time)}`}) and the records after it`,
  );
  const records = await fold(dir, sessions, chosen.seq, at, options);
  return { at, sessions: sortById(sessions), base: { kind: 'snapshot', snapshot: { file: chosen.file, number: chosen.number, seq: chosen.seq, ...(time !== undefined && { time }) } }, records };
}

/** Applies every session record with seq > afterSeq and ts <= at; reports unreadable lines and rejected records. */
async function fold(dir: string, sessions: Map<string, SessionData>, afterSeq: number, at: number, options: StateOptions): Promise<number> {
  let applied = 0;
  for await (const item of auditTrail(dir, { maxLineBytes: options.maxLineBytes })) {
    if (item.kind === 'problem') {
      options.onWarning(item.warning);
      continue;
    }
    if (item.kind !== 'record') continue;
    if (applyRecordUpTo(sessions, item.record, item.place, afterSeq, at, options.onWarning)) applied++;
  }
  return applied;
}

/**
 * One record of the history applied to the state at `at`: only records after
 * the base (`afterSeq`), up to the instant, and session records (a rotation
 * marker is the engine's). A record the reducer rejects is reported at its
 * place. True when it was applied. Shared by every backend's history.
 */
export function applyRecordUpTo(sessions: Map<string, SessionData>, r: JournalRecord, place: object, afterSeq: number, at: number, onWarning: StateOptions['onWarning']): boolean {
  if (r.seq <= afterSeq || r.time > at || r.type === ROTATE_EVENT) return false;
  const event = decodeSessionEvent(r);
  if ('code' in event) {
    onWarning({ ...event, ...place });
    return false;
  }
  applySessionEvent(sessions, event);
  return true;
}

function sortById(sessions: Map<string, SessionData>): SessionData[] {
  return [...sessions.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
