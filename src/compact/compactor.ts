import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { ErrorCodes, SessionJournalError } from '../errors.js';
import { Journal, type JournalConsumer } from '../storage/journal.js';
import type { JournalRecord } from '../engine/record-codec.js';
import { archiveDir, fileSizeOrZero, listStore, LOCK_NAME, requireStoreDir, segmentName, snapshotName, storePath } from '../storage/file/store-files.js';
import { DEFAULT_LOCK_STALE_MS, StoreLock } from '../storage/file/store-lock.js';
import { WarningCodes, writeWarningToStderr, type JournalWarning, type WarningHandler } from '../engine/warnings.js';
import { writeSnapshot } from '../storage/file/snapshot-writer.js';
import { DEFAULT_ARCHIVE_POLICY, archiveFile, pruneArchive, type ArchivePolicy } from '../storage/file/archive.js';
import { PrefixArchiver, segmentSizes } from '../storage/file/prefix-archiver.js';
import { COMPACTION_LOCK_NAME, CompactionLock } from '../storage/file/compaction-lock.js';
import { removeAbandonedTempFiles } from '../storage/file/leftovers.js';
import { UnfoldedLines, looksLikeRecord, type KeptFile } from '../storage/file/kept-aside.js';
import { FoldConsumer, SNAPSHOT_ENTRIES } from './fold-consumer.js';
import type { RedisLocation } from '../storage/redis/redis-location.js';
import { compactRedisStore } from './redis-compactor.js';
import { DEFAULT_MAX_CLOCK_SKEW_MS, refuseFastClock, retentionReference } from './clock-guard.js';
import { fileSystemNow } from '../storage/file/file-system-clock.js';

/** A record that retention wants journaled (it removes one key). */
export interface RetentionDecision {
  key: string;
  reason: string;
  type: string;
  payload: unknown;
}

/**
 * What a reducer gives the compactor: a consumer to replay into, plus the
 * three things compaction needs from the state it built.
 */
export interface FoldState extends JournalConsumer {
  /** The namespace of the record types it folds (`session` for `session.*`). */
  readonly recordNamespace: string;
  /** The state as snapshot entries, in a deterministic order. */
  entries(): Iterable<unknown>;
  /** Which keys retention removes at time `now`, each with the record that journals it. */
  retention(now: number): RetentionDecision[];
  /** The newest activity time the state holds (epoch ms), undefined when empty: bounds retention's clock. */
  newestTime(): number | undefined;
  /** The key a record concerns; a key touched after the rotation is spared. */
  keyOf(record: JournalRecord): string | undefined;
  /** Removes a key from the folded state. */
  drop(key: string): void;
  /** Number of keys (sessions) in the state. */
  readonly size: number;
}

export type CompactionStep = 'replayed' | 'rotated' | 'retained' | 'snapshot-written' | 'archived';

export interface CompactOptions {
  /** The store directory; exactly one of `dir` and `redis`. */
  dir?: string;
  /** A store on Redis instead (docs/FORMAT.md, "Compaction on Redis"). */
  redis?: RedisLocation;
  /** Wait this long for another compaction, and for the journal lock (default 30 s). */
  lockTimeoutMs?: number;
  /**
   * Redis only: the compaction lock's time to live (default 30 s), renewed
   * every third of it while the compaction runs. A compactor that dies, or
   * stops for longer than this, loses the lock to the next one, and the
   * fence then refuses whatever it still tries to write (LOCK_COMPROMISED).
   * A directory's lock goes stale by its own rule (docs/OPERATIONS.md).
   */
  lockTtlMs?: number;
  /** Clock for retention (default Date.now); guarded, see docs/OPERATIONS.md "Clocks". */
  now?: () => number;
  /**
   * Refuse (CLOCK_SKEW) when `now` is ahead of the file system's clock by
   * more than this, and warn when it lags the store's newest activity by
   * more (default 1 h).
   */
  maxClockSkewMs?: number;
  onWarning?: WarningHandler;
  archive?: Partial<ArchivePolicy>;
  /** Called after each protocol step (progress, tests that stop at a step). */
  onStep?: (step: CompactionStep) => void | Promise<void>;
  /** Progress of the fold's replay: bytes of segments read, out of total. */
  onReplayProgress?: (done: number, total: number) => void;
  /** Read lines this long (default 1 MiB): the writers' maxLineBytes. A longer line that looks like a record stops the compaction (LINE_TOO_LONG). */
  maxLineBytes?: number;
  /** Join records this large (default 64 MiB): the writers' maxRecordBytes. A larger record stops the compaction (RECORD_TOO_LARGE). */
  maxRecordBytes?: number;
  /**
   * Stops the compaction: while it waits for a lock, between replay steps
   * (64 KiB), between protocol steps and between archived files. It then
   * rejects with `signal.reason` (an AbortError unless given another),
   * having removed its temporary files and released its locks. Stopped
   * before the rotation, it changed nothing; after it, the store is as a
   * crash there leaves it (FORMAT.md: every acknowledged mutation is in it,
   * and the next compaction does the rest).
   */
  signal?: AbortSignal;
}

