/**
 * Errors about the store, its files, locks, options and validated data are
 * SessionJournalErrors carrying a stable `code`. Codes never change within a
 * major version; messages may. The underlying error, if any, is kept as
 * `cause`. Not covered (README.md, "Errors"): programming errors such as
 * invalid argument types throw TypeError; codex-mcp-server loading throws
 * CodexNotInstalledError / CodexUnsupportedError; callbacks' errors pass
 * through unchanged.
 */
export const ErrorCodes = {
  /** The store lock could not be taken before the lock timeout. */
  LOCK_TIMEOUT: 'LOCK_TIMEOUT',
  /** The store lock was lost while held (stale takeover, lock dir removed). */
  LOCK_COMPROMISED: 'LOCK_COMPROMISED',
  /** The store (or journal) was already closed. */
  CLOSED: 'CLOSED',
  /** A mutation on a store opened readOnly. */
  READ_ONLY: 'READ_ONLY',
  /** openSync, flushSync or closeSync on a store kept on a network server (Redis): use the async call. */
  SYNC_UNSUPPORTED: 'SYNC_UNSUPPORTED',
  /** A session id is not 1-256 characters of [a-zA-Z0-9_-]. */
  INVALID_SESSION_ID: 'INVALID_SESSION_ID',
  /**
   * A line longer than maxLineBytes stands in the way: compaction found a
   * record longer than it may read (it would fold it away), or maxLineBytes
   * is too small to spread a record over several lines.
   */
  LINE_TOO_LONG: 'LINE_TOO_LONG',
  /**
   * A record (its payload, in UTF-8 bytes) exceeds maxRecordBytes: nothing
   * was queued. Also compaction finding a record larger than it may read,
   * and import finding a session over its limit (nothing imported).
   */
  RECORD_TOO_LARGE: 'RECORD_TOO_LARGE',
  /** A conversation turn exceeds the maxTurnBytes the caller set. */
  TURN_TOO_LARGE: 'TURN_TOO_LARGE',
  /** A KeyValueStore key is not a string of 1-1024 characters without control characters. */
  INVALID_KEY: 'INVALID_KEY',
  /** A date field is not a valid Date. */
  INVALID_DATE: 'INVALID_DATE',
  /** An update names a forbidden key (__proto__, constructor, prototype) or is not an object. */
  INVALID_UPDATE: 'INVALID_UPDATE',
  /** An option has a value outside its documented range. */
  INVALID_OPTION: 'INVALID_OPTION',
  /** The store directory is group- or world-writable. */
  UNSAFE_PERMISSIONS: 'UNSAFE_PERMISSIONS',
  /** A store file, the store directory, or its archive/ or quarantine/ directory is a symbolic link. */
  SYMLINK_REFUSED: 'SYMLINK_REFUSED',
  /** The store directory does not exist (and the operation does not create one). */
  STORE_NOT_FOUND: 'STORE_NOT_FOUND',
  /**
   * The directory exists but is not a store: it holds none of a store's
   * names (no segment, snapshot, archive/ ...), such as an empty directory or
   * a store's parent. A writer that opens a new store makes its first
   * segment, so a store with no records yet is still a store.
   */
  NOT_A_STORE: 'NOT_A_STORE',
  /** The store holds another kind of records than the tool expects (an event store given to the session compactor). */
  STORE_KIND_MISMATCH: 'STORE_KIND_MISMATCH',
  /** A replay asked for an event id the store (or this MCP session's view of it) does not hold: never stored, stored through another view, altered, or its stream expired. */
  UNKNOWN_EVENT_ID: 'UNKNOWN_EVENT_ID',
  /** The point in time asked for lies before the oldest history the archive still holds. */
  HISTORY_PRUNED: 'HISTORY_PRUNED',
  /** A file to import is not JSON, or not one of the supported shapes. */
  INVALID_IMPORT_FILE: 'INVALID_IMPORT_FILE',
  /** A store path exists but is not of the expected kind (file vs directory). */
  NOT_A_DIRECTORY: 'NOT_A_DIRECTORY',
  /**
   * A store file is a FIFO, a directory, a socket or a device: it is never
   * opened (a FIFO would block forever). Move it out of the store.
   */
  NOT_A_FILE: 'NOT_A_FILE',
  /**
   * compact: a snapshot cannot be read (SNAPSHOT_UNREADABLE warning) and the
   * segments it folded are no longer in the store, so a fold from an older
   * base would publish a state without them; nothing was changed.
   */
  SNAPSHOT_UNREADABLE: 'SNAPSHOT_UNREADABLE',
  /**
   * A snapshot to write has a line (one session) over 128 MiB or is over
   * 1 GiB in all: readers would refuse it, so it is not published and the
   * compaction fails with the store unchanged.
   */
  SNAPSHOT_TOO_LARGE: 'SNAPSHOT_TOO_LARGE',
  /**
   * Compaction refused to run: its clock is ahead of the file system holding
   * the store by more than the allowed skew, so its TTL and archive ages
   * cannot be trusted. Nothing was changed.
   */
  CLOCK_SKEW: 'CLOCK_SKEW',
  /**
   * The store kept changing under a read, attempt after attempt: verify
   * (compactions archived segments while they were being read), or the open,
   * catch-up or audit of a store on Redis (compactions installed newer
   * snapshots while one was read). Nothing is wrong with the store; try
   * again later.
   */
  STORE_CHANGING: 'STORE_CHANGING',
  /** A file-system call failed; `cause` holds the system error (ENOSPC, EIO, EACCES...). */
  IO_ERROR: 'IO_ERROR',
  /**
   * The Redis server cannot be reached (refused, timed out, the connection
   * dropped, or the server is loading its data or failing over): nothing
   * unacknowledged was reported stored. The client reconnects by itself.
   */
  REDIS_UNAVAILABLE: 'REDIS_UNAVAILABLE',
  /** The Redis backend was asked for but the optional peer dependency `redis` (node-redis) is not installed: `npm install redis`. */
  REDIS_NOT_INSTALLED: 'REDIS_NOT_INSTALLED',
  /**
   * Redis answered a command with an error reply that is not a passing
   * outage (OOM under noeviction, NOPERM, WRONGTYPE on a key of the store's
   * prefix): the reply is in the message; nothing was written.
   */
  REDIS_COMMAND_FAILED: 'REDIS_COMMAND_FAILED',
  /**
   * The store's records on Redis are no longer all there: the stream or the
   * head key was deleted or evicted, or the stream no longer reaches back to
   * the snapshot. Nothing is written on top of a store that lost data.
   */
  REDIS_DATA_LOST: 'REDIS_DATA_LOST',
  /** The Redis server's maxmemory-policy is not noeviction: it may evict the store's stream, which is lost data, so the store is refused. */
  REDIS_EVICTION_POLICY: 'REDIS_EVICTION_POLICY',
  /** A commit was acknowledged by fewer replicas than `wait.replicas` within its timeout: it is on the primary, not yet replicated. */
  REDIS_NOT_REPLICATED: 'REDIS_NOT_REPLICATED',
  /**
   * A commit whose reply was lost could no longer be read back (it stayed in
   * doubt through two compactions): it may or may not be in the store. It is
   * not written again, and no later flush() resolves until the store is
   * reopened.
   */
  REDIS_COMMIT_UNKNOWN: 'REDIS_COMMIT_UNKNOWN',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class SessionJournalError extends Error {
  readonly code: ErrorCode;
  /** Extra machine-readable facts (paths, sizes, limits). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SessionJournalError';
    this.code = code;
    this.details = Object.freeze({ ...(options.details ?? {}) });
  }
}

/** An option that must be a positive finite number, or INVALID_OPTION. */
export function requirePositive(name: string, value: number): number {
  return requireOption(name, value, Number.isFinite(value) && value > 0, 'a positive number');
}

/** An option that must be a positive integer (a count), or INVALID_OPTION. */
export function requirePositiveInteger(name: string, value: number): number {
  return requireOption(name, value, Number.isSafeInteger(value) && value > 0, 'a positive integer');
}

function requireOption(name: string, value: number, ok: boolean, what: string): number {
  if (!ok) throw new SessionJournalError(ErrorCodes.INVALID_OPTION, `${name} must be ${what}, got ${value}`, { details: { option: name, value } });
  return value;
}

/**
 * Wraps a failed file-system call, keeping the system code visible in the
 * message. An error that is already ours passes through unchanged, so
 * `cause` is always the system error.
 */
export function ioError(what: string, path: string, cause: unknown): SessionJournalError {
  if (cause instanceof SessionJournalError) return cause;
  const sys = (cause as NodeJS.ErrnoException | undefined)?.code ?? 'unknown';
  return new SessionJournalError(ErrorCodes.IO_ERROR, `${what} failed for ${path}: ${sys}`, {
    cause,
    details: { path, syscallCode: sys },
  });
}
