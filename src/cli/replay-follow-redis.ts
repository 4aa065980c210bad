import { ErrorCodes, SessionJournalError } from '../errors.js';
import { DEFAULT_MAX_LINE_BYTES } from '../engine/group-commit.js';
import type { JournalRecord } from '../engine/record-codec.js';
import { DEFAULT_MAX_RECORD_BYTES } from '../engine/record-parts.js';
import type { JournalWarning } from '../engine/warnings.js';
import { missingRecords } from '../audit/redis-trail.js';
import { connectRedis } from '../storage/redis/connection.js';
import type { RedisLocation } from '../storage/redis/redis-location.js';
import { StreamReader } from '../storage/redis/stream-reader.js';
import type { StdoutSink } from './stdout-sink.js';
import type { Stopper } from './stopper.js';

/** How long one XREAD waits: the longest a stop (SIGINT, SIGTERM, a closed stdout) waits for the read in flight. */
const BLOCK_MS = 500;
/** Between attempts while the server cannot be reached (the connection reconnects by itself meanwhile). */
const RETRY_MS = 500;

/**
 * --follow on a store on Redis: after the history, XREAD BLOCK after the
 * last entry read, on a connection of its own (a blocked command holds its
 * connection), with the store's own reader (stream-reader.ts: whole
 * commits, spread records joined). Stops on SIGINT, SIGTERM or a closed
 * stdout within BLOCK_MS, as the directory's follow does within its poll.
 *
 * A compaction does not disturb it: it trims records the follower has
 * printed already. Should one trim records it had not read yet (it fell
 * that far behind), they are gone: RECORDS_MISSING says which, and the
 * follow goes on after them. While the server is unreachable it waits and
 * tries again (REDIS_DISCONNECTED and RECOVERED are warned).
 */
export async function followRedis(location: RedisLocation, afterSeq: number, emit: (r: JournalRecord) => Promise<void>, out: StdoutSink, warn: (w: JournalWarning) => void, stopper: Stopper): Promise<void> {
  out.onClose(() => stopper.stop());
  const conn = await connectRedis({ url: location.url, prefix: location.prefix, connectTimeoutMs: location.connectTimeoutMs, commandTimeoutMs: location.commandTimeoutMs, onWarning: warn });
  const pending: JournalRecord[] = [];
  const readerAfter = (seq: number) =>
    new StreamReader({
      conn,
      consumer: {
        apply: (record) => {
          pending.push(record);
          return undefined;
        },
      },
      // Only the seq matters to a reader that never writes.
      after: { seq, hash: '' },
      maxLineBytes: DEFAULT_MAX_LINE_BYTES,
      maxRecordBytes: DEFAULT_MAX_RECORD_BYTES,
      warn,
    });
  let reader = readerAfter(afterSeq);
  try {
    while (!stopper.stopped && !out.closed) {
      let outcome;
      try {
        outcome = await reader.readNew(BLOCK_MS);
      } catch (err) {
        if (!(err instanceof SessionJournalError && err.code === ErrorCodes.REDIS_UNAVAILABLE)) throw err;
        await stopper.sleep(RETRY_MS);
        continue;
      }
      if (outcome.kind === 'gap') {
        const found = outcome.found ?? outcome.expected;
        warn(await missingRecords(conn, outcome.expected - 1, found, { file: conn.keys.log, entry: `${found}-0` }));
        reader = readerAfter(found - 1);
        continue;
      }
      for (const record of pending.splice(0)) {
        if (out.closed) break;
        await emit(record);
      }
    }
  } finally {
    await conn.close();
  }
}
