import { crypto } from '../../lazy.js';
import { ErrorCodes, SessionJournalError } from '../../errors.js';
import type { RedisConnection, RedisReply } from './connection.js';

/**
 * The server-side scripts of the Redis protocol (docs/FORMAT.md, "The Redis
 * backend"): what must be decided and written in one atomic step. Redis runs
 * a script with nothing else in between, and replicates and persists its
 * writes as one unit, so each check below holds for the writes after it.
 *
 * Each script begins with `#!lua` (Redis 7): a script that may write is then
 * refused whole, before it runs, when the server is out of memory, instead
 * of failing half-way through its writes (Redis does not undo the writes of
 * a script that fails). For the same reason the append script checks its
 * whole batch before its first XADD.
 *
 * Sent with EVALSHA (the scripts are loaded once with SCRIPT LOAD), and with
 * EVAL when the server answers NOSCRIPT (it restarted, or SCRIPT FLUSH), which
 * loads them again as a side effect.
 */

/** The chain head `{P}:head` holds: the last record's seq and hash (`<seq> <h>`; `h` empty when the chain is off). */
export interface ChainHead {
  seq: number;
  hash: string;
}

/** The text of a head, '' for a store with no record yet. */
export function formatHead(head: ChainHead | undefined): string {
  return head ? `${head.seq} ${head.hash}` : '';
}

/** A head read from `{P}:head` (nil or '' for none), or 'invalid' for text that is not one. */
export function parseHead(text: string | null | undefined): ChainHead | undefined | 'invalid' {
  if (text === null || text === undefined || text === '') return undefined;
  const m = /^([1-9][0-9]{0,15}) ([A-Za-z0-9_-]*)$/.exec(text);
  if (!m) return 'invalid';
  const seq = Number(m[1]);
  return Number.isSafeInteger(seq) ? { seq, hash: m[2]! } : 'invalid';
}

/** The field of `{P}:writers` that says up to which seq compactions dropped writers' fields (not a writer: tags are base 36). */
export const PRUNED_FIELD = '~pruned';

/** A commit ready to append: its lines (without newlines), numbered from `firstSeq`, and the head after them. */
export interface AppendBatch {
  firstSeq: number;
  lines: readonly string[];
  head: ChainHead;
  /** The writer's field in `{P}:writers` (`<c> <w>`), set to firstSeq with the commit ('' or absent: not recorded). */
  writer?: string;
}

export type AppendOutcome =
  /** Appended and the head moved: acknowledged once the reply arrived (appendfsync always: on disk). */
  | { kind: 'ok' }
  /** Nothing written: the head is not the one the batch chains from. `head` is the current one: catch up, re-encode, try again. */
  | { kind: 'moved'; head: ChainHead | undefined }
  /** Nothing written: the token is no longer the fence's and the lock's (another compaction took over): LOCK_COMPROMISED. */
  | { kind: 'fenced'; fence: string; lock: string }
  /** Nothing written: the head and the stream no longer go together (a key evicted or deleted): REDIS_DATA_LOST. */
  | { kind: 'lost'; reason: string };

/** What the snapshot install decided. */
export type InstallOutcome =
  | { kind: 'ok' }
  /** The token lost the fence or the lock: nothing installed (LOCK_COMPROMISED). */
  | { kind: 'fenced'; fence: string; lock: string }
  /** The manifest is not the generation the compactor read (it changed under it): nothing installed. */
  | { kind: 'changed'; gen: string }
  /** The installed manifest folds more than the new one: nothing installed. */
  | { kind: 'behind'; seq: number }
  /** A chunk of the new generation is not there (expired, deleted): nothing installed. */
  | { kind: 'missing'; key: string };

/** The manifest `{P}:snap` holds (docs/FORMAT.md, "Keys"). */
export interface SnapshotManifest {
  /** Seq of the last record folded in (0: none). */
  seq: number;
  /** Hash of that record ('' for none, or with the chain off). */
  h: string;
  /** The generation: the fencing token of the compaction that wrote it. */
  gen: number;
  chunks: number;
  /** Bytes of the snapshot text, all chunks together. */
  bytes: number;
  /** sha256 (hex) of the snapshot text, all chunks together. */
  sha256: string;
  /**
   * When it was installed, in epoch ms by the server's clock (TIME in the
   * install script): what `stats` shows as the last compaction. Absent in
   * manifests written before it was recorded, and until installed.
   */
  at?: number;
}

