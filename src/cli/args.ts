/** Command-line parsing shared by every subcommand: flags, durations, times, the store (a directory or Redis). */
import { parseArgs } from 'node:util';
import { parseIsoInstant } from '../engine/dates.js';
import { ErrorCodes, SessionJournalError } from '../errors.js';
import { redactUrl } from '../storage/redis/connection.js';
import { validatePrefix } from '../storage/redis/keys.js';
import type { RedisLocation } from '../storage/redis/redis-location.js';

export class UsageError extends Error {}

export interface FlagSpec {
  /** Flags that take a value (`--dir DIR` or `--dir=DIR`). */
  values: readonly string[];
  /** Flags that are switches (`--json`). */
  switches: readonly string[];
}

export interface ParsedArgs {
  values: Map<string, string>;
  switches: Set<string>;
  positionals: string[];
}

/**
 * One-letter forms, each standing for its long option in every command that
 * has that option (docs/OPERATIONS.md, "The command"). `-h` is the
 * dispatcher's (help), `-v` the top level's (version).
 */
export const SHORT_OPTIONS: Readonly<Record<string, string>> = { d: 'dir', j: 'json', n: 'dry-run', f: 'follow' };

/**
 * Parses a command's arguments with node:util's parseArgs (POSIX and GNU
 * conventions: `--dir=DIR`, `-d DIR`, `-dDIR`, `--` ends the options), with
 * our own messages: an unknown option names the nearest known one.
 */
export function parseFlags(argv: readonly string[], spec: FlagSpec): ParsedArgs {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const name of spec.values) options[name] = { type: 'string' };
  for (const name of spec.switches) options[name] = { type: 'boolean' };
  for (const [short, long] of Object.entries(SHORT_OPTIONS)) if (options[long]) options[long].short = short;
  // Not strict: unknown options and misplaced values come back as tokens, and are refused below with our messages.
  const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });
  const values = new Map<string, string>();
  const switches = new Set<string>();
  const positionals: string[] = [];
  for (const token of tokens) {
    if (token.kind === 'positional') positionals.push(token.value);
    if (token.kind !== 'option') continue;
    const kind = options[token.name]?.type;
    const flag = `--${token.name}`;
    if (kind === undefined) throw new UsageError(`unknown option ${token.rawName}${suggestion(token.rawName.startsWith('--') ? token.name : '', [...spec.values, ...spec.switches, 'help'], '--')}`);
    if (kind === 'boolean') {
      if (token.value !== undefined) throw new UsageError(`${flag} takes no value`);
      switches.add(token.name);
      continue;
    }
    const value = token.value;
    if (value === undefined || value === '') throw new UsageError(`${flag} needs a value`);
    // `--dir --json`: parseArgs would take the next option as the value; a value that starts with "-" goes inline.
    if (!token.inlineValue && value.startsWith('-') && value !== '-') throw new UsageError(`${flag} needs a value (got the option ${JSON.stringify(value)}; write ${flag}=${value} for a value that starts with "-")`);
    values.set(token.name, value);
  }
  return { values, switches, positionals };
}

/** Edit distance (insertions, deletions, substitutions, swaps of neighbours): how far a typo is from a name. */
export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** The known name closest to `typed`, if it is close enough to be what was meant (at most 2 edits, and fewer than its length). */
export function closest(typed: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const name of known) {
    const distance = editDistance(typed, name);
    if (distance < bestDistance) [best, bestDistance] = [name, distance];
  }
  return best !== undefined && bestDistance <= Math.min(2, Math.max(1, Math.floor(typed.length / 3))) ? best : undefined;
}

