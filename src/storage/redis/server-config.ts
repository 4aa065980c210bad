import { ErrorCodes, SessionJournalError } from '../../errors.js';
import { WarningCodes, type WarningHandler } from '../../engine/warnings.js';
import type { RedisConnection, RedisReply } from './connection.js';

/**
 * The server settings a store depends on (docs/FORMAT.md, "Server
 * settings"), read with CONFIG GET when a store opens:
 *
 * - `maxmemory-policy` other than `noeviction` is refused
 *   (REDIS_EVICTION_POLICY): an evicted stream is lost data, and no check
 *   afterwards brings it back;
 * - without `appendonly yes` and `appendfsync always`, an acknowledged commit
 *   is not on disk yet: REDIS_NOT_DURABLE, unless the store was opened with
 *   `fsync: false` (the caller chose that already for files);
 * - a server that refuses CONFIG (managed services rename or deny it) cannot
 *   be checked: REDIS_CONFIG_UNKNOWN, once per server per process, and the
 *   operator vouches for the settings.
 */

export interface ServerSettings {
  /** False when CONFIG GET was refused or answered nothing: the fields are then unknown. */
  known: boolean;
  maxmemoryPolicy?: string;
  appendonly?: string;
  appendfsync?: string;
}

export interface ServerCheckOptions {
  /** The store was opened with `fsync: false`: no REDIS_NOT_DURABLE. */
  fsync: boolean;
  warn: WarningHandler;
  /** Servers already warned REDIS_CONFIG_UNKNOWN (by `conn.where`'s server part); default: one set per process. */
  warnedUnknown?: Set<string>;
}

const processWarnedUnknown = new Set<string>();

/** The settings as CONFIG GET gives them (a flat list of name, value), or known: false. */
export async function readServerSettings(conn: RedisConnection): Promise<ServerSettings> {
  let reply: RedisReply;
  try {
    reply = await conn.command(['CONFIG', 'GET', 'maxmemory-policy', 'appendonly', 'appendfsync']);
  } catch (err) {
    // Renamed away (unknown command) or denied by ACL: an error reply. Anything else (the server went away) is the caller's.
    if (err instanceof SessionJournalError && err.code === ErrorCodes.REDIS_COMMAND_FAILED) return { known: false };
    throw err;
  }
  const values = new Map<string, string>();
  if (Array.isArray(reply)) {
    for (let i = 0; i + 1 < reply.length; i += 2) values.set(String(reply[i]).toLowerCase(), String(reply[i + 1]).toLowerCase());
  }
  const settings: ServerSettings = { known: values.has('maxmemory-policy') };
  if (values.has('maxmemory-policy')) settings.maxmemoryPolicy = values.get('maxmemory-policy')!;
  if (values.has('appendonly')) settings.appendonly = values.get('appendonly')!;
  if (values.has('appendfsync')) settings.appendfsync = values.get('appendfsync')!;
  return settings;
}

/**
 * Reads and checks the server's settings: throws REDIS_EVICTION_POLICY,
 * warns REDIS_NOT_DURABLE or REDIS_CONFIG_UNKNOWN. Returns what it read.
 */
export async function checkServerSettings(conn: RedisConnection, options: ServerCheckOptions): Promise<ServerSettings> {
  const settings = await readServerSettings(conn);
  const server = conn.where.split(' ', 1)[0]!;
  if (!settings.known) {
    const warned = options.warnedUnknown ?? processWarnedUnknown;
    if (!warned.has(server)) {
      warned.add(server);
      options.warn({
        code: WarningCodes.REDIS_CONFIG_UNKNOWN,
        message: 'the server refused CONFIG GET, so its maxmemory-policy (must be noeviction) and its durability (appendonly yes, appendfsync always) are not checked: make sure of them',
        file: conn.where,
      });
    }
    return settings;
  }
  if (settings.maxmemoryPolicy !== 'noeviction') {
    throw new SessionJournalError(
      ErrorCodes.REDIS_EVICTION_POLICY,
      `${server} runs with maxmemory-policy ${settings.maxmemoryPolicy}: it may evict the store's keys, which is lost data; set maxmemory-policy noeviction (CONFIG SET maxmemory-policy noeviction, and in redis.conf)`,
      { details: { where: conn.where, maxmemoryPolicy: settings.maxmemoryPolicy } },
    );
  }
  if (options.fsync && (settings.appendonly !== 'yes' || settings.appendfsync !== 'always')) {
    const now = `appendonly ${settings.appendonly ?? '?'}, appendfsync ${settings.appendfsync ?? '?'}`;
    options.warn({
      code: WarningCodes.REDIS_NOT_DURABLE,
      message: `${server} runs with ${now}: a commit it acknowledged can be lost if the server crashes; set appendonly yes and appendfsync always (or open the store with fsync: false to accept that)`,
      file: conn.where,
    });
  }
  return settings;
}
