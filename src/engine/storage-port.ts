import type { SessionJournalError } from '../errors.js';
import type { CommitQueue, QueuedEntry } from './commit-queue.js';
import type { JournalConsumer } from './journal-consumer.js';
import type { JournalWarning } from './warnings.js';

/**
 * The storage port: where a journal's records live and what makes a group
 * commit atomic and durable there. The engine (group-commit.ts) owns the
 * queue, acknowledgements, retries and close; a storage owns replay,
 * catch-up and the commit itself. Two implement it: a store directory
 * (src/storage/file/) and a Redis server (src/storage/redis/).
 */
export interface JournalStorage {
  /** Where the store is, for messages and `Journal.dir`: a directory, or `redis://host:port` + key prefix. */
  readonly location: string;
  /** Seq of the last record applied or written. */
  readonly lastSeq: number;
  /** Hash of the last record applied or written (the chain head; empty before any). */
  readonly lastHash: string;
  /** Records applied from the journal (not the snapshot) since open. */
  readonly recordsSinceBase: number;
  /** Journal bytes not yet folded into a snapshot, and the snapshot's size: auto-compaction's inputs. */
  readonly growth: { journalBytes: number; snapshotBytes: number };
  readonly stats: Readonly<{ commits: number; recordsWritten: number; bytesWritten: number }>;
  /** True while a commit of this process waits to be proved in place or written again. */
  readonly hasDoubt: boolean;
  /** Whether a record of `type` with a payload of `payloadBytes` can be written (over several lines if need be). */
  canWrite(type: string, payloadBytes: number): boolean;

  /** Opens (creating when asked) and replays into the consumer. Throws for the store's place or I/O, never for content. */
  load(create: boolean, pace?: (progress: number) => Promise<void> | undefined): Promise<void>;
  /** The same, blocking: only storages whose reads are local have it. */
  loadSync?(create: boolean): void;
  /** Applies what other processes committed since the last look. */
  follow(): Promise<void>;
  /** The same, blocking (local storages only). */
  followSync?(): void;

  /**
   * One commit attempt, exclusive against every other writer of the store:
   * apply what others committed, settle a commit of this process left in
   * doubt, let `ctx.decide` queue entries chosen on that state, take one
   * batch from `ctx.queue` and write it. Undefined: nothing to write.
   */
  commit(ctx: CommitContext): Promise<Commit | undefined>;
  /** The same, blocking (local storages only). */
  commitSync?(ctx: CommitContext): CommitSync | undefined;
  /** Rotation (a directory's segments): only storages with segments have it. */
  rotate?(time: number, onSyncFailure: (failure: SessionJournalError) => void): Promise<{ closed: number; next: number; seq: number; hash: string }>;

  /** Lets go of files, connections and timers; a pending sync still completes. */
  release(): void;
}

/** What a storage may do with the engine's queue during one commit. */
export interface CommitContext {
  readonly queue: CommitQueue;
  /** Runs after the catch-up, before the batch is taken (appendDecided). */
  readonly decide?: () => void;
  /**
   * `decide` may run again: an optimistic storage whose append lost the race
   * for the head drops what it queued, catches up and runs it again, instead
   * of writing a decision made on a head that moved (appendDecided's
   * `repeatable`).
   */
  readonly decideAgain?: boolean;
  /** Own entries just landed, right after every record before them was applied. */
  committed(entries: readonly QueuedEntry[], where: string): void;
  /** A sync failed: entries up to `ticket` are never acknowledged; returns the failure to throw. */
  syncFailed(ticket: number, failure: SessionJournalError): SessionJournalError;
}

/**
 * A batch in place: `durable()` resolves once it is durable, or rejects with
 * a coded error. A coded error is final, as a failed fsync is (the store
 * acknowledges nothing more until it is reopened); a DurabilityOwed is not.
 */
export type Commit = { kind: 'written'; batch: QueuedEntry[]; durable(): Promise<void> } | { kind: 'again' };

/**
 * What `durable()` rejects with when the batch is in the store but not yet
 * known to have the durability asked for, and a later proof can still show
 * it does: Redis's WAIT, where replication is one ordered stream, so a
 * replica that has a later write has every earlier one. Whoever waits for
 * the batch gets `failure`; the store goes on. The storage keeps `hasDoubt`
 * true until it proves the batch durable in a later commit() (and marks it
 * so in the queue), or a later batch's durability covers it.
 */
export class DurabilityOwed extends Error {
  constructor(readonly failure: SessionJournalError) {
    super(failure.message);
    this.name = 'DurabilityOwed';
  }
}

export type CommitSync = { kind: 'written'; batch: QueuedEntry[]; durableSync(): void } | { kind: 'again' };

/** What the engine gives a storage when it makes one. */
export interface StorageEnv {
  readonly consumer: JournalConsumer;
  readonly readOnly: boolean;
  readonly maxLineBytes: number;
  readonly maxRecordBytes: number;
  readonly hashChain: boolean;
  /** `pid@host`: the writer named in this process's records. */
  readonly writer: string;
  readonly onReplayProgress: ((done: number, total: number) => void) | undefined;
  warn(warning: JournalWarning): void;
}

export type StorageFactory = (env: StorageEnv) => JournalStorage;
