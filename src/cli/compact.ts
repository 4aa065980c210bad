import { compactSessions } from '../sessions/compact-sessions.js';
import { DEFAULT_MAX_SESSIONS, DEFAULT_TTL_MS } from '../sessions/session-store.js';
import { compactEventStore, DEFAULT_EVENT_TTL_MS } from '../integrations/event-store.js';
import { compactKeyValueStore } from '../kv/compact-key-value-store.js';
import { DEFAULT_KV_MAX_ENTRIES, DEFAULT_KV_TTL_MS } from '../kv/key-value-store.js';
import { DEFAULT_STORE_KIND, STORE_KINDS, isStoreKindName, type StoreKind, type StoreKindName } from './store-kinds.js';
import type { CompactOptions, CompactResult } from '../compact/compactor.js';
import { requireStore } from '../storage/file/store-files.js';
import { formatWarning, type JournalWarning } from '../engine/warnings.js';
import { LOCATION_FLAGS, UsageError, locationHelp, parseDuration, parseFlags, parsePositiveInt, parseTime, storeLocation, type ParsedArgs } from './args.js';
import { connectToStore } from '../storage/redis/history-reader.js';
import { ExitCodes, reportError, type CliIO } from './output.js';
import { settleClaim } from '../storage/file/compaction-claim.js';
import { Writable } from 'node:stream';
import { SignalAbort } from './signals.js';
import { progressBar, type Progress } from './terminal.js';
import type { CompactionStep } from '../compact/compactor.js';

/** Stores smaller than this compact in well under a second: no bar. */
const PROGRESS_MIN_BYTES = 4 * 1024 * 1024;

export const compactHelp = `Usage: session-journal compact --dir DIR [options]
       session-journal compact --redis URL --prefix P [options]

Folds the journal into a new snapshot, drops expired sessions (TTL) and the
least recently used beyond --max-sessions (LRU), and archives the folded
segments. Safe beside live writers. Quiet on success.

On Redis the folded records are trimmed from the stream once the snapshot
is installed (XTRIM), not archived: --no-archive and --archive-* do not
apply there; --max-clock-skew compares this host's clock with the server's
(TIME), and the lock is the store's fenced {P}:lock.

Options:
${locationHelp(23)}
  --kind KIND          sessions (default), events (a JournalEventStore) or kv
                       (a KeyValueStore); a store of another kind is refused (exit 4)
  --ttl DURATION       drop sessions not accessed for this long (default 24h;
                       for events: streams whose newest event is older, default 1h;
                       for kv: keys neither set nor read for this long, default 24h)
  --max-sessions N     keep at most N sessions (default ${DEFAULT_MAX_SESSIONS})
  --max-entries N      kv: keep at most N keys, most recently used (default ${DEFAULT_KV_MAX_ENTRIES})
  --now TIME           evaluate the TTL and the archive's age at this instant
                       instead of the current time; a store passes its clock
                       to the compaction it starts by itself
  --lock-timeout DUR   wait this long for a running compaction or writer (default 30s)
  --max-line-bytes N   the longest line the store's writers write (their
                       maxLineBytes; default 1048576); a longer record stops
                       the compaction (exit 4) rather than being folded away
  --max-record-bytes N the largest record the store's writers accept (their
                       maxRecordBytes; default 67108864); a larger record
                       stops the compaction (exit 4) likewise
  --max-clock-skew D   refuse to run (exit 5) when this host's clock is ahead
                       of the store's file system (on Redis: the server's
                       clock) by more (default 1h)
  --no-archive         delete folded segments instead of archiving them
  --archive-max-age D  delete archived files older than this (default 30d)
  --archive-max-files N  keep at most N archived files (default 1000)
  --auto               started by a store's automatic compaction (which made
                       DIR/compact.claim): removes the claim on success, and
                       otherwise records in it whether the lock was busy or
                       why the compaction failed, for the store's processes
  -j, --json           print one JSON document with what was done
  -h, --help           this help

DURATION takes ms, s, m, h or d (90s, 15m, 24h, 7d), or a bare number of
seconds (3600). TIME is an ISO-8601 instant (2026-11-22T10:00:00Z, or with
an offset), a UTC date (2026-11-22: its midnight), epoch milliseconds, or a
duration meaning that long ago (2h).

SIGINT (Ctrl-C), SIGTERM and SIGHUP stop it at the next step: its temporary
files are removed and its locks released, then it ends by that signal (a
shell reports 130, 143, 129). Stopped before its rotation it changed
nothing; after it, the store is as a crash there leaves it (every session
in it), and the next compaction does the rest.

Exit codes: 0 done or nothing to do, 2 usage, 3 lock busy (retry later),
4 store error (I/O, permissions, NOT_A_STORE, STORE_KIND_MISMATCH),
5 clock skew (nothing changed), 70 internal error; 130, 143, 129: stopped
by SIGINT, SIGTERM, SIGHUP.
`;

