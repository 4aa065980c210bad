import { ErrorCodes, SessionJournalError } from '../errors.js';
import { DEFAULT_MAX_LINE_BYTES, Journal } from '../storage/journal.js';
import { CHAIN_START, LineDecoder, REPAIR_EVENT, ROTATE_EVENT, type JournalRecord } from '../engine/record-codec.js';
import { DEFAULT_MAX_RECORD_BYTES } from '../engine/record-parts.js';
import { WarningCodes } from '../engine/warnings.js';
import { SessionFold } from '../sessions/session-fold.js';
import type { RedisConnection } from '../storage/redis/connection.js';
import type { RedisLocation } from '../storage/redis/redis-location.js';
import { StreamHistory, currentManifest, readRedisBase, type StreamLine } from '../storage/redis/history-reader.js';
import { parseHead, type ChainHead as StreamHead } from '../storage/redis/scripts.js';
import { decodeStreamEntry, entriesOf } from '../storage/redis/stream-reader.js';
import { ChainChecker, VerifyCodes, shortHash, type Place } from './verify-chain.js';
import { Findings } from './verify-findings.js';
import { checkExpectedHead, type ChainHead, type VerifyOptions, type VerifyReport } from './verify-store.js';

/**
 * `verify` of a store on Redis (docs/FORMAT.md, "The Redis backend"),
 * read-only and without any lock, with the report verifyStore gives for a
 * directory. What a store on Redis holds is its snapshot and the stream
 * after it (a compaction trims what it folds), so verify checks:
 *
 * - the snapshot: the manifest, its chunks against the manifest's bytes and
 *   sha256, the text's own checks (header, footer, count, its sha256), the
 *   header naming the manifest's generation, seq and hash
 *   (snapshot-keys.ts), and every entry restoring as a session (a session
 *   store); where the stream still holds the record at the snapshot's seq
 *   (installed, not yet trimmed), that its hash is the manifest's;
 * - the stream after it: every entry decodes (its id `<seq>-0`, its line,
 *   the framing of commits, spread records), and the hash chain from the
 *   snapshot's head through every record (verify-chain.ts: an edited,
 *   deleted, inserted or moved record), session records against the
 *   reducer;
 * - `{P}:head`, what the next commit chains from: the last record's seq and
 *   hash (HEAD_MISMATCH otherwise).
 *
 * There are no segments (`segments` and `archivedSegments` are 0) and at most
 * one snapshot. A compaction that installs a snapshot and trims while verify
 * reads can make a clean store look damaged: a check that found problems
 * while the manifest changed under it is thrown away, and verify checks
 * again once the compaction lock is free, as for a directory.
 */

const MAX_ATTEMPTS = 5;
const LOCK_POLL_MS = 50;

export async function verifyRedisStore(conn: RedisConnection, options: VerifyOptions = {}): Promise<VerifyReport> {
  for (let attempt = 1; ; attempt++) {
    const before = await generation(conn);
    const report = await verifyOnce(conn, options);
    if (report.ok || (await generation(conn)) === before) {
      if (attempt > 1) report.notes.push({ code: 'VERIFY_RETRIED', file: null, line: null, message: `a compaction installed a snapshot while the store was read: checked ${attempt} times, this report is of the last, consistent check` });
      return report;
    }
    if (attempt >= MAX_ATTEMPTS) {
      throw new SessionJournalError(ErrorCodes.STORE_CHANGING, `${conn.where} was compacted under each of ${MAX_ATTEMPTS} checks; nothing is known to be wrong with it`, { details: { dir: conn.where, attempts: attempt } });
    }
    await compactionEnded(conn, options.lockTimeoutMs ?? 30_000);
  }
}

/** The manifest's generation (and seq), which changes with every installed snapshot. */
async function generation(conn: RedisConnection): Promise<string> {
  const m = await currentManifest(conn);
  return m ? `${m.gen}:${m.seq}` : 'none';
}

/** Resolves once no compaction holds `{P}:lock`, or after `timeoutMs` (the lock's time to live ends a dead compactor's hold). */
async function compactionEnded(conn: RedisConnection, timeoutMs: number): Promise<void> {
  for (let waited = 0; waited < timeoutMs && (await conn.command(['EXISTS', conn.keys.lock])) === 1; waited += LOCK_POLL_MS) {
    await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
  }
}

const linePlace = (line: StreamLine): Place => ({ file: line.place.file, line: null, offset: null, entry: line.place.entry });