export type LockAcquireOutcome = { kind: 'ok'; token: string } | { kind: 'held'; holder: string; ttlMs: number };
export type LockRenewOutcome = { kind: 'ok' } | { kind: 'lost'; holder: string };
export type LockReleaseOutcome = { kind: 'released' } | { kind: 'not-held'; holder: string };

/**
 * KEYS: head, log, fence, lock, snap, writers. ARGV: the head the batch
 * chains from ('' for a new store), the fencing token ('' for none), the new
 * head, the first seq, the writer's field in `{P}:writers` ('' for none),
 * then the lines.
 * Order of the checks: a store that lost data refuses every write, whatever
 * the writer expected; a fenced compactor can never succeed, so it is told
 * before it catches up; then the head. The writer's field says where its
 * last commit begins, for a writer that lost the reply and finds the stream
 * trimmed.
 */
const APPEND_LUA = `#!lua
local head = redis.call('GET', KEYS[1])
local logExists = redis.call('EXISTS', KEYS[2]) == 1
if head then
  if not logExists then return {'lost', 'the head is ' .. head .. ' but the stream ' .. KEYS[2] .. ' is gone (deleted or evicted)'} end
elseif logExists then
  return {'lost', 'the stream ' .. KEYS[2] .. ' exists but the head ' .. KEYS[1] .. ' is gone (deleted or evicted)'}
elseif redis.call('EXISTS', KEYS[5]) == 1 then
  return {'lost', 'a snapshot exists but the head and the stream are gone (deleted or evicted)'}
end
if ARGV[2] ~= '' then
  local fence = redis.call('GET', KEYS[3])
  local lock = redis.call('GET', KEYS[4])
  if fence ~= ARGV[2] or lock ~= ARGV[2] then return {'fenced', fence or '', lock or ''} end
end
local current = head or ''
if current ~= ARGV[1] then return {'moved', current} end
local headSeq = 0
if head then headSeq = tonumber(string.match(head, '^(%d+) ')) end
local first = tonumber(ARGV[4])
local n = #ARGV - 5
if n < 1 or first == nil or first ~= headSeq + 1 then
  return redis.error_reply('ERR session-journal append: the batch (first seq ' .. ARGV[4] .. ', ' .. n .. ' lines) does not follow the head ' .. current)
end
if string.match(ARGV[3], '^(%d+) ') ~= string.format('%d', first + n - 1) then
  return redis.error_reply('ERR session-journal append: the new head ' .. ARGV[3] .. ' is not the last line of the batch')
end
for i = 1, n do
  redis.call('XADD', KEYS[2], string.format('%d-0', first + i - 1), 'r', ARGV[5 + i])
end
redis.call('SET', KEYS[1], ARGV[3])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[6], ARGV[5], ARGV[4]) end
return {'ok'}
`;

/**
 * KEYS: fence, lock, snap, writers, the new generation's chunks, then the
 * previous generation's. ARGV: token, seq, h, gen, chunks, bytes, sha256,
 * the generation the compactor read in the manifest ('' for none). The
 * writers' fields whose last commit the replaced snapshot had already
 * folded are dropped, and `~pruned` says up to which seq: a writer still in
 * doubt about such a commit has been for two compactions, and is told that
 * its outcome can no longer be read.
 */
const INSTALL_LUA = `#!lua
local fence = redis.call('GET', KEYS[1])
local lock = redis.call('GET', KEYS[2])
if fence ~= ARGV[1] or lock ~= ARGV[1] then return {'fenced', fence or '', lock or ''} end
local cur = redis.call('HMGET', KEYS[3], 'gen', 'seq')
local curGen = cur[1] or ''
if curGen ~= ARGV[8] then return {'changed', curGen} end
if cur[2] and tonumber(cur[2]) > tonumber(ARGV[2]) then return {'behind', cur[2]} end
local n = tonumber(ARGV[5])
for i = 1, n do
  if redis.call('EXISTS', KEYS[4 + i]) == 0 then return {'missing', KEYS[4 + i]} end
end
for i = 1, n do redis.call('PERSIST', KEYS[4 + i]) end
redis.call('DEL', KEYS[3])
local now = redis.call('TIME')
local at = string.format('%d', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
redis.call('HSET', KEYS[3], 'seq', ARGV[2], 'h', ARGV[3], 'gen', ARGV[4], 'chunks', ARGV[5], 'bytes', ARGV[6], 'sha256', ARGV[7], 'at', at)
for i = 5 + n, #KEYS do redis.call('DEL', KEYS[i]) end
if cur[2] then
  local folded = tonumber(cur[2])
  local fields = redis.call('HGETALL', KEYS[4])
  local pruned = 0
  for i = 1, #fields, 2 do
    local value = tonumber(fields[i + 1]) or 0
    if fields[i] == '${PRUNED_FIELD}' then pruned = value
    elseif value <= folded then redis.call('HDEL', KEYS[4], fields[i]) end
  end
  if folded > pruned then redis.call('HSET', KEYS[4], '${PRUNED_FIELD}', cur[2]) end
end
return {'ok'}
`;