const constant = (ms: number) => (): number => ms;

/** Each kind's compaction, its default TTL and (for a kind with a cap) the cap's default. */
const COMPACTIONS: Record<StoreKindName, { ttlMs: number; limit?: number; run: (options: CompactOptions & { ttlMs: number }, limit: number | undefined) => Promise<CompactResult> }> = {
  sessions: { ttlMs: DEFAULT_TTL_MS, limit: DEFAULT_MAX_SESSIONS, run: (options, limit) => compactSessions({ ...options, maxSessions: limit }) },
  events: { ttlMs: DEFAULT_EVENT_TTL_MS, run: (options) => compactEventStore(options) },
  kv: { ttlMs: DEFAULT_KV_TTL_MS, limit: DEFAULT_KV_MAX_ENTRIES, run: (options, limit) => compactKeyValueStore({ ...options, maxEntries: limit }) },
};

export async function compactCommand(argv: readonly string[], io: CliIO): Promise<number> {
  const args = parseFlags(argv, {
    values: [...LOCATION_FLAGS, 'kind', 'ttl', 'max-sessions', 'max-entries', 'now', 'lock-timeout', 'max-line-bytes', 'max-record-bytes', 'max-clock-skew', 'archive-max-age', 'archive-max-files'],
    switches: ['json', 'no-archive', 'auto'],
  });
  return args.switches.has('auto') ? compactForStore(args, io) : compact(args, io);
}

/**
 * `compact --auto`, the child a store starts (compact/auto-compact.ts): the
 * same compaction, then its outcome settled in the claim the store made,
 * because the store that started it may have exited already (a hook's
 * fork): the next process of the store reads there that the lock was busy
 * or why it failed, and waits before starting another. Its errors are
 * reported here, not by the dispatcher, so the claim gets their line too.
 */
async function compactForStore(args: ParsedArgs, io: CliIO): Promise<number> {
  const location = storeLocation(args, io.env);
  if (location.kind !== 'dir') throw new UsageError('--auto is for a store directory: a store on Redis is compacted from cron');
  // The claim's back-off runs from the start, on the store's clock (its --now), as the claim itself did.
  const startedAt = args.values.has('now') ? parseTime('now', args.values.get('now')!, Date.now()) : Date.now();
  let tail = '';
  const stderr = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      tail = (tail + chunk.toString()).slice(-4000);
      io.stderr.write(chunk, () => done());
    },
  });
  const tee: CliIO = { ...io, stderr };
  let code: number;
  try {
    code = await compact(args, tee);
  } catch (err) {
    code = reportError(err, tee, 'compact');
  }
  settleClaim(location.dir, code === ExitCodes.OK ? { state: 'done' } : { state: code === ExitCodes.LOCK_BUSY ? 'busy' : 'failed', at: startedAt, message: tail.trim() || `exit code ${code}` });
  return code;
}

