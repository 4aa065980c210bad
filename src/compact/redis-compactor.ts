import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCodes, SessionJournalError, requirePositiveInteger } from '../errors.js';
import { WarningCodes, writeWarningToStderr, type JournalWarning } from '../engine/warnings.js';
import { Journal } from '../storage/journal.js';
import { connectRedis, type RedisConnection } from '../storage/redis/connection.js';
import type { RedisLocation } from '../storage/redis/redis-location.js';
import { StoreScripts } from '../storage/redis/scripts.js';
import { deleteSnapshotChunks, readManifest, writeSnapshotChunks } from '../storage/redis/snapshot-keys.js';
import { DEFAULT_MAX_CLOCK_SKEW_MS, refuseFastClock, retentionReference } from './clock-guard.js';
import type { CompactOptions, CompactResult, FoldState, RetentionDecision } from './compactor.js';
import { FoldConsumer, SNAPSHOT_ENTRIES } from './fold-consumer.js';

/** The lock lives this long unrenewed (default of lockTtlMs): a compactor that dies leaves it for at most this. */
const DEFAULT_LOCK_TTL_MS = 30_000;
const LOCK_POLL_MS = 200;
/** Warnings of lines the fold did not take: kept in `{P}:kept` before the trim drops them. */
const UNFOLDED = new Set<string>([WarningCodes.UNPARSABLE_LINE, WarningCodes.UNKNOWN_EVENT_TYPE, WarningCodes.INVALID_PAYLOAD, WarningCodes.INVALID_ENVELOPE, WarningCodes.INVALID_DATE, WarningCodes.UNSUPPORTED_VERSION]);

/**
 * Compacts a store on Redis while writers keep appending (docs/FORMAT.md,
 * "Compaction on Redis"): take the fenced lock, fold snapshot + stream,
 * journal retention under the fence, install the new snapshot under the
 * fence, keep aside what the fold could not take, trim the stream.
 */
export async function compactRedisStore(options: CompactOptions & { redis: RedisLocation }, state: FoldState): Promise<CompactResult> {
  const started = Date.now();
  const now = options.now ?? Date.now;
  const report = options.onWarning ?? writeWarningToStderr;
  const lockTtlMs = requirePositiveInteger('lockTtlMs', options.lockTtlMs ?? DEFAULT_LOCK_TTL_MS);
  const conn = await connectRedis({ url: options.redis.url, prefix: options.redis.prefix, connectTimeoutMs: options.redis.connectTimeoutMs, commandTimeoutMs: options.redis.commandTimeoutMs, onWarning: report });
  const where = conn.where;
  const scripts = new StoreScripts(conn);
  let journal: Journal | undefined;
  let token: string | undefined;
  let renewal: NodeJS.Timeout | undefined;
  let lockLost: SessionJournalError | undefined;
  try {
    await scripts.load();
    token = await acquire(scripts, where, lockTtlMs, options.lockTimeoutMs ?? 30_000, options.signal);
    const held = token;
    renewal = setInterval(() => {
      scripts.renewLock(held, lockTtlMs).then(
        (r) => {
          if (r.kind === 'lost') lockLost ??= new SessionJournalError(ErrorCodes.LOCK_COMPROMISED, `the compaction lock of ${where} was taken over by ${r.holder}`, { details: { dir: where } });
        },
        () => undefined, // a renewal that fails for the connection is retried at the next tick; the fence still guards every write
      );
    }, Math.max(1, Math.floor(lockTtlMs / 3))).unref();
    const checkLock = () => {
      if (lockLost) throw lockLost;
      options.signal?.throwIfAborted();
    };

    const maxSkewMs = options.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
    refuseFastClock(where, now(), await serverNow(conn), maxSkewMs, `the Redis server of ${where}`);
    const fold = new FoldConsumer(state);
    const unfolded: string[] = [];
    const onWarning = (w: JournalWarning) => {
      if (w.entry !== undefined && w.file === conn.keys.log && UNFOLDED.has(w.code)) unfolded.push(w.entry);
      report(w);
    };
    const before = await manifestOf(conn);
    const bytesBefore = await storeBytes(conn, before?.bytes ?? 0);
    journal = await Journal.open({
      redis: options.redis,
      storeKind: state.recordNamespace,
      fenceToken: token,
      consumer: fold,
      create: false,
      onWarning,
      flushOnExit: false,
      maxLineBytes: options.maxLineBytes,
      maxRecordBytes: options.maxRecordBytes,
      clock: now,
    });
    if (fold.foreign.size > 0 && fold.own === 0) {
      const found = [...fold.foreign].map(([ns, n]) => (ns === SNAPSHOT_ENTRIES ? `${n} snapshot entries it cannot restore` : `${n} ${ns}.* records`)).join(', ');
      throw new SessionJournalError(ErrorCodes.STORE_KIND_MISMATCH, `${where} holds ${found} and no ${state.recordNamespace}.* record; this compaction folds ${state.recordNamespace}.* records, so nothing was changed`, {
        details: { dir: where, expected: state.recordNamespace, found: Object.fromEntries(fold.foreign) },
      });
    }
    checkLock();
    await options.onStep?.('replayed');

    let skewReported = false;
    const retentionNow = () =>
      retentionReference(where, now(), state.newestTime(), maxSkewMs, (w) => {
        if (!skewReported) report(w);
        skewReported = true;
      });
    if (journal.recordsSinceBase === 0 && state.retention(retentionNow()).length === 0) {
      return { status: 'nothing-to-do', bytesBefore, bytesAfter: bytesBefore, kept: state.size, removed: {}, segmentsArchived: 0, archiveFilesPruned: 0, keptAside: { lines: 0, files: [] }, durationMs: Date.now() - started };
    }

    // Decided after catching up, appended under the fence: the one owner of time.
    const removed: Record<string, number> = {};
    // The snapshot folds up to the head retention was decided on; the deletes follow it in the stream, as they follow a directory's snapshot in the next segment (the audit trail keeps them).
    let folded = { seq: journal.lastSeq, hash: journal.lastHash };
    let decisions: RetentionDecision[] = [];
    const caughtUp = journal;
    // Repeatable: when a writer moves the head first, the fold catches up and retention is decided again, so the
    // fold state is always the state at `folded`, where the deletes are appended (a decision written after a head
    // that moved would also act on what the writer had just done).
    await journal.appendDecided(
      () => {
        folded = { seq: caughtUp.lastSeq, hash: caughtUp.lastHash };
        decisions = state.retention(retentionNow());
        return decisions.map((d) => ({ type: d.type, payload: d.payload }));
      },
      { repeatable: true },
    );
    for (const d of decisions) {
      state.drop(d.key);
      removed[d.reason] = (removed[d.reason] ?? 0) + 1;
    }
    checkLock();
    await options.onStep?.('retained');

    const seq = folded.seq;
    const gen = Number(token);
    const manifest = await writeSnapshotChunks(conn, gen, seq, folded.hash, state.entries(), { signal: options.signal });
    const installed = await scripts.installSnapshot(token, manifest, before && { gen: before.gen, chunks: before.chunks });
    if (installed.kind !== 'ok') {
      await deleteSnapshotChunks(conn, gen, manifest.chunks).catch(() => undefined);
      const why = installed.kind === 'fenced' ? `the compaction lock was taken over (fence ${installed.fence})` : installed.kind === 'changed' ? `another compaction installed generation ${installed.gen} meanwhile` : installed.kind === 'behind' ? `the installed snapshot already folds up to seq ${installed.seq}` : `chunk ${installed.key} is missing`;
      throw new SessionJournalError(ErrorCodes.LOCK_COMPROMISED, `the snapshot of ${where} was not installed: ${why}; nothing was trimmed`, { details: { dir: where } });
    }
    await options.onStep?.('snapshot-written');

    const keptAside = await keepAside(conn, unfolded, report);
    await conn.command(['XTRIM', conn.keys.log, 'MINID', `${seq + 1}-0`]);
    await options.onStep?.('archived');
    return {
      status: 'compacted',
      bytesBefore,
      bytesAfter: await storeBytes(conn, manifest.bytes),
      kept: state.size,
      removed,
      segmentsArchived: 0,
      archiveFilesPruned: 0,
      keptAside,
      snapshot: `${conn.keys.snap} generation ${gen}`,
      durationMs: Date.now() - started,
    };
  } finally {
    clearInterval(renewal);
    try {
      await journal?.close();
    } finally {
      if (token !== undefined) await scripts.releaseLock(token).catch(() => undefined);
      await conn.close();
    }
  }
}