/** `; did you mean PREFIX+NAME?` for a near miss, else nothing. */
export function suggestion(typed: string, known: readonly string[], prefix = ''): string {
  const near = typed === '' ? undefined : closest(typed, known);
  return near === undefined ? '' : `; did you mean ${prefix}${near}?`;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses a DURATION: `90s`, `15m`, `24h`, `7d`, `250ms`, or a bare number of seconds (`3600`), into milliseconds. */
export function parseDuration(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new UsageError(`--${flag} takes a duration such as 90s, 15m, 24h or 7d, or a number of seconds (got ${JSON.stringify(text)})`);
  const ms = Number(m[1]) * UNIT_MS[m[2] ?? 's']!;
  if (!(ms > 0)) throw new UsageError(`--${flag} must be greater than zero`);
  return ms;
}

export function parsePositiveInt(flag: string, text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`--${flag} takes a whole number of at least 1 (got ${JSON.stringify(text)})`);
  }
  return Number(text);
}

/**
 * Parses a TIME, the same for every command and flag (--now, --since,
 * --until, --at): an ISO-8601 instant (2026-11-22T10:00:00Z, or with an
 * offset), a UTC date (2026-11-22: its midnight), epoch milliseconds (a
 * whole number), or a duration with its unit meaning that long before `now`
 * (90s, 30m, 2h, 7d). Returns epoch milliseconds.
 */
export function parseTime(flag: string, text: string, now: number): number {
  const trimmed = text.trim();
  const ms = timeOf(trimmed, now);
  if (ms === undefined || !Number.isSafeInteger(ms) || ms < -MAX_DATE_MS || ms > MAX_DATE_MS) {
    throw new UsageError(`--${flag} takes a TIME: an ISO instant (2026-11-21T09:00:00Z), a date (2026-11-21), epoch milliseconds, or a duration ago (2h, 30m, 7d); got ${JSON.stringify(text)}`);
  }
  return ms;
}

function timeOf(text: string, now: number): number | undefined {
  if (/^\d+$/.test(text)) return Number(text);
  const iso = parseIsoInstant(text);
  if (iso !== undefined) return iso;
  if (/^\d{4}-\d{2}-\d{2}$/.test(text)) return parseIsoInstant(`${text}T00:00:00Z`);
  // Here a duration needs its unit: a bare number is epoch milliseconds (above).
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text);
  if (!m) return undefined;
  const ago = Number(m[1]) * UNIT_MS[m[2]!]!;
  return Number.isFinite(ago) ? Math.round(now - ago) : undefined;
}

/** The largest time a Date holds (ECMAScript: 8.64e15 ms after 1970). */
const MAX_DATE_MS = 8.64e15;

/** The environment variable that names the store when --dir is not given. */
export const DIR_ENV = 'SESSION_JOURNAL_DIR';
/** The environment variable that names a Redis server (its URL) when neither --dir nor --redis is given. */
export const REDIS_ENV = 'SESSION_JOURNAL_REDIS';
/** The environment variable that gives the store's prefix on Redis when --prefix is not given. */
export const PREFIX_ENV = 'SESSION_JOURNAL_PREFIX';

/** The flags that name a store, in every command that reads or writes one. */
export const LOCATION_FLAGS = ['dir', 'redis', 'prefix'] as const;

/** Where a command's store is: a directory, or a prefix on a Redis server. */
export type StoreLocation =
  | { kind: 'dir'; dir: string }
  /** `where` is the server without its credentials and the store's keys, `redis://host:port {P}`: what messages show. */
  | { kind: 'redis'; redis: RedisLocation; where: string };

export function storeDir(args: ParsedArgs, env: NodeJS.ProcessEnv = process.env): string {
  const dir = args.values.get('dir') ?? env[DIR_ENV];
  if (!dir) throw new UsageError(`no store given: pass --dir DIR or set ${DIR_ENV}`);
  return dir;
}

const set = (value: string | undefined): string | undefined => (value === undefined || value === '' ? undefined : value);

/**
 * The store a command names, in one place for every command
 * (docs/OPERATIONS.md, "The command"): `--dir DIR`, or `--redis URL` with
 * `--prefix P`. A flag wins over the environment; without either flag,
 * SESSION_JOURNAL_DIR names a directory and SESSION_JOURNAL_REDIS a server,
 * and SESSION_JOURNAL_PREFIX gives the prefix when --prefix does not. Both
 * --dir and --redis, or both variables set and neither flag, name two
 * stores: a usage error, as is a Redis store without a prefix (no default:
 * the prefix is the store, and a mistyped one would read an empty store)
 * unless the command has its own (`defaultPrefix`). The URL is checked here
 * and never shown with its password: messages get `where`.
 */
