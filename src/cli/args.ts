/** Command-line parsing shared by every subcommand: flags, durations, times, the store directory. */
import { parseArgs } from 'node:util';
import { parseIsoInstant } from '../engine/dates.js';

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

export function storeDir(args: ParsedArgs, env: NodeJS.ProcessEnv = process.env): string {
  const dir = args.values.get('dir') ?? env[DIR_ENV];
  if (!dir) throw new UsageError(`no store given: pass --dir DIR or set ${DIR_ENV}`);
  return dir;
}
