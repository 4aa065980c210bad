import { ErrorCodes, SessionJournalError } from '../../errors.js';
import { restoreEntries } from '../../engine/commit-apply.js';
import { CommitCounters } from '../../engine/commit-encoder.js';
import type { QueuedEntry } from '../../engine/commit-queue.js';
import { FORMAT_VERSION } from '../../engine/record-codec.js';
import { DurabilityOwed, type Commit, type CommitContext, type JournalStorage, type StorageEnv, type StorageFactory } from '../../engine/storage-port.js';
import { WarningCodes } from '../../engine/warnings.js';
import { RedisBatchEncoder, type EncodedBatch } from './batch-encoder.js';
import { connectRedis, redactUrl, type RedisConnection } from './connection.js';
import { PROOF_FIELD, storeKeys } from './keys.js';
import type { RedisLocation } from './redis-location.js';
import { PRUNED_FIELD, StoreScripts, parseHead, type AppendBatch, type ChainHead } from './scripts.js';
import { checkServerSettings } from './server-config.js';
import { BASE_READ_ATTEMPTS, readManifest, readRedisBase } from './snapshot-keys.js';
import { StreamReader } from './stream-reader.js';

export interface RedisStorageOptions extends RedisLocation {
  /** False: the server's durability is not checked (no REDIS_NOT_DURABLE). */
  fsync: boolean;
  /** The store's kind (`session`, `kv`, `event`), recorded in `{P}:meta` by the first writer. */
  kind: string | undefined;
  /** The compactor's fencing token: its appends succeed only while it holds the compaction lock. */
  fenceToken?: string;
}

/** A storage factory for a store on Redis (docs/FORMAT.md, "The Redis backend"). */
export const redisStorage =
  (options: RedisStorageOptions): StorageFactory =>
  (env) =>
    new RedisStorage(options, env);

const MAX_BATCH_BYTES = 64 * 1024;
/**
 * Appends in a row that lost the race for the head before a commit gives up
 * (each loser catches up first, so only a store written faster than this
 * process can read it loses that often).
 */
const MAX_LOST_RACES = 200;

/** A commit whose reply never came: it landed whole or not at all (one script). */
interface InDoubt {
  encoded: EncodedBatch;
  entries: QueuedEntry[];
  /** The commit's context: a catch-up that settles the doubt acknowledges through it. */
  ctx: CommitContext;
}

/**
 * Commits in the store that no WAIT confirmed: the last one's batch (a
 * replica that has it has every earlier one, and it is what proveReplicated
 * finds again before it proves anything) and its ticket.
 */
interface Owed {
  ticket: number;
  batch: AppendBatch;
  ctx: CommitContext;
}

/** Where a commit written or maybe written is in the store now (locate). */
type Whereabouts = 'here' | 'absent' | 'later' | 'unknown';

/**
 * A store on Redis as the journal's storage: the records in one stream,
 * read at open after the snapshot (its chunks), caught up with XRANGE, and
 * written by the append script, which appends a group commit only if the
 * head is the one it chains from: the compare-and-set that keeps seq and
 * the hash chain gapless across hosts without a lock for writers.
 */
export class RedisStorage implements JournalStorage {
  readonly location: string;
  private readonly options: RedisStorageOptions;
  private readonly env: StorageEnv;
  private readonly encoder: RedisBatchEncoder;
  private conn: RedisConnection | undefined;
  private scripts: StoreScripts | undefined;
  private reader: StreamReader | undefined;
  private baseSeq = 0;
  private snapshotBytes = 0;
  private inDoubt: InDoubt | undefined;
  /**
   * With `wait`: commits that are in the store but that no WAIT confirmed
   * (REDIS_NOT_REPLICATED, or the WAIT's connection lost). Proved by the
   * next WAIT that succeeds: a later commit's (it chained from them, and
   * the reader checks that the store still holds what it read), or one sent
   * for them alone when nothing else is queued, once they are found in the
   * store again (proveReplicated). A failover to a replica that lacked them
   * loses them: then they fail for good (REDIS_DATA_LOST).
   */
  private owed: Owed | undefined;
  /** The last append lost the race for the head: catch up before the next. */
  private behind = false;
  private lostRaces = 0;
  /**
   * Catch-up and commits take turns: a catch-up that read this process's
   * commit before its reply arrived would apply it twice (the in-process
   * counterpart of the file backend's lock, for readers).
   */
  private turn: Promise<unknown> = Promise.resolve();
  /** The catch-up waiting for its turn, if any (see follow). */
  private queuedFollow: Promise<void> | undefined;
  private readonly counters = new CommitCounters();