/** KEYS: lock, fence. ARGV: ttl ms. The fence moves only when the lock is taken: a refused attempt must not fence the holder. */
const LOCK_ACQUIRE_LUA = `#!lua
local holder = redis.call('GET', KEYS[1])
if holder then return {'held', holder, redis.call('PTTL', KEYS[1])} end
local token = string.format('%d', redis.call('INCR', KEYS[2]))
redis.call('SET', KEYS[1], token, 'PX', ARGV[1])
return {'ok', token}
`;

/** KEYS: lock. ARGV: token, ttl ms. */
const LOCK_RENEW_LUA = `#!lua
local holder = redis.call('GET', KEYS[1])
if holder ~= ARGV[1] then return {'lost', holder or ''} end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {'ok'}
`;

/** KEYS: lock. ARGV: token. Releases only the caller's own lock. */
const LOCK_RELEASE_LUA = `#!lua
local holder = redis.call('GET', KEYS[1])
if holder ~= ARGV[1] then return {'not-held', holder or ''} end
redis.call('DEL', KEYS[1])
return {'released'}
`;

class Script {
  private shaHex: string | undefined;
  constructor(
    readonly name: string,
    readonly source: string,
  ) {}

  /** Computed at first use, not when the module loads: importing the package must not load node:crypto. */
  get sha(): string {
    return (this.shaHex ??= crypto().hash('sha1', this.source, 'hex'));
  }
}

const SCRIPTS = {
  append: new Script('append', APPEND_LUA),
  install: new Script('snapshot install', INSTALL_LUA),
  lockAcquire: new Script('lock acquire', LOCK_ACQUIRE_LUA),
  lockRenew: new Script('lock renew', LOCK_RENEW_LUA),
  lockRelease: new Script('lock release', LOCK_RELEASE_LUA),
};

const isNoScript = (err: unknown): boolean =>
  err instanceof SessionJournalError && err.code === ErrorCodes.REDIS_COMMAND_FAILED && String(err.details.reply).startsWith('NOSCRIPT');

/** A reply that is not what the script returns: a server that ran another script under its sha, or a bug. */
function unexpected(script: Script, reply: RedisReply): SessionJournalError {
  return new SessionJournalError(ErrorCodes.REDIS_COMMAND_FAILED, `the ${script.name} script returned ${JSON.stringify(reply)}`, { details: { reply } });
}

const str = (value: RedisReply | undefined): string => (typeof value === 'string' ? value : value === null || value === undefined ? '' : String(value));

/** The scripts of one store's keys, run over its connection. */
export class StoreScripts {
  constructor(private readonly conn: RedisConnection) {}

  /** SCRIPT LOAD of every script (optional: EVALSHA falls back to EVAL). */
  async load(): Promise<void> {
    for (const script of Object.values(SCRIPTS)) {
      const sha = await this.conn.command(['SCRIPT', 'LOAD', script.source]);
      if (sha !== script.sha) throw unexpected(script, sha);
    }
  }

  /**
   * Appends `batch` if the head is still `expected` (undefined: a store with
   * no record yet) and, with `token`, if the fence and the lock are still
   * that token. A REDIS_UNAVAILABLE with `details.maybeExecuted` leaves the
   * append in doubt: read the stream after `expected` to find out.
   */
  async append(expected: ChainHead | undefined, batch: AppendBatch, token?: string): Promise<AppendOutcome> {
    const k = this.conn.keys;
    const reply = await this.run(SCRIPTS.append, [k.head, k.log, k.fence, k.lock, k.snap, k.writers], [formatHead(expected), token ?? '', formatHead(batch.head), String(batch.firstSeq), batch.writer ?? '', ...batch.lines]);
    const [kind, a, b] = Array.isArray(reply) ? reply : [];
    if (kind === 'ok') return { kind: 'ok' };
    if (kind === 'moved') {
      const head = parseHead(str(a));
      if (head === 'invalid') return { kind: 'lost', reason: `the head ${k.head} holds ${JSON.stringify(a)}, not <seq> <h>` };
      return { kind: 'moved', head };
    }
    if (kind === 'fenced') return { kind: 'fenced', fence: str(a), lock: str(b) };
    if (kind === 'lost') return { kind: 'lost', reason: str(a) };
    throw unexpected(SCRIPTS.append, reply);
  }

