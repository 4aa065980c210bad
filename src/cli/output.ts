import type { Writable } from 'node:stream';
import { ErrorCodes, SessionJournalError } from '../errors.js';
import { UsageError } from './args.js';
import { kindHint } from './store-kinds.js';

/** Exit codes are API (docs/OPERATIONS.md); changing one is a breaking change. */
export const ExitCodes = {
  /** Done, or nothing to do. */
  OK: 0,
  /** The command ran and found problems (verify). */
  PROBLEMS: 1,
  /** The command line was wrong. */
  USAGE: 2,
  /** A lock stayed busy past --lock-timeout; retrying later is reasonable. */
  LOCK_BUSY: 3,
  /** The store could not be read or written (I/O, permissions, a symlink). */
  STORE_ERROR: 4,
  /** Compaction refused: its clock runs ahead of the store's file system (CLOCK_SKEW); nothing changed. */
  CLOCK_SKEW: 5,
  /** A bug: an unexpected exception. */
  INTERNAL: 70,
} as const;

export interface CliIO {
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
}

/** One line on stderr with a hint, and the exit code that fits the error. */
export function reportError(err: unknown, io: CliIO, command: string): number {
  if (err instanceof UsageError) {
    io.stderr.write(`session-journal ${command}: ${err.message}\nhint: session-journal ${command} --help\n`);
    return ExitCodes.USAGE;
  }
  if (err instanceof SessionJournalError) {
    const busy = err.code === ErrorCodes.LOCK_TIMEOUT || err.code === ErrorCodes.STORE_CHANGING;
    const hint = err.code === ErrorCodes.STORE_CHANGING ? `compactions kept changing the store while ${command} read it; retry later${command === 'verify' ? ' or raise --lock-timeout' : ''}` : busy ? 'another process holds the lock; retry later or raise --lock-timeout' : hintFor(err);
    io.stderr.write(`session-journal ${command}: ${err.code}: ${err.message}\nhint: ${hint}\n`);
    if (busy) return ExitCodes.LOCK_BUSY;
    return err.code === ErrorCodes.CLOCK_SKEW ? ExitCodes.CLOCK_SKEW : ExitCodes.STORE_ERROR;
  }
  io.stderr.write(`session-journal ${command}: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
  return ExitCodes.INTERNAL;
}

function hintFor(err: SessionJournalError): string {
  switch (err.code) {
    case ErrorCodes.HISTORY_PRUNED: {
      const earliest = err.details.earliest;
      return typeof earliest === 'number' ? `pass --at ${new Date(earliest).toISOString()} or later` : 'the archive no longer holds that time; see archive retention in docs/OPERATIONS.md';
    }
    case ErrorCodes.INVALID_IMPORT_FILE:
      return 'the file must be {"version":1,"sessions":[...]} or a flat {"key":"value"} object; nothing was imported';
    case ErrorCodes.UNSAFE_PERMISSIONS:
      return 'chmod 700 the store directory';
    case ErrorCodes.SYMLINK_REFUSED:
      return 'pass the real path of the store, not a symbolic link';
    case ErrorCodes.STORE_NOT_FOUND:
      return 'check --dir (or SESSION_JOURNAL_DIR)';
    case ErrorCodes.NOT_A_STORE:
      if (err.details.redis === true) return 'no store lives under that prefix on that server: check --prefix (or SESSION_JOURNAL_PREFIX), and --redis (or SESSION_JOURNAL_REDIS) for the database number';
      return 'pass the store directory itself, the one holding journal-*.ndjson (check --dir or SESSION_JOURNAL_DIR)';
    case ErrorCodes.LINE_TOO_LONG:
      return 'pass --max-line-bytes with the maxLineBytes the store is written with';
    case ErrorCodes.RECORD_TOO_LARGE:
      return err.details.flag ? `raise ${String(err.details.flag)}, or leave that session out of the file; nothing was imported` : 'pass --max-record-bytes with the maxRecordBytes the store is written with';
    case ErrorCodes.NOT_A_FILE:
      return 'a FIFO, directory or device is in the place of a store file; move it out of the store (see "Files that are not regular files" in docs/OPERATIONS.md)';
    case ErrorCodes.SNAPSHOT_UNREADABLE:
      return 'the newest snapshot is damaged or not a regular file and the history it folded is archived; restore it from a backup before compacting (docs/OPERATIONS.md)';
    case ErrorCodes.SNAPSHOT_TOO_LARGE:
      return 'a session is too large for a snapshot; delete or shorten it, then compact again (docs/OPERATIONS.md)';
    case ErrorCodes.CLOCK_SKEW:
      return "fix this host's clock (NTP), or pass --max-clock-skew if the file system's clock is the wrong one; see Clocks in docs/OPERATIONS.md";
    case ErrorCodes.STORE_KIND_MISMATCH: {
      // A store on Redis names its kind in {P}:meta (details.kind); a directory's compactor counts what it found.
      const found = (err.details.found as Record<string, unknown> | undefined) ?? (typeof err.details.kind === 'string' ? { [err.details.kind]: 1 } : undefined);
      return kindHint(err.details.expected, found);
    }
    case ErrorCodes.REDIS_UNAVAILABLE:
      return 'check --redis (or SESSION_JOURNAL_REDIS): the host, the port, the password, TLS (rediss://); nothing was changed by this command';
    case ErrorCodes.REDIS_NOT_INSTALLED:
      return 'a store on Redis needs the package "redis" (node-redis) next to session-journal: npm install redis';
    case ErrorCodes.REDIS_EVICTION_POLICY:
      return 'set maxmemory-policy noeviction on the server (docs/SCALING.md, "The Redis configuration")';
    case ErrorCodes.REDIS_DATA_LOST:
      return 'records of the store are missing on the server (evicted or deleted): restore its keys from a backup (docs/SCALING.md)';
    case ErrorCodes.IO_ERROR:
      return 'check free disk space and permissions; the store is unchanged and the command can be run again';
    default:
      return 'see docs/OPERATIONS.md';
  }
}
