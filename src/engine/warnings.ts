/**
 * Problems found in file content never throw: they become warnings with a
 * stable code and the exact place (file, 1-based line, byte offset).
 */
export const WarningCodes = {
  /** A line that is not valid JSON (a torn write, an editor, garbage). */
  UNPARSABLE_LINE: 'UNPARSABLE_LINE',
  /** A line made only of NUL bytes: a zero-filled tail after power loss. */
  ZERO_FILLED: 'ZERO_FILLED',
  /** Valid JSON that is not an object (null, a number, an array). */
  NOT_AN_OBJECT: 'NOT_AN_OBJECT',
  /** An object missing envelope fields or with fields of the wrong type. */
  INVALID_ENVELOPE: 'INVALID_ENVELOPE',
  /** A record written by a newer format version than this library reads. */
  UNSUPPORTED_VERSION: 'UNSUPPORTED_VERSION',
  /** An event type no reducer knows. */
  UNKNOWN_EVENT_TYPE: 'UNKNOWN_EVENT_TYPE',
  /** An envelope or payload date that does not parse. */
  INVALID_DATE: 'INVALID_DATE',
  /** A payload the reducer rejects (bad session id, unsafe key, bad shape). */
  INVALID_PAYLOAD: 'INVALID_PAYLOAD',
  /** A line longer than maxLineBytes; skipped without being buffered. */
  LINE_TOO_LONG: 'LINE_TOO_LONG',
  /**
   * Parts of a record spread over several lines (docs/FORMAT.md) that do not
   * join into it: one is missing or damaged, out of order, or the commit ends
   * before the last. None of them is applied; each is reported at its line.
   */
  INCOMPLETE_RECORD: 'INCOMPLETE_RECORD',
  /**
   * A record spread over several lines whose payload is larger than the
   * reader's maxRecordBytes: not applied (a writer with a larger limit wrote
   * it; read the store with that limit). Reported at each of its lines.
   */
  RECORD_TOO_LARGE: 'RECORD_TOO_LARGE',
  /**
   * `session-journal codex-mcp-server`: an answer too large for the store
   * (over --max-turn-bytes, or over maxRecordBytes) was stored cut to fit,
   * with a note at the cut; the MCP client received it whole.
   */
  TURN_TRUNCATED: 'TURN_TRUNCATED',
  /** The file ends in a line with no newline and no writer holds the lock. */
  INCOMPLETE_TAIL: 'INCOMPLETE_TAIL',
  /**
   * Compaction copied lines it cannot fold (garbage, records of another
   * namespace or version, records the reducer rejects) to the quarantine
   * before archiving their segment: the message names the files.
   */
  KEPT_ASIDE: 'KEPT_ASIDE',
  /** A UTF-8 byte order mark at the start of a file (an editor); ignored. */
  BOM_IGNORED: 'BOM_IGNORED',
  /** A sequence number not greater than the one before it. */
  SEQUENCE_REGRESSION: 'SEQUENCE_REGRESSION',
  /** A snapshot file that cannot be read; an older base is used instead. */
  SNAPSHOT_UNREADABLE: 'SNAPSHOT_UNREADABLE',
  /**
   * A store file that is not a regular file (a FIFO, a directory, a socket):
   * never opened. verify and replay skip such a segment and go on; the
   * engine refuses it with the error NOT_A_FILE.
   */
  NOT_A_FILE: 'NOT_A_FILE',
  /** A segment no rotation marker leads to (a rotation died half-way); left in place, not applied. */
  ORPHAN_SEGMENT: 'ORPHAN_SEGMENT',
  /**
   * The chain of segments ends in a line that is not a valid rotation marker
   * (damaged, cut short, or naming a segment that is not there) while the
   * next segment of the listing continues the sequence: the damaged line is
   * read as the rotation to it, so nothing after it is orphaned.
   */
  ROTATION_MARKER_DAMAGED: 'ROTATION_MARKER_DAMAGED',
  /**
   * A commit whose records did not all reach the file (a write that failed
   * half-way, on a full disk, or a writer killed inside its write), replaced
   * by a later commit: none of its records is applied. Its writer
   * acknowledged none of them, and writes again what it still holds.
   */
  INCOMPLETE_COMMIT: 'INCOMPLETE_COMMIT',
  /**
   * A commit numbered from an out-of-date view of the store: a writer that
   * was stopped past the lock's stale time while another took the lock. Not
   * applied; its writer found that out before acknowledging, and wrote it
   * again at the end of the journal.
   */
  STALE_COMMIT: 'STALE_COMMIT',
  /**
   * A segment became shorter than what this process had already read (it was
   * truncated by something outside the protocol): the store is replayed
   * again from its snapshot.
   */
  SEGMENT_SHRANK: 'SEGMENT_SHRANK',
  /** The lock was lost while a commit held it; the commit's range is given. */
  LOCK_COMPROMISED: 'LOCK_COMPROMISED',
  /** Entries could not be written during process exit. */
  EXIT_FLUSH_FAILED: 'EXIT_FLUSH_FAILED',
  /** An automatic compaction process failed; the store is unchanged. */
  AUTO_COMPACT_FAILED: 'AUTO_COMPACT_FAILED',
  /**
   * Compaction found the store's newest activity later than its own clock by
   * more than the allowed skew (a slow compactor, or a writer running ahead);
   * it went on, expiring only what is idle by its own clock.
   */
  CLOCK_SKEW: 'CLOCK_SKEW',
  /**
   * A background commit failed and no flush() was waiting for it (a waiting
   * flush() rejects with the error instead, and then no warning is given).
   * If the failure came before the batch was written (lock timeout, catch-up
   * or write error), its entries stay queued and a new commit is tried after
   * 1 s (entries that are all deferred wait for the next commit). If the
   * batch was written but its fdatasync failed, the entries are in the file
   * but not known durable: they are not queued again, and every later
   * flush() and close() of this journal rejects with that error until the
   * store is reopened (a retried sync could report success for lost pages).
   * Also used by the compactor when closing its journal fails after the
   * compaction already failed.
   *
   * Retries back off: 1 s after the first failure, doubling up to 60 s
   * (each shortened by up to 20 % at random, so processes failing together
   * do not retry in step), back to 1 s after a commit succeeds. Not every
   * failure is warned: each error message at its 1st, 2nd, 4th, 8th, ...
   * occurrence in a run of failures, with the count and the time of the
   * first failure (so a new error is warned at once). The first success
   * after warned failures is reported once (RECOVERED).
   */
  COMMIT_FAILED: 'COMMIT_FAILED',
  /**
   * A read (getSession, listSessions, ...) could not apply what other
   * processes committed: the store directory or a file in it could not be
   * read (permission denied, a file where the directory was, a FIFO where a
   * segment belongs). The read answered from this process's view instead of
   * throwing, as codex-mcp-server's in-memory storage never throws on a read;
   * mutations go on in memory and are committed once the store is usable
   * (until then COMMIT_FAILED, and flush() rejects). Repeats are collapsed
   * as for COMMIT_FAILED.
   */
  CATCH_UP_FAILED: 'CATCH_UP_FAILED',
  /** A failure warned before (COMMIT_FAILED, CATCH_UP_FAILED, REDIS_DISCONNECTED) is over: how many times it failed, since when. */
  RECOVERED: 'RECOVERED',
  /**
   * The Redis server does not run with `appendonly yes` and `appendfsync
   * always` (and the store was not opened with `fsync: false`): a commit it
   * acknowledged can be lost if the server crashes.
   */
  REDIS_NOT_DURABLE: 'REDIS_NOT_DURABLE',
  /**
   * The Redis server refused CONFIG GET (a managed service renames or denies
   * it), so its eviction policy and durability are not known: the operator
   * vouches for them. Warned once per server and process.
   */
  REDIS_CONFIG_UNKNOWN: 'REDIS_CONFIG_UNKNOWN',
  /**
   * The connection to the Redis server was lost or a reconnection failed;
   * the client keeps reconnecting by itself (commands fail meanwhile with
   * REDIS_UNAVAILABLE). Repeats are collapsed as for COMMIT_FAILED, and the
   * reconnection is reported once as RECOVERED.
   */
  REDIS_DISCONNECTED: 'REDIS_DISCONNECTED',
  /**
   * A tool reading a store on Redis (replay, replay --state, --follow) found
   * records missing from the stream: a compaction folded them into a newer
   * snapshot and trimmed them while the tool read (the message names the
   * snapshot), or they were lost (evicted or deleted; the message says so).
   * The tool goes on after them.
   */
  RECORDS_MISSING: 'RECORDS_MISSING',
} as const;