export interface CompactResult {
  status: 'compacted' | 'nothing-to-do';
  bytesBefore: number;
  bytesAfter: number;
  /** Keys (sessions) in the new snapshot. */
  kept: number;
  /** Keys removed by retention, by reason (expired, evicted). */
  removed: Record<string, number>;
  segmentsArchived: number;
  archiveFilesPruned: number;
  /**
   * Lines of the folded segments the fold could not take (garbage, records of
   * another namespace or version, records the reducer rejects), copied to the
   * quarantine before their segment was archived: how many, and where.
   */
  keptAside: { lines: number; files: Array<Pick<KeptFile, 'file' | 'quarantine' | 'index'>> };
  snapshot?: string;
  durationMs: number;
}

/**
 * How many warnings about foreign lines are held back while the replay has
 * met nothing of its own kind yet (a store of the other kind is refused with
 * one error, not a warning per record); past this many, the rest are
 * counted and summed up in one warning.
 */
const MAX_HELD_WARNINGS = 1000;

/**
 * Compacts a store while writers keep appending (docs/FORMAT.md, "Compaction
 * protocol"): replay into the fold state, rotate (freezing the fold at the
 * marker), journal retention, publish the snapshot by rename, archive what
 * it folded.
 */
export async function compactStore(options: CompactOptions, state: FoldState): Promise<CompactResult> {
  if (options.redis) {
    if (options.dir !== undefined) throw new TypeError('give a compaction either dir or redis, not both');
    return compactRedisStore({ ...options, redis: options.redis }, state);
  }
  if (typeof options.dir !== 'string') throw new TypeError('a compaction needs dir (a store directory) or redis ({ url, prefix })');
  return compactDirectory({ ...options, dir: options.dir }, state);
}