  constructor(options: RedisStorageOptions, env: StorageEnv) {
    this.options = options;
    this.env = env;
    this.location = `${redactUrl(options.url)} {${storeKeys(options.prefix).prefix}}`;
    this.encoder = new RedisBatchEncoder({ writerJson: JSON.stringify(env.writer), maxLineBytes: env.maxLineBytes, hashChain: env.hashChain });
  }

  get lastSeq(): number {
    return this.reader?.lastSeq ?? 0;
  }

  get lastHash(): string {
    return this.reader?.lastHash ?? '';
  }

  get recordsSinceBase(): number {
    return this.lastSeq - this.baseSeq;
  }

  get growth(): { journalBytes: number; snapshotBytes: number } {
    return { journalBytes: this.counters.stats.bytesWritten, snapshotBytes: this.snapshotBytes };
  }

  get stats(): Readonly<{ commits: number; recordsWritten: number; bytesWritten: number }> {
    return this.counters.stats;
  }

  get hasDoubt(): boolean {
    return this.inDoubt !== undefined || this.owed !== undefined;
  }

  canWrite(type: string, payloadBytes: number): boolean {
    return this.encoder.canWrite(type, payloadBytes);
  }

  // ---- open and replay ---------------------------------------------------

  async load(create: boolean): Promise<void> {
    const conn = await connectRedis({ url: this.options.url, prefix: this.options.prefix, connectTimeoutMs: this.options.connectTimeoutMs, commandTimeoutMs: this.options.commandTimeoutMs, onWarning: (w) => this.env.warn(w) });
    this.conn = conn;
    try {
      await checkServerSettings(conn, { fsync: this.options.fsync, warn: (w) => this.env.warn(w) });
      if (!this.env.readOnly) {
        this.scripts = new StoreScripts(conn);
        await this.scripts.load();
      }
      await this.checkKind(create && !this.env.readOnly);
      await this.loadBase();
    } catch (err) {
      this.release();
      throw err;
    }
  }

  /**
   * `{P}:meta` says what kind of store this is; the first writer records
   * it. A store of another kind is refused, as the compactor refuses a
   * directory of another kind (STORE_KIND_MISMATCH).
   */
  private async checkKind(create: boolean): Promise<void> {
    const conn = this.conn!;
    const kind = this.options.kind;
    if (create && kind) await conn.command(['HSETNX', conn.keys.meta, 'kind', kind]).then(() => conn.command(['HSETNX', conn.keys.meta, 'format', String(FORMAT_VERSION)]));
    const stored = await conn.command(['HGET', conn.keys.meta, 'kind']);
    if (kind && typeof stored === 'string' && stored !== kind) {
      throw new SessionJournalError(ErrorCodes.STORE_KIND_MISMATCH, `${this.location} is a ${stored} store, not a ${kind} store`, { details: { dir: this.location, kind: stored, expected: kind } });
    }
  }