export type WarningCode = (typeof WarningCodes)[keyof typeof WarningCodes];

export interface JournalWarning {
  code: WarningCode;
  /** Human-readable reason. */
  message: string;
  /** Absolute path of the file concerned, when there is one. */
  file?: string;
  /** 1-based line number within that file. */
  line?: number;
  /** Byte offset of the start of that line. */
  offset?: number;
  /** A store on Redis: the id of the stream entry concerned (`file` then names the stream's key). */
  entry?: string;
}

export type WarningHandler = (warning: JournalWarning) => void;

export function formatWarning(w: JournalWarning): string {
  const at = w.entry !== undefined ? ` entry ${w.entry}` : `${w.line ? `:${w.line}` : ''}${w.offset !== undefined ? ` (byte ${w.offset})` : ''}`;
  const where = w.file ? ` ${w.file}${at}` : '';
  return `session-journal: warning ${w.code}${where}: ${w.message}`;
}

/** The default handler: one line per warning on stderr, never stdout. */
export const writeWarningToStderr: WarningHandler = (w) => {
  process.stderr.write(formatWarning(w) + '\n');
};

/** Distinct messages counted in one run of failures; past this the counts start over (a message with a counter in it). */
const MAX_DISTINCT_MESSAGES = 32;

/**
 * Reports a failure that may repeat many times (a commit retried, a catch-up
 * on every read) without flooding the handler: each message is warned the
 * 1st, 2nd, 4th, 8th, ... time it occurs in a run of failures, with the count
 * and the time of the first failure; so a new kind of error is warned at
 * once, and two errors taking turns do not defeat the collapsing. The first
 * success after warned failures is reported once as RECOVERED.
 */