async function compactDirectory(options: CompactOptions & { dir: string }, state: FoldState): Promise<CompactResult> {
  const started = Date.now();
  const now = options.now ?? Date.now;
  const timeoutMs = options.lockTimeoutMs ?? 30_000;
  const policy = { ...DEFAULT_ARCHIVE_POLICY, ...options.archive };
  const stopIfAborted = () => options.signal?.throwIfAborted();
  /**
   * Where a stop request ends the compaction. A signal reaches JavaScript in the event loop's poll
   * phase, and the work before may have run without one (a small store replays in one go): two
   * turns of the loop have a poll phase between them, so a stop requested meanwhile is seen here.
   */
  const checkpoint = async () => {
    if (!options.signal) return;
    for (let turn = 0; turn < 2; turn++) await nextTurn();
    stopIfAborted();
  };
  /** After each step's work: onStep hears of it, then a stop request ends the compaction (none after the last). */
  const step = async (name: CompactionStep) => {
    lock.check(name);
    await options.onStep?.(name);
    if (name !== 'archived') await checkpoint();
  };
  requireStoreDir(options.dir);
  const bytesBefore = storeBytes(options.dir);
  const lock = new CompactionLock(options.dir, path.join(options.dir, COMPACTION_LOCK_NAME));
  await lock.acquire(timeoutMs, options.signal);
  const maxSkewMs = options.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
  /** Retention's clock: `now`, capped by the store's newest activity (clock-guard.ts). */
  let skewReported = false; // retention is decided twice (before and after the rotation): one warning
  const reportSkewOnce = (w: JournalWarning) => {
    if (!skewReported) (options.onWarning ?? writeWarningToStderr)(w);
    skewReported = true;
  };
  const retentionNow = () => retentionReference(options.dir, now(), state.newestTime(), maxSkewMs, reportSkewOnce);
  /** Archive ages are file-system times: counted to the file system's clock, capped by `now`. */
  const pruneNow = () => Math.min(now(), fileSystemNow(options.dir));
  const fold = new FoldConsumer(state);
  let journal: Journal | undefined;
  let prefixes: PrefixArchiver | undefined;
  let failure: unknown;
  try {
    stopIfAborted();
    refuseFastClock(options.dir, now(), fileSystemNow(options.dir), maxSkewMs);
    removeAbandonedTempFiles(options.dir);
    removeAbandonedTempFiles(archiveDir(options.dir));
    // The archive's gzip overlaps the fold: what the segments hold now is compressed while they are replayed.
    if (policy.keep) {
      const journalLock = new StoreLock({ dir: options.dir, lockPath: storePath(options.dir, LOCK_NAME), timeoutMs, staleMs: DEFAULT_LOCK_STALE_MS, onCompromised: () => undefined });
      prefixes = new PrefixArchiver(options.dir, await journalLock.runLocked(() => segmentSizes(options.dir)));
    }
    // A record longer than this reader's limit is skipped by replay; folding would then drop it from the state for good.
    const tooLong: JournalWarning[] = [];
    const tooLarge: JournalWarning[] = [];
    const unreadableSnapshots: JournalWarning[] = [];
    const unfolded = new UnfoldedLines();
    const report = options.onWarning ?? writeWarningToStderr;
    // Foreign lines met before anything of the fold's own kind: reported once the store proves to be of this kind, never if it is of the other.
    const held: JournalWarning[] = [];
    let heldBeyond = 0;
    const reportHeld = () => {
      for (const w of held.splice(0)) report(w);
      if (heldBeyond > 0) report({ code: WarningCodes.UNKNOWN_EVENT_TYPE, message: `and ${heldBeyond} more line(s) of another kind before the first ${state.recordNamespace}.* record: not folded (compaction keeps them aside)`, file: options.dir });
      heldBeyond = 0;
    };
    const onWarning = (w: JournalWarning) => {
      // An over-long line that is no record (garbage) is only kept aside; one that begins like a record stops the compaction.
      if (w.code === WarningCodes.LINE_TOO_LONG && w.file !== undefined && w.offset !== undefined && looksLikeRecord(w.file, w.offset)) tooLong.push(w);
      // A record joined from parts but larger than this reader joins: the writers apply it, a fold would drop it.
      if (w.code === WarningCodes.RECORD_TOO_LARGE) tooLarge.push(w);
      unfolded.note(w);
      if (w.code === WarningCodes.SNAPSHOT_UNREADABLE) unreadableSnapshots.push(w);
      if (fold.takeForeignRejection() && fold.own === 0) {
        if (held.length < MAX_HELD_WARNINGS) held.push(w);
        else heldBeyond++;
        return;
      }
      reportHeld();
      report(w);
    };
    // The pace is also where a stop request ends the replay: it runs between its steps.
    const replayPace = (bytes: number) => {
      stopIfAborted();
      return prefixes?.paceTo(bytes);
    };
    journal = await Journal.open({ dir: options.dir, consumer: fold, create: false, onWarning, lockTimeoutMs: timeoutMs, flushOnExit: false, maxLineBytes: options.maxLineBytes, maxRecordBytes: options.maxRecordBytes, clock: now, onReplayProgress: options.onReplayProgress, replayPace });
    const refuseTooLong = (limit: number) => {
      if (tooLong.length > 0) {
        const first = tooLong[0]!;
        throw new SessionJournalError(ErrorCodes.LINE_TOO_LONG, `${tooLong.length} record(s) in ${options.dir} are longer than maxLineBytes (${limit}), first at ${first.file}:${first.line}; compacting would drop them, so nothing was folded (compact with the writers' maxLineBytes)`, {
          details: { dir: options.dir, records: tooLong.length, limit, file: first.file, line: first.line },
        });
      }
      if (tooLarge.length > 0) {
        const first = tooLarge[0]!;
        throw new SessionJournalError(ErrorCodes.RECORD_TOO_LARGE, `a record in ${options.dir} is larger than maxRecordBytes (${journal!.maxRecordBytes}), at ${first.file}:${first.line}; compacting would drop it, so nothing was folded (compact with the writers' maxRecordBytes)`, {
          details: { dir: options.dir, limit: journal!.maxRecordBytes, file: first.file, line: first.line },
        });
      }
    };
    refuseTooLong(journal.maxLineBytes);
    refuseIncompleteBase(options.dir, unreadableSnapshots);
    // Only foreign records and no state of its own: the store is of the other kind, and folding it would empty it.
    if (fold.foreign.size > 0 && fold.own === 0) {
      const found = [...fold.foreign].map(([ns, n]) => (ns === SNAPSHOT_ENTRIES ? `${n} snapshot entries it cannot restore` : `${n} ${ns}.* records`)).join(', ');
      throw new SessionJournalError(ErrorCodes.STORE_KIND_MISMATCH, `${options.dir} holds ${found} and no ${state.recordNamespace}.* record; this compaction folds ${state.recordNamespace}.* records, so nothing was changed`, {
        details: { dir: options.dir, expected: state.recordNamespace, found: Object.fromEntries(fold.foreign) },
      });
    }
    reportHeld();
    await step('replayed');
    const base = listStore(options.dir);
    const pending = state.retention(retentionNow());
    // An older snapshot or segment still in the store (a compaction stopped or killed before it archived them) is work left to do.
    if (journal.recordsSinceBase === 0 && pending.length === 0 && base.segments.length <= 1 && base.snapshots.length <= 1) {
      return { status: 'nothing-to-do', bytesBefore, bytesAfter: bytesBefore, kept: state.size, removed: {}, segmentsArchived: 0, keptAside: { lines: 0, files: [] }, archiveFilesPruned: pruneArchive(options.dir, policy, pruneNow()), durationMs: Date.now() - started };
    }

    const rotation = await journal.rotate();
    fold.frozen = true;
    refuseTooLong(journal.maxLineBytes); // records read while rotating are folded too
    await step('rotated');

    const removed: Record<string, number> = {};
    await journal.appendDecided(() => {
      const decisions = state.retention(retentionNow()).filter((d) => !fold.touchedAfterRotation.has(d.key));
      for (const d of decisions) {
        state.drop(d.key);
        removed[d.reason] = (removed[d.reason] ?? 0) + 1;
      }
      return decisions.map((d) => ({ type: d.type, payload: d.payload }));
    });
    // Before the switch: once the snapshot is published, the folded segments are never replayed again.
    const keptFiles = unfolded.keepAside(options.dir, rotation.next, journal.maxLineBytes, new Date(now()).toISOString());
    for (const k of keptFiles.filter((f) => f.written)) {
      report({ code: WarningCodes.KEPT_ASIDE, message: `${k.items.length} line(s) of ${k.file} that compaction cannot fold were copied to ${k.quarantine} (index ${k.index}); the segment is archived as it was`, file: path.join(options.dir, k.file) });
    }
    const keptAside = { lines: keptFiles.reduce((n, k) => n + k.items.length, 0), files: keptFiles.map(({ file, quarantine, index }) => ({ file, quarantine, index })) };

    await step('retained');

    // In chunks that let the event loop run: a large snapshot takes seconds, and a stop request must not wait for it.
    const snapshot = await writeSnapshot(options.dir, rotation.next, rotation.seq, rotation.hash, state.entries(), options.signal);
    await step('snapshot-written');

    const folded = listStore(options.dir);
    const names = [...folded.segments.filter((n) => n < rotation.next).map(segmentName), ...folded.snapshots.filter((n) => n < rotation.next).map(snapshotName)];
    for (const name of names) {
      await checkpoint();
      await archiveFile(options.dir, name, policy, await prefixes?.take(name), options.signal);
    }
    const archiveFilesPruned = pruneArchive(options.dir, policy, pruneNow());
    await step('archived');

    return {
      status: 'compacted',
      bytesBefore,
      bytesAfter: storeBytes(options.dir),
      kept: state.size,
      removed,
      segmentsArchived: names.filter((n) => n.startsWith('journal-')).length,
      keptAside,
      archiveFilesPruned,
      snapshot: path.basename(snapshot.path),
      durationMs: Date.now() - started,
    };
  } catch (err) {
    failure = err;
    throw err;
  } finally {
    // The lock is released whatever happens; a failing close is reported only if nothing failed before it.
    try {
      await prefixes?.dispose();
      await journal?.close();
    } catch (closeErr) {
      if (failure === undefined) failure = closeErr;
      else options.onWarning?.({ code: 'COMMIT_FAILED', message: `closing after a failed compaction: ${(closeErr as Error).message}`, file: options.dir });
    } finally {
      await lock.releaseQuietly();
    }
    if (failure !== undefined) throw failure;
  }
}