async function compact(args: ParsedArgs, io: CliIO): Promise<number> {
  const json = args.switches.has('json');
  const kindName = args.values.get('kind') ?? DEFAULT_STORE_KIND;
  if (!isStoreKindName(kindName)) throw new UsageError(`--kind is ${Object.keys(STORE_KINDS).join(', ')} (got ${JSON.stringify(kindName)})`);
  const kind: StoreKind = STORE_KINDS[kindName];
  for (const [name, other] of Object.entries(STORE_KINDS) as Array<[string, StoreKind]>) {
    const flag = other.limitFlag;
    if (flag && flag !== kind.limitFlag && args.values.has(flag)) throw new UsageError(`--${flag} applies to --kind ${name} only`);
  }
  const compaction = COMPACTIONS[kindName];
  const ttl = args.values.get('ttl');
  let bar: Progress | undefined;
  let lastStep: CompactionStep | undefined;
  const location = storeLocation(args, io.env);
  if (location.kind === 'redis') {
    const archiveFlag = ['archive-max-age', 'archive-max-files'].find((f) => args.values.has(f)) ?? (args.switches.has('no-archive') ? 'no-archive' : undefined);
    if (archiveFlag) throw new UsageError(`--${archiveFlag} does not apply to a store on Redis: a compaction there trims the records it folded from the stream, it keeps no archive`);
  }
  const options = {
    ...(location.kind === 'dir' ? { dir: location.dir } : { redis: location.redis }),
    // One instant for the whole compaction: TTL and archive age are judged at the same "now".
    ...(args.values.has('now') && { now: constant(parseTime('now', args.values.get('now')!, Date.now())) }),
    lockTimeoutMs: args.values.has('lock-timeout') ? parseDuration('lock-timeout', args.values.get('lock-timeout')!) : 30_000,
    ...(args.values.has('max-clock-skew') && { maxClockSkewMs: parseDuration('max-clock-skew', args.values.get('max-clock-skew')!) }),
    ...(args.values.has('max-line-bytes') && { maxLineBytes: parsePositiveInt('max-line-bytes', args.values.get('max-line-bytes')!) }),
    ...(args.values.has('max-record-bytes') && { maxRecordBytes: parsePositiveInt('max-record-bytes', args.values.get('max-record-bytes')!) }),
    archive: {
      keep: !args.switches.has('no-archive'),
      ...(args.values.has('archive-max-age') && { maxAgeMs: parseDuration('archive-max-age', args.values.get('archive-max-age')!) }),
      ...(args.values.has('archive-max-files') && { maxFiles: parsePositiveInt('archive-max-files', args.values.get('archive-max-files')!) }),
    },
    onWarning: (w: JournalWarning) => io.stderr.write(formatWarning(w) + '\n'),
    onReplayProgress: (done: number, total: number) => {
      bar ??= progressBar(io.stderr, 'compact', total, !json && total >= PROGRESS_MIN_BYTES);
      bar.update(done);
    },
    onStep: (step: CompactionStep) => {
      lastStep = step;
      if (step === 'replayed') bar?.finish();
    },
  };
  const ttlMs = ttl ? parseDuration('ttl', ttl) : compaction.ttlMs;
  const limitFlag = kind.limitFlag;
  const limit = limitFlag && args.values.has(limitFlag) ? parsePositiveInt(limitFlag, args.values.get(limitFlag)!) : compaction.limit;
  if (location.kind === 'dir') requireStore(location.dir);
  else await (await connectToStore(location.redis, options.onWarning)).close(); // NOT_A_STORE for a prefix with no store
  // From here on SIGINT, SIGTERM and SIGHUP stop the compaction cleanly, with the shell's exit code for the signal.
  const stop = new SignalAbort();
  try {
    const result = await compaction.run({ ...options, ttlMs, signal: stop.signal }, limit);
    if (json) io.stdout.write(JSON.stringify(result) + '\n');
    return ExitCodes.OK;
  } catch (err) {
    if (!stop.received) throw err;
    bar?.finish();
    // The terminal may be gone (SIGHUP): a failed write of this line must not become an error of its own.
    io.stderr.on('error', () => undefined);
    io.stderr.write(`session-journal compact: stopped by ${stop.received}: ${(location.kind === 'redis' ? STOPPED_AFTER_ON_REDIS : STOPPED_AFTER)[lastStep ?? 'none']}\n`);
    return stop.exitCode;
  } finally {
    stop.dispose();
  }
}

/** What a stopped compaction leaves, by the last step it finished (docs/OPERATIONS.md, "Stopping a compaction"). */
const STOPPED_AFTER: Record<CompactionStep | 'none', string> = {
  none: 'nothing was changed',
  replayed: 'nothing was changed',
  rotated: 'the journal was rotated and nothing else changed; the next compaction folds it',
  retained: 'the journal was rotated and the expiries journaled, nothing else changed; the next compaction folds it',
  'snapshot-written': 'the new snapshot is published; the next compaction archives the segments it folded',
  archived: 'the compaction was done',
};

/** The same on Redis (docs/FORMAT.md, "Compaction on Redis"): nothing is rotated, and what is folded is trimmed last. */
const STOPPED_AFTER_ON_REDIS: Record<CompactionStep | 'none', string> = {
  none: 'nothing was changed',
  replayed: 'nothing was changed',
  rotated: 'nothing was changed',
  retained: 'the expiries were journaled, nothing else changed; the next compaction folds them',
  'snapshot-written': 'the new snapshot is installed; the next compaction trims the records it folded',
  archived: 'the compaction was done',
};
