/** Command-line parsing shared by every subcommand: flags, durations, instants, the store directory. */
import { parseIsoInstant } from '../journal/dates.js';

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

export function parseFlags(argv: readonly string[], spec: FlagSpec): ParsedArgs {
  const values = new Map<string, string>();
  const switches = new Set<string>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--') || arg === '--') {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    if (spec.switches.includes(name)) {
      if (eq !== -1) throw new UsageError(`--${name} takes no value`);
      switches.add(name);
    } else if (spec.values.includes(name)) {
      const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
      if (value === undefined || value === '') throw new UsageError(`--${name} needs a value`);
      values.set(name, value);
    } else {
      throw new UsageError(`unknown option --${name}`);
    }
  }
  return { values, switches, positionals };
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `90s`, `15m`, `24h`, `7d`, `250ms` (a bare number is seconds) into milliseconds. */
export function parseDuration(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new UsageError(`--${flag} takes a duration such as 90s, 15m, 24h or 7d (got ${JSON.stringify(text)})`);
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
 * Parses a `--now` value: an ISO-8601 instant (2026-11-22T10:00:00Z, or with
 * an offset) or epoch milliseconds (a whole number), into epoch milliseconds.
 */
export function parseInstant(flag: string, text: string): number {
  const trimmed = text.trim();
  const ms = /^\d+$/.test(trimmed) ? Number(trimmed) : parseIsoInstant(trimmed);
  if (ms === undefined || !Number.isSafeInteger(ms) || ms > MAX_DATE_MS) {
    throw new UsageError(`--${flag} takes an ISO instant such as 2026-11-22T10:00:00Z or epoch milliseconds (got ${JSON.stringify(text)})`);
  }
  return ms;
}

/** The largest time a Date holds (ECMAScript: 8.64e15 ms after 1970). */
const MAX_DATE_MS = 8.64e15;

/** The environment variable that names the store when --dir is not given. */
export const DIR_ENV = 'SESSION_JOURNAL_DIR';

export function storeDir(args: ParsedArgs, env: NodeJS.ProcessEnv = process.env): string {
  const dir = args.values.get('dir') ?? env[DIR_ENV];
  if (!dir) throw new UsageError(`no store given: pass --dir DIR or set ${DIR_ENV}`);
  return dir;
}