  /**
   * Installs `manifest` (its chunks already written, with a time to live
   * that this removes) if `token` still holds the fence and the lock, the
   * manifest is still `previous` (undefined: none), and it does not fold more
   * than the new one; deletes the previous generation's chunks.
   */
  async installSnapshot(token: string, manifest: SnapshotManifest, previous: Pick<SnapshotManifest, 'gen' | 'chunks'> | undefined): Promise<InstallOutcome> {
    const k = this.conn.keys;
    const chunkKeys = (m: Pick<SnapshotManifest, 'gen' | 'chunks'>) => Array.from({ length: m.chunks }, (_, i) => k.chunk(m.gen, i));
    if (previous && previous.gen === manifest.gen) throw new RangeError(`snapshot generation ${manifest.gen} is already installed`);
    const keys = [k.fence, k.lock, k.snap, k.writers, ...chunkKeys(manifest), ...(previous ? chunkKeys(previous) : [])];
    const args = [token, String(manifest.seq), manifest.h, String(manifest.gen), String(manifest.chunks), String(manifest.bytes), manifest.sha256, previous ? String(previous.gen) : ''];
    const reply = await this.run(SCRIPTS.install, keys, args);
    const [kind, a, b] = Array.isArray(reply) ? reply : [];
    if (kind === 'ok') return { kind: 'ok' };
    if (kind === 'fenced') return { kind: 'fenced', fence: str(a), lock: str(b) };
    if (kind === 'changed') return { kind: 'changed', gen: str(a) };
    if (kind === 'behind') return { kind: 'behind', seq: Number(str(a)) };
    if (kind === 'missing') return { kind: 'missing', key: str(a) };
    throw unexpected(SCRIPTS.install, reply);
  }

  /** Takes the compaction lock for `ttlMs`: a new fencing token, or who holds it and for how long yet. */
  async acquireLock(ttlMs: number): Promise<LockAcquireOutcome> {
    const k = this.conn.keys;
    const reply = await this.run(SCRIPTS.lockAcquire, [k.lock, k.fence], [String(requireTtl(ttlMs))]);
    const [kind, a, b] = Array.isArray(reply) ? reply : [];
    if (kind === 'ok' && typeof a === 'string') return { kind: 'ok', token: a };
    if (kind === 'held') return { kind: 'held', holder: str(a), ttlMs: Number(b) };
    throw unexpected(SCRIPTS.lockAcquire, reply);
  }

  /** Extends the lock to `ttlMs` from now, if `token` still holds it. */
  async renewLock(token: string, ttlMs: number): Promise<LockRenewOutcome> {
    const reply = await this.run(SCRIPTS.lockRenew, [this.conn.keys.lock], [token, String(requireTtl(ttlMs))]);
    const [kind, a] = Array.isArray(reply) ? reply : [];
    if (kind === 'ok') return { kind: 'ok' };
    if (kind === 'lost') return { kind: 'lost', holder: str(a) };
    throw unexpected(SCRIPTS.lockRenew, reply);
  }

  /** Releases the lock if `token` holds it; never another holder's. */
  async releaseLock(token: string): Promise<LockReleaseOutcome> {
    const reply = await this.run(SCRIPTS.lockRelease, [this.conn.keys.lock], [token]);
    const [kind, a] = Array.isArray(reply) ? reply : [];
    if (kind === 'released') return { kind: 'released' };
    if (kind === 'not-held') return { kind: 'not-held', holder: str(a) };
    throw unexpected(SCRIPTS.lockRelease, reply);
  }

  private async run(script: Script, keys: readonly string[], args: readonly string[]): Promise<RedisReply> {
    const tail = [String(keys.length), ...keys, ...args];
    try {
      return await this.conn.command(['EVALSHA', script.sha, ...tail]);
    } catch (err) {
      // NOSCRIPT: refused before it ran, so sending the source cannot run it twice.
      if (!isNoScript(err)) throw err;
      return this.conn.command(['EVAL', script.source, ...tail]);
    }
  }
}

function requireTtl(ttlMs: number): number {
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) throw new SessionJournalError(ErrorCodes.INVALID_OPTION, `the lock's time to live must be a whole number of ms >= 1, got ${ttlMs}`, { details: { option: 'lockTtlMs', value: ttlMs } });
  return ttlMs;
}