  /** The newest snapshot, then the stream after it; again from a newer snapshot if a compaction trimmed the stream meanwhile. */
  private async loadBase(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const after = await this.restoreSnapshot();
      this.reader = this.newReader(after);
      const outcome = await this.reader.catchUp();
      if (outcome.kind === 'read') return;
      const newer = await this.newerSnapshotThan(after.seq);
      if (!newer) throw this.dataLost(outcome.reason);
      if (attempt >= BASE_READ_ATTEMPTS) {
        throw new SessionJournalError(ErrorCodes.STORE_CHANGING, `${this.location} was compacted under every one of ${BASE_READ_ATTEMPTS} attempts to read it; try again`, { details: { dir: this.location, attempts: attempt } });
      }
    }
  }

  /** Restores the snapshot's entries into the consumer; returns the head it folds up to (seq 0 without one). */
  private async restoreSnapshot(): Promise<ChainHead> {
    const conn = this.conn!;
    const base = await readRedisBase(conn); // a snapshot replaced while it was read is read again from the newer one
    // Only now, with the base in hand: a read that failed (STORE_CHANGING, REDIS_UNAVAILABLE) leaves the view as it was, behind but whole.
    this.env.consumer.reset();
    this.snapshotBytes = 0;
    this.baseSeq = 0;
    if (base.kind === 'none') return { seq: 0, hash: '' };
    if (base.kind === 'bad-manifest') {
      this.env.warn({ code: WarningCodes.SNAPSHOT_UNREADABLE, message: `${base.reason}; replaying the stream from its start`, file: conn.keys.snap });
      return { seq: 0, hash: '' };
    }
    const { manifest, snapshot } = base;
    this.baseSeq = manifest.seq;
    if (!snapshot.ok) {
      // No older base to fall back on (an install deletes the previous generation): read on after it, as a directory does when no base is left.
      this.env.warn({
        code: WarningCodes.SNAPSHOT_UNREADABLE,
        message: `${snapshot.reason}: the state starts EMPTY at seq ${manifest.seq} and everything folded into this snapshot is missing (restore ${conn.keys.snap} and its chunks from a backup); the stream after it is read`,
        file: conn.keys.snap,
      });
      return { seq: manifest.seq, hash: manifest.h };
    }
    restoreEntries(this.env.consumer, snapshot.entries, (w) => this.env.warn(w));
    this.snapshotBytes = snapshot.bytes;
    return { seq: manifest.seq, hash: manifest.h };
  }

  private newReader(after: ChainHead): StreamReader {
    const consumer = this.env.consumer;
    return new StreamReader({
      conn: this.conn!,
      consumer, // a consumer that throws is a rejection there (commit-apply.ts)
      after,
      maxLineBytes: this.env.maxLineBytes,
      maxRecordBytes: this.env.maxRecordBytes,
      warn: (w) => this.env.warn(w),
    });
  }

  /** True when the manifest now folds past `seq`: the stream was trimmed by a compaction, not lost. */
  private async newerSnapshotThan(seq: number): Promise<boolean> {
    const read = await readManifest(this.conn!);
    return read.kind === 'ok' && read.manifest.seq > seq;
  }

  private dataLost(reason: string): SessionJournalError {
    return new SessionJournalError(ErrorCodes.REDIS_DATA_LOST, `records of ${this.location} are missing (${reason}): evicted, deleted, or trimmed without a snapshot; restore the keys from a backup`, { details: { dir: this.location } });
  }

  // ---- catching up -------------------------------------------------------

  /**
   * A catch-up that is queued and not started yet is shared: it starts after
   * this call, so it brings in everything acknowledged before it (request
   * handlers that catch up together cost one round trip, not one each).
   */
  follow(): Promise<void> {
    if (this.queuedFollow) return this.queuedFollow;
    const queued: Promise<void> = this.inTurn(() => {
      if (this.queuedFollow === queued) this.queuedFollow = undefined;
      return this.followNow();
    });
    this.queuedFollow = queued;
    return queued;
  }

  private async followNow(): Promise<void> {
    if (this.inDoubt) await this.settleDoubt(this.inDoubt.ctx);
    const reader = this.requireReader();
    const outcome = await reader.catchUp();
    if (outcome.kind !== 'read') {
      // Owed commits read again from a snapshot would no longer be checked by the reader: find them first.
      if (this.owed) await this.findOwed();
      // A compaction trimmed what this process had not read: start over from its snapshot (the consumer keeps what it has not committed).
      if (!(await this.newerSnapshotThan(reader.lastSeq))) throw this.dataLost(outcome.reason);
      await this.loadBase();
    }
    // Caught up: the next commit chains from here without reading first.
    this.behind = false;
  }

  private requireReader(): StreamReader {
    if (!this.reader) throw new SessionJournalError(ErrorCodes.CLOSED, `${this.location} is not open`);
    return this.reader;
  }

  // ---- writing -----------------------------------------------------------

  /** Runs `fn` after every catch-up and commit started before it. */
  private inTurn<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.turn.then(fn, fn);
    this.turn = run.catch(() => undefined);
    return run;
  }

  commit(ctx: CommitContext): Promise<Commit | undefined> {
    return this.inTurn(() => this.commitNow(ctx));
  }

  private async commitNow(ctx: CommitContext): Promise<Commit | undefined> {
    if (!this.scripts) throw new SessionJournalError(ErrorCodes.CLOSED, `${this.location} was opened read-only`);
    if (this.inDoubt) await this.settleDoubt(ctx);
    for (;;) {
      // The append is optimistic: it chains from what this process has read, and the script refuses it if the head moved.
      if (this.behind || ctx.decide) await this.followNow();
      const queuedBefore = ctx.queue.lastTicket;
      ctx.decide?.();
      // A decided commit goes whole, in one append: the decision holds for the head it was made on, and only there.
      const batch = ctx.queue.take(ctx.decide ? Number.POSITIVE_INFINITY : MAX_BATCH_BYTES);
      if (batch.length === 0) {
        if (this.owed) await this.proveReplicated();
        return undefined;
      }
      const reader = this.requireReader();
      const encoded = this.encoder.encode(reader.head, batch);
      // A reply to the append comes over the connection it was sent on: WAIT then counts it only on that one.
      const sentOn = this.conn!.connectionNumber;
      let outcome;
      try {
        outcome = await this.scripts.append(reader.head, encoded.batch, this.options.fenceToken);
      } catch (err) {
        // Sent and no reply: it ran whole or not at all; the next attempt reads which.
        if (err instanceof SessionJournalError && err.details?.maybeExecuted !== false) this.inDoubt = { encoded, entries: batch, ctx };
        else ctx.queue.restore(batch);
        throw err;
      }
      switch (outcome.kind) {
        case 'ok':
          this.lostRaces = 0;
          this.landed(ctx, encoded, batch);
          return { kind: 'written', batch, durable: () => this.replicatedOrOwed({ ticket: batch[batch.length - 1]!.ticket, batch: encoded.batch, ctx }, sentOn) };
        case 'moved':
          this.behind = true;
          if (++this.lostRaces >= MAX_LOST_RACES) {
            this.lostRaces = 0;
            ctx.queue.restore(batch);
            throw new SessionJournalError(ErrorCodes.LOCK_TIMEOUT, `${MAX_LOST_RACES} appends in a row to ${this.location} found the head moved by other writers; nothing of them was acknowledged`, { details: { dir: this.location } });
          }
          if (!ctx.decide || !ctx.decideAgain) {
            ctx.queue.restore(batch);
            return { kind: 'again' };
          }
          // Decided on a head that moved: what was decided is dropped and decided again on the view caught up (storage-port.ts, decideAgain).
          ctx.queue.restore(batch.filter((e) => e.ticket <= queuedBefore));
          continue;
        case 'fenced':
          ctx.queue.restore(batch);
          throw new SessionJournalError(ErrorCodes.LOCK_COMPROMISED, `the compaction lock of ${this.location} was taken over (fence ${outcome.fence}); this compactor's records were not appended`, { details: { dir: this.location } });
        case 'lost':
          ctx.queue.restore(batch);
          throw this.dataLost(outcome.reason);
      }
    }
  }

  /** A commit in place: the reader moves past it, and the entries take their seqs. */
  private landed(ctx: CommitContext, encoded: EncodedBatch, entries: QueuedEntry[]): void {
    entries.forEach((entry, i) => (entry.seq = encoded.commit.seqs[i]!));
    this.requireReader().wrote(encoded.batch);
    this.counters.written(encoded.commit);
    ctx.committed(entries, this.conn!.keys.log);
  }

  /**
   * A commit whose reply never came, read back. First the connections that
   * died are closed on the server (retireLostConnections): the commit's
   * bytes may still be on their way to the script, and could otherwise land
   * after this read. Then locate() reads where it is. Landed, it is
   * acknowledged (a reply read after the write implies the write was
   * flushed, docs/FORMAT.md; with `wait`, once a replica has it too); not,
   * its entries go back to the front of the queue. When nothing can tell
   * any more (the doubt outlived two compactions), the entries are failed as
   * a failed sync is: REDIS_COMMIT_UNKNOWN, and no later flush() resolves
   * until the store is reopened (its view then is the store's).
   */
  private async settleDoubt(ctx: CommitContext): Promise<void> {
    const doubt = this.inDoubt!;
    const conn = this.conn!;
    const first = doubt.encoded.batch.firstSeq;
    await conn.retireLostConnections();
    const on = conn.connectionNumber;
    const where = await this.locate(doubt.encoded.batch);
    this.inDoubt = undefined;
    this.behind = true;
    const landed = where === 'here' ? true : where === 'unknown' ? undefined : false;
    if (landed === true) {
      this.landed(ctx, doubt.encoded, doubt.entries);
      const owed: Owed = { ticket: Math.max(...doubt.entries.map((e) => e.ticket)), batch: doubt.encoded.batch, ctx };
      try {
        await this.replicatedSince(on); // read back on this connection: a proof write on it, then WAIT
      } catch (err) {
        this.owe(owed);
        throw err;
      }
      this.provedUpTo(owed.ticket);
      ctx.queue.markDurable(owed.ticket);
      return;
    }
    for (const e of doubt.entries) e.seq = 0;
    if (landed === false) {
      ctx.queue.restore(doubt.entries);
      return;
    }
    const unknown = new SessionJournalError(
      ErrorCodes.REDIS_COMMIT_UNKNOWN,
      `a commit to ${this.location} whose reply was lost (seq ${first}, ${doubt.entries.length} mutations) cannot be read back: compactions trimmed it and dropped the record of its writer's last commit; it may or may not be in the store, so it is not written again; reopen the store`,
      { details: { dir: this.location, seq: first, mutations: doubt.entries.length } },
    );
    ctx.syncFailed(Math.max(...doubt.entries.map((e) => e.ticket)), unknown);
    this.env.warn({ code: WarningCodes.COMMIT_FAILED, message: unknown.message, file: conn.keys.log });
  }

  /**
   * Where `batch` is in the store now. The script appended all of it or
   * nothing, right after the head it chained from, so it is `here` exactly
   * when the entry at its first seq is its own first line (tag, writer and
   * hash included). When a compaction trimmed that entry, `{P}:writers`
   * tells: the writer's last commit begins at that seq exactly when it is
   * in the store; `later` when that is a later commit of this writer (which
   * decides nothing about this one here). `unknown`: neither can tell any
   * more (two compactions dropped the writer's record).
   */
  private async locate(batch: AppendBatch): Promise<Whereabouts> {
    const conn = this.conn!;
    const { firstSeq: first, lines, writer } = batch;
    const [range, mark, pruned, headText] = await conn.transaction([
      ['XRANGE', conn.keys.log, `${first}-0`, `${first}-0`],
      ['HGET', conn.keys.writers, writer ?? ''],
      ['HGET', conn.keys.writers, PRUNED_FIELD],
      ['GET', conn.keys.head],
    ]);
    const entry = Array.isArray(range) ? range[0] : undefined;
    const fields = Array.isArray(entry) && Array.isArray(entry[1]) ? entry[1] : [];
    const line = fields[0] === 'r' ? fields[1] : undefined;
    const head = parseHead(typeof headText === 'string' ? headText : null);
    const headSeq = head === 'invalid' ? Number.MAX_SAFE_INTEGER : (head?.seq ?? 0);
    if (line !== undefined) return line === lines[0] ? 'here' : 'absent';
    if (headSeq < first) return 'absent'; // nothing was ever written at that seq
    if (mark === String(first)) return 'here'; // trimmed; this writer's last commit begins there
    if (mark !== null && Number(mark) > first) return 'later';
    if (mark !== null || first > Number(pruned ?? 0)) return 'absent'; // its last commit is an older one, or it had none there
    return 'unknown';
  }

  /**
   * A written commit's durable(): replicated, or owed (DurabilityOwed: its
   * waiters fail, the store goes on, and a later WAIT proves it).
   */
  private async replicatedOrOwed(commit: Owed, sentOn: number): Promise<void> {
    try {
      await this.replicated(sentOn);
    } catch (err) {
      this.owe(commit);
      throw new DurabilityOwed(err as SessionJournalError);
    }
    this.provedUpTo(commit.ticket);
  }

  /**
   * Nothing else to write: the owed commits are found in the store, then a
   * proof write and a WAIT on the same connection prove a replica has them
   * (that server had them before the proof write); they are acknowledged
   * then. Over a connection that changed meanwhile nothing is proved.
   */
  private async proveReplicated(): Promise<void> {
    const owed = this.owed!;
    const on = this.conn!.connectionNumber;
    const where = await this.findOwed();
    if (where === 'later') return; // a later commit of this writer is in flight: its WAIT decides
    await this.replicatedSince(on);
    this.provedUpTo(owed.ticket);
    owed.ctx.queue.markDurable(owed.ticket);
  }

  /**
   * The owed commits, looked for in the store. Not there, they were lost
   * (a failover to a replica that lacked them): they fail for good, as a
   * failed sync does, since this process's view holds what the store does
   * not (REDIS_DATA_LOST, reopen the store). Unknown, they fail as a commit
   * in doubt that cannot be read back does (REDIS_COMMIT_UNKNOWN).
   */
  private async findOwed(): Promise<Whereabouts> {
    const owed = this.owed!;
    const where = await this.locate(owed.batch);
    if (where === 'here' || where === 'later') return where;
    this.owed = undefined;
    const failure =
      where === 'absent'
        ? this.dataLost(`the commit at seq ${owed.batch.firstSeq}, in the store but never confirmed by a replica, is no longer there: a failover to a replica that lacked it`)
        : new SessionJournalError(ErrorCodes.REDIS_COMMIT_UNKNOWN, `a commit to ${this.location} at seq ${owed.batch.firstSeq} that no replica confirmed cannot be found any more: compactions trimmed it and dropped the record of its writer's last commit; reopen the store`, {
            details: { dir: this.location, seq: owed.batch.firstSeq },
          });
    this.env.warn({ code: WarningCodes.COMMIT_FAILED, message: failure.message, file: this.conn!.keys.log });
    throw owed.ctx.syncFailed(owed.ticket, failure);
  }

  /** Commits up to `commit.ticket` are in the store, not known replicated; the last of them is the one to find again. */
  private owe(commit: Owed): void {
    if (!this.owed || commit.ticket > this.owed.ticket) this.owed = commit;
  }

  /**
   * A WAIT succeeded for a write after the commits up to `ticket`: a replica
   * has them all. A commit after `ticket` still owed (one written meanwhile,
   * by appendDecided beside the commit loop) stays owed.
   */
  private provedUpTo(ticket: number): void {
    if (this.owed && this.owed.ticket <= ticket) this.owed = undefined;
  }

  /**
   * With `wait`, a write counts once that many replicas have it (WAIT);
   * otherwise at once. `wroteOn`: the connection the write went over, when
   * known; on any other, a proof write goes first (waitForReplicas).
   */
  /**
   * A proof write and WAIT for what a read on connection `on` found: the
   * server read from had it before the proof write only when the
   * connection is still that one.
   */
  private async replicatedSince(on: number): Promise<void> {
    if (!this.options.wait || this.options.wait.replicas <= 0) return;
    await this.replicated(undefined);
    if (this.conn!.connectionNumber !== on) {
      throw new SessionJournalError(ErrorCodes.REDIS_NOT_REPLICATED, `the connection to ${this.location} changed while proving a commit replicated; the next flush() proves it again`, { details: { dir: this.location } });
    }
  }

  private async replicated(wroteOn: number | undefined): Promise<void> {
    const wait = this.options.wait;
    if (!wait || wait.replicas <= 0) return;
    const conn = this.conn!;
    const acked = await conn.waitForReplicas(wait.replicas, wait.timeoutMs, wroteOn, ['HSET', conn.keys.meta, PROOF_FIELD, this.env.writer]);
    if (typeof acked === 'number' && acked >= wait.replicas) return;
    throw new SessionJournalError(ErrorCodes.REDIS_NOT_REPLICATED, `a commit to ${this.location} reached ${String(acked)} of ${wait.replicas} replicas within ${wait.timeoutMs} ms: it is on the primary, not known to survive a failover`, {
      details: { dir: this.location, replicas: acked, wanted: wait.replicas },
    });
  }

  release(): void {
    const conn = this.conn;
    this.conn = undefined;
    this.reader = undefined;
    this.scripts = undefined;
    conn?.close().catch(() => undefined);
  }
}