async function verifyOnce(conn: RedisConnection, options: VerifyOptions): Promise<VerifyReport> {
  const keys = conn.keys;
  const findings = new Findings(undefined);
  const checker = new ChainChecker((problem, ordinal, at) => findings.add(problem, ordinal, at));
  const fold = new SessionFold(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  const kind = await conn.command(['HGET', keys.meta, 'kind']);
  const sessionStore = kind === null || kind === 'session';
  // The base, then the head, then the stream: each read can only be behind the next (a writer that commits
  // meanwhile moves the head past the stream's end as read, never before; a compaction meanwhile is retried).
  const base = await readRedisBase(conn);
  const headText = await conn.command(['GET', keys.head]);
  const storedHead = parseHead(typeof headText === 'string' ? headText : null);
  let storedHeadFound: string | undefined;
  const total = await conn.command(['XLEN', keys.log]);

  let snapshotHead: { seq: number; h: string } | undefined;
  let afterSeq = 0;
  if (base.kind === 'bad-manifest') {
    findings.add({ code: WarningCodes.SNAPSHOT_UNREADABLE, file: keys.snap, line: null, offset: null, message: `${base.reason}; the stream is checked from its start` });
  } else if (base.kind === 'snapshot') {
    const { manifest, snapshot } = base;
    snapshotHead = { seq: manifest.seq, h: manifest.h };
    afterSeq = manifest.seq;
    if (!snapshot.ok) {
      findings.add({ code: WarningCodes.SNAPSHOT_UNREADABLE, file: keys.snap, line: null, offset: null, message: `${snapshot.reason}: readers start EMPTY at seq ${manifest.seq}` });
    } else if (sessionStore) {
      for (const entry of snapshot.entries) {
        const rejection = fold.restore(entry.value);
        if (rejection) findings.add({ code: VerifyCodes.SNAPSHOT_STATE_MISMATCH, file: entry.place.file, line: entry.place.line, offset: entry.place.offset, message: `an entry that is not a session: ${rejection.message}` });
      }
    }
    await checkFoldedRecord(conn, manifest.seq, manifest.h, findings, options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES);
  }
  if (snapshotHead && snapshotHead.seq > 0) {
    checker.anchor(snapshotHead.h || CHAIN_START, snapshotHead.seq, keys.snap);
    findings.notes.push({ code: 'CHAIN_FROM_SNAPSHOT', file: keys.snap, line: null, message: `the records up to seq ${snapshotHead.seq} were folded into this snapshot and trimmed from the stream by a compaction: the chain is checked from its head (seq ${snapshotHead.seq}) on` });
  }
  let anchored = snapshotHead !== undefined && snapshotHead.seq > 0;

  const history = new StreamHistory(conn, { afterSeq, maxLineBytes: options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES, maxRecordBytes: DEFAULT_MAX_RECORD_BYTES });
  const totalEntries = typeof total === 'number' ? total : 0;
  let ordinal = 0;
  let entriesRead = 0;
  let firstAvailableSeq: number | undefined;
  let wanted: { h: string; ordinal: number } | undefined;
  let last: { seq: number; h: string | undefined } | undefined;
  const otherTypes = new Set<string>();
  const chainLines = (lines: readonly StreamLine[]) => {
    for (const line of lines) {
      if (!anchored) {
        // No snapshot (or an unreadable manifest): the chain starts at the stream's start, anchored only if that is seq 1.
        anchored = true;
        if (line.record.seq === 1) checker.anchor(CHAIN_START, 0);
        else findings.notes.push({ code: 'CHAIN_UNANCHORED', file: keys.log, line: null, message: `the stream starts at seq ${line.record.seq} and no readable snapshot folds the records before it: the chain cannot be checked before that record` });
      }
      ordinal++;
      firstAvailableSeq ??= line.record.seq;
      checker.push({ seq: line.record.seq, h: line.record.hash, raw: line.raw, place: linePlace(line), ordinal });
      if (line.record.seq === options.expectHead?.seq && !wanted) wanted = { h: line.record.hash ?? CHAIN_START, ordinal };
      if (storedHead !== 'invalid' && line.record.seq === storedHead?.seq) storedHeadFound ??= line.record.hash ?? CHAIN_START;
      last = { seq: line.record.seq, h: line.record.hash };
    }
  };
  options.onProgress?.(0, totalEntries);
  for await (const item of history.read()) {
    if (item.kind === 'problem') {
      findings.warning(item.warning, ordinal);
    } else if (item.kind === 'parts') {
      chainLines(item.lines);
    } else if (item.kind === 'record') {
      chainLines(item.lines ?? [item]);
      checkRecord(item.record, linePlace(item), fold, otherTypes, findings, ordinal);
      if (++entriesRead % 4096 === 0) options.onProgress?.(entriesRead, totalEntries);
    }
    // A gap shows in the chain at the record after it (RECORD_MISSING), with its seqs.
  }
  checker.end();
  options.onProgress?.(totalEntries, totalEntries);
  if (otherTypes.size > 0) {
    findings.notes.push({ code: 'NOT_SESSION_RECORDS', file: null, line: null, message: `records of types ${[...otherTypes].sort().join(', ')} are not session records: the chain is checked, snapshot contents are not` });
  }

  const head: ChainHead = last ? { seq: last.seq, h: last.h ?? CHAIN_START } : snapshotHead ? { seq: snapshotHead.seq, h: snapshotHead.h || CHAIN_START } : { seq: 0, h: CHAIN_START };
  checkStoredHead(conn, headText, storedHead, storedHeadFound, snapshotHead, head, findings);
  const expectedHead = options.expectHead && checkExpectedHead(options.expectHead, head, { firstAvailableSeq, wanted }, snapshotHead ? [{ header: snapshotHead }] : [], findings);
  const problems = findings.problems();
  return {
    ok: problems.length === 0,
    problems,
    notes: findings.notes,
    records: ordinal,
    segments: 0,
    archivedSegments: 0,
    snapshots: base.kind === 'none' ? 0 : 1,
    head,
    ...(expectedHead && { expectedHead }),
  };
}

/** What a reader would refuse of an applied record, and the types verify does not fold. */
function checkRecord(record: JournalRecord, place: Place, fold: SessionFold, otherTypes: Set<string>, findings: Findings, ordinal: number): void {
  const where = { file: place.file, line: null, offset: null, entry: place.entry! };
  if (record.type === ROTATE_EVENT) {
    findings.add({ code: WarningCodes.INVALID_PAYLOAD, ...where, message: 'a rotation marker in a Redis stream, where there are no segments: readers skip it' }, ordinal);
  } else if (record.type.startsWith('session.')) {
    const rejection = fold.apply(record);
    if (rejection) findings.add({ code: rejection.code, ...where, message: rejection.message }, ordinal);
  } else if (record.type !== REPAIR_EVENT) {
    otherTypes.add(record.type);
  }
}

/**
 * The record at the snapshot's seq, when the stream still holds it (a
 * compaction installs before it trims): its hash must be the one the
 * snapshot says it folded up to.
 */
async function checkFoldedRecord(conn: RedisConnection, seq: number, h: string, findings: Findings, maxLineBytes: number): Promise<void> {
  if (seq < 1) return;
  const [entry] = entriesOf(await conn.command(['XRANGE', conn.keys.log, `${seq}-0`, `${seq}-0`]));
  if (!entry) return;
  const decoded = decodeStreamEntry(entry, new LineDecoder(), maxLineBytes, conn.keys.log);
  if (decoded.kind !== 'record' || (decoded.record.hash ?? CHAIN_START) === (h || CHAIN_START)) return;
  findings.add({
    code: VerifyCodes.SNAPSHOT_HEADER_MISMATCH,
    file: conn.keys.snap,
    line: null,
    offset: null,
    message: `the snapshot folds up to seq ${seq} with h ${shortHash(h)}, but the stream's record seq ${seq} (entry ${entry.id}) has h ${shortHash(decoded.record.hash)}`,
  });
}

/**
 * `{P}:head`, read after the base and before the stream: writers chain from
 * it, so it must be the snapshot's head or a record verify read, with that
 * hash. A writer that committed after it was read leaves it behind the
 * stream's end, which is fine; a head past the end, behind the snapshot, or
 * with another hash is not.
 */
function checkStoredHead(
  conn: RedisConnection,
  text: unknown,
  stored: StreamHead | undefined | 'invalid',
  foundHash: string | undefined,
  snapshotHead: { seq: number; h: string } | undefined,
  head: ChainHead,
  findings: Findings,
): void {
  const fail = (message: string) => findings.addOverall({ code: VerifyCodes.HEAD_MISMATCH, file: conn.keys.head, line: null, offset: null, message });
  if (stored === 'invalid') return fail(`${JSON.stringify(text)} is not a head (<seq> <h>): the next commit cannot chain from it`);
  if (stored === undefined) {
    if (head.seq > 0) fail(`the head is missing but the store holds records up to seq ${head.seq} (deleted or evicted): writers refuse to write (REDIS_DATA_LOST)`);
    return;
  }
  const snapshotSeq = snapshotHead?.seq ?? 0;
  if (stored.seq > head.seq) return fail(`the head says seq ${stored.seq} but the store ends at seq ${head.seq}: records were removed from the end of ${conn.keys.log}`);
  if (stored.seq < snapshotSeq) return fail(`the head says seq ${stored.seq}, behind the snapshot's seq ${snapshotSeq}: the next commit would number records the snapshot already folds`);
  const hash = foundHash ?? (stored.seq === snapshotSeq ? snapshotHead?.h || CHAIN_START : undefined);
  // A head at a record that did not read is reported there (the entry's own problem).
  if (hash !== undefined && (stored.hash || CHAIN_START) !== hash) {
    fail(`the head says seq ${stored.seq} h ${shortHash(stored.hash)}, but the record there has h ${shortHash(hash)}: the next commit would not chain from it`);
  }
}

/**
 * The chain head of a store on Redis as writers see it, as `verify --head`
 * prints it: a read-only open (snapshot, then the stream), the seq and hash
 * the next record will chain from.
 */
export async function readRedisChainHead(redis: RedisLocation, options: { maxLineBytes?: number } = {}): Promise<ChainHead> {
  const journal = await Journal.open({
    redis,
    readOnly: true,
    create: false,
    fsync: false, // read-only: the server's durability is the writers' concern
    maxLineBytes: options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES,
    flushOnExit: false,
    onWarning: () => undefined,
    consumer: { reset: () => undefined, restore: () => undefined, apply: () => undefined },
  });
  try {
    return { seq: journal.lastSeq, h: journal.lastHash };
  } finally {
    await journal.close();
  }
}