export class RepeatedFailure {
  /** Failures in a row, and when the first of them happened (epoch ms). */
  private failures = 0;
  private since = 0;
  /** How often each message occurred in this run of failures. */
  private readonly seen = new Map<string, number>();
  private warned = false;

  constructor(
    private readonly code: WarningCode,
    /** What failed, as the start of a sentence: "background commit". */
    private readonly what: string,
    private readonly file: string,
    private readonly warn: WarningHandler,
    private readonly clock: () => number,
  ) {}

  /** One more failure; `next` says what happens now ("retrying in 2 s"). */
  failed(message: string, next: string): void {
    if (this.failures++ === 0) this.since = this.clock();
    if (!this.seen.has(message) && this.seen.size >= MAX_DISTINCT_MESSAGES) this.seen.clear();
    const n = (this.seen.get(message) ?? 0) + 1;
    this.seen.set(message, n);
    if ((n & (n - 1)) !== 0) return; // warned at 1, 2, 4, 8, ...
    this.warned = true;
    const count = this.failures === 1 ? 'failed' : `failed again: ${this.failures} times in a row since ${new Date(this.since).toISOString()} (each error is warned its 1st, 2nd, 4th, 8th, ... time)`;
    this.warn({ code: this.code, message: `${this.what} ${count}; ${next}: ${message}`, file: this.file });
  }

  /** A success: the next failure starts a new count; RECOVERED if failures were warned. */
  succeeded(): void {
    if (this.failures === 0) return;
    if (this.warned) {
      this.warn({ code: WarningCodes.RECOVERED, message: `${this.what} works again after ${this.failures} failure${this.failures === 1 ? '' : 's'} in a row since ${new Date(this.since).toISOString()}`, file: this.file });
    }
    this.failures = 0;
    this.seen.clear();
    this.warned = false;
  }
}
