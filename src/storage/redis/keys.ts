import { ErrorCodes, SessionJournalError } from '../../errors.js';

/**
 * The names of a store's keys on Redis (docs/FORMAT.md, "The Redis
 * backend", "Keys"), defined once: the writer, the readers, the compactor
 * and the tools take them from here, as the file backend takes its names
 * from store-layout.ts.
 *
 * Every key begins with `{P}:`. The braces are Redis Cluster's hash tag: all
 * keys of a store hash to one slot, so the scripts that touch several of
 * them run on a cluster too.
 */
export interface StoreKeys {
  /** The validated prefix P, without braces. */
  readonly prefix: string;
  /**
   * Hash: `format` and `kind` of the store; `proof`, the last writer that
   * wrote it only so that a WAIT on a new connection counts something
   * (redis-storage.ts, replicated). Readers ignore `proof`.
   */
  readonly meta: string;
  /** Stream: the records, one entry per line, entry id `<seq>-0`. */
  readonly log: string;
  /** String: `<seq> <h>`, the chain head. */
  readonly head: string;
  /** Hash: the snapshot manifest (seq, h, gen, chunks, bytes, sha256). */
  readonly snap: string;
  /** String: the fencing counter, INCRed by each compaction that takes the lock. */
  readonly fence: string;
  /** String: the compaction lock, holding its holder's fencing token, with a time to live. */
  readonly lock: string;
  /** Hash: lines compaction could not fold, kept before it trimmed them from the stream (field: the entry id). */
  readonly kept: string;
  /**
   * Hash: each writer's last commit, field `<c> <w>` (its commit tag and
   * name), value the seq of that commit's first line; field `~pruned`: the
   * seq up to which compactions dropped such fields. How a writer whose
   * reply was lost learns that its commit landed after a compaction trimmed
   * it from the stream.
   */
  readonly writers: string;
  /** String: chunk `index` (from 0) of snapshot generation `gen`. */
  chunk(gen: number, index: number): string;
  /** What every chunk key of generation `gen` begins with (a place name for warnings). */
  chunkPrefix(gen: number): string;
}

/** The field of `{P}:meta` a writer sets before a WAIT that must cover writes made over an older connection. */
export const PROOF_FIELD = 'proof';

/** 1 to 128 characters of [A-Za-z0-9._:-]: no braces (they would move the hash tag), no spaces, nothing a shell or a URL must quote. */
const PREFIX_RE = /^[A-Za-z0-9._:-]{1,128}$/;

/** The prefix, or INVALID_OPTION (option `redis.prefix`) saying what a prefix may be. */
export function validatePrefix(prefix: unknown): string {
  if (typeof prefix === 'string' && PREFIX_RE.test(prefix)) return prefix;
  const shown = typeof prefix === 'string' ? JSON.stringify(prefix.length > 140 ? `${prefix.slice(0, 140)}…` : prefix) : typeof prefix;
  throw new SessionJournalError(ErrorCodes.INVALID_OPTION, `redis.prefix must be 1 to 128 characters of A-Z a-z 0-9 . _ : -, got ${shown}`, { details: { option: 'redis.prefix' } });
}

/** The key names of the store under `prefix` (validated: INVALID_OPTION). */
export function storeKeys(prefix: string): StoreKeys {
  const p = validatePrefix(prefix);
  const base = `{${p}}:`;
  const chunkPrefix = (gen: number): string => {
    if (!Number.isSafeInteger(gen) || gen < 1) throw new RangeError(`snapshot generation must be a positive integer, got ${gen}`);
    return `${base}snap:${gen}:`;
  };
  return Object.freeze({
    prefix: p,
    meta: `${base}meta`,
    log: `${base}log`,
    head: `${base}head`,
    snap: `${base}snap`,
    fence: `${base}fence`,
    lock: `${base}lock`,
    kept: `${base}kept`,
    writers: `${base}writers`,
    chunk: (gen: number, index: number): string => {
      if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`chunk index must be an integer >= 0, got ${index}`);
      return `${chunkPrefix(gen)}${index}`;
    },
    chunkPrefix,
  });
}