/** Takes the lock, waiting for another compaction up to `timeoutMs` (LOCK_TIMEOUT), as the directory's lock does. */
async function acquire(scripts: StoreScripts, where: string, ttlMs: number, timeoutMs: number, signal: AbortSignal | undefined): Promise<string> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    const outcome = await scripts.acquireLock(ttlMs);
    if (outcome.kind === 'ok') return outcome.token;
    if (performance.now() >= deadline) {
      throw new SessionJournalError(ErrorCodes.LOCK_TIMEOUT, `another compaction of ${where} (token ${outcome.holder}) held its lock for ${timeoutMs} ms`, { details: { dir: where, holder: outcome.holder } });
    }
    await sleep(Math.min(LOCK_POLL_MS, Math.max(1, outcome.ttlMs)), undefined, { signal });
  }
}

/** The server's clock (TIME), in epoch ms: the reference a compactor's clock is checked against. */
async function serverNow(conn: RedisConnection): Promise<number> {
  const reply = await conn.command(['TIME']);
  const [s, us] = Array.isArray(reply) ? reply.map(Number) : [Number.NaN, 0];
  return s! * 1000 + Math.floor(us! / 1000);
}

async function manifestOf(conn: RedisConnection) {
  const read = await readManifest(conn);
  return read.kind === 'ok' ? read.manifest : undefined;
}

/** What the store holds: the snapshot's bytes and the stream's memory (MEMORY USAGE). */
async function storeBytes(conn: RedisConnection, snapshotBytes: number): Promise<number> {
  const usage = await conn.command(['MEMORY', 'USAGE', conn.keys.log]).catch(() => 0);
  return snapshotBytes + (typeof usage === 'number' ? usage : 0);
}

/** Copies the lines the fold did not take to `{P}:kept` (field: entry id), so the trim does not lose them. */
async function keepAside(conn: RedisConnection, ids: readonly string[], report: (w: JournalWarning) => void): Promise<CompactResult['keptAside']> {
  if (ids.length === 0) return { lines: 0, files: [] };
  const unique = [...new Set(ids)];
  const fields: string[] = [];
  for (const id of unique) {
    const reply = await conn.command(['XRANGE', conn.keys.log, id, id]);
    const entry = Array.isArray(reply) ? reply[0] : undefined;
    const raw = Array.isArray(entry) && Array.isArray(entry[1]) ? entry[1] : [];
    const line = raw.length >= 2 ? String(raw[1]) : '';
    fields.push(id, line);
  }
  await conn.command(['HSET', conn.keys.kept, ...fields]);
  report({ code: WarningCodes.KEPT_ASIDE, message: `${unique.length} stream entr${unique.length === 1 ? 'y' : 'ies'} that compaction cannot fold were copied to ${conn.keys.kept} before the trim`, file: conn.keys.log });
  return { lines: unique.length, files: [{ file: conn.keys.log, quarantine: conn.keys.kept, index: conn.keys.kept }] };
}