export function storeLocation(args: ParsedArgs, env: NodeJS.ProcessEnv = process.env, options: { defaultPrefix?: string } = {}): StoreLocation {
  const dirFlag = args.values.get('dir');
  const redisFlag = args.values.get('redis');
  const prefixFlag = args.values.get('prefix');
  if (dirFlag !== undefined && redisFlag !== undefined) throw new UsageError('--dir and --redis name two stores: give one of them');
  const fromEnv = dirFlag === undefined && redisFlag === undefined;
  const envDir = fromEnv ? set(env[DIR_ENV]) : undefined;
  const envRedis = fromEnv ? set(env[REDIS_ENV]) : undefined;
  if (envDir !== undefined && envRedis !== undefined) throw new UsageError(`${DIR_ENV} and ${REDIS_ENV} are both set: pass --dir or --redis to say which store`);
  const dir = dirFlag ?? envDir;
  if (dir !== undefined) {
    if (prefixFlag !== undefined) throw new UsageError('--prefix goes with --redis (a store on Redis), not with a directory');
    return { kind: 'dir', dir };
  }
  const url = redisFlag ?? envRedis;
  if (url === undefined) {
    throw new UsageError(`no store given: pass --dir DIR or --redis URL --prefix P (or set ${DIR_ENV}, or ${REDIS_ENV} and ${PREFIX_ENV})`);
  }
  const shownFlag = redisFlag !== undefined ? '--redis' : REDIS_ENV;
  const prefix = prefixFlag ?? set(env[PREFIX_ENV]) ?? options.defaultPrefix;
  if (prefix === undefined) throw new UsageError(`${shownFlag} needs the store's prefix: pass --prefix P or set ${PREFIX_ENV}`);
  let server: string;
  try {
    server = redactUrl(url);
  } catch {
    // Not quoted back: a URL may hold a password.
    throw new UsageError(`${shownFlag} takes a URL, redis://[user:password@]host[:port][/db] or rediss://... for TLS (the value given is not one; it is not shown, it may hold a password)`);
  }
  try {
    validatePrefix(prefix);
  } catch (err) {
    if (!(err instanceof SessionJournalError && err.code === ErrorCodes.INVALID_OPTION)) throw err;
    const flag = prefixFlag !== undefined ? '--prefix' : set(env[PREFIX_ENV]) !== undefined ? PREFIX_ENV : 'the default prefix';
    throw new UsageError(`${flag} ${err.message.replace(/^redis\.prefix /, '')}`);
  }
  return { kind: 'redis', redis: { url, prefix }, where: `${server} {${prefix}}` };
}

/** The directory of a command that has no Redis form (repair): a Redis location is a usage error saying why. */
export function requireDirLocation(location: StoreLocation | { kind: 'redis'; where: string }, command: string, why: string): string {
  if (location.kind === 'dir') return location.dir;
  throw new UsageError(`${command} does not apply to a store on Redis (${location.where}): ${why}`);
}

/**
 * The store options' lines of a command's help, aligned at `column` (where
 * that help's descriptions begin). `short`: the command has -d.
 */
export function locationHelp(column: number, short = true): string {
  const row = (flag: string, text: string[]) => text.map((t, i) => `${(i === 0 ? `  ${flag}` : '').padEnd(column)}${t}`).join('\n');
  return [
    row(`${short ? '-d, ' : ''}--dir DIR`, [`the store (default: $${DIR_ENV})`]),
    row('--redis URL', ['a store on Redis: redis://[user:password@]host:port', `(default: $${REDIS_ENV}); messages show it`, 'without the password']),
    row('--prefix P', [`its key prefix (default: $${PREFIX_ENV})`]),
  ].join('\n');
}