/**
 * The replay skipped an unreadable snapshot (a damaged file, a FIFO or a
 * directory in its place) and fell back to an older base. That is lossless
 * while the segments between that base and the skipped snapshot are still
 * live; once they are archived, the fold lacks them, and publishing it would
 * drop every session they hold. Then nothing is folded.
 */
function refuseIncompleteBase(dir: string, unreadable: readonly JournalWarning[]): void {
  if (unreadable.length === 0) return;
  const skipped = new Set(unreadable.map((w) => path.basename(w.file ?? '')));
  const { segments, snapshots } = listStore(dir);
  const base = Math.max(0, ...snapshots.filter((n) => !skipped.has(snapshotName(n))));
  const first = segments.find((n) => n >= base);
  if (first === undefined || first <= Math.max(base, 1)) return;
  const w = unreadable[0]!;
  throw new SessionJournalError(
    ErrorCodes.SNAPSHOT_UNREADABLE,
    `${w.file} cannot be read (see its SNAPSHOT_UNREADABLE warning) and segments ${Math.max(base, 1)} to ${first - 1} it folded are no longer in the store; compacting would drop the sessions it holds, so nothing was folded (restore the snapshot from a backup)`,
    { details: { dir, file: w.file, base, firstSegment: first } },
  );
}

/** Bytes of the live store files (segments and snapshots; not the archive). */
export function storeBytes(dir: string): number {
  const { segments, snapshots } = listStore(dir);
  return [...segments.map(segmentName), ...snapshots.map(snapshotName)].reduce((total, name) => total + fileSizeOrZero(path.join(dir, name)), 0);
}
