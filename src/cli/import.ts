import fs from 'node:fs';
import { formatWarning } from '../engine/warnings.js';
import { importSessions, type ImportResult } from '../maintenance/import.js';
import { LOCATION_FLAGS, UsageError, locationHelp, parseDuration, parseFlags, parsePositiveInt, storeLocation } from './args.js';
import { ExitCodes, type CliIO } from './output.js';

export const importHelp = `Usage: session-journal import --dir DIR [options] FILE
       session-journal import --redis URL --prefix P [options] FILE

Imports sessions from FILE ("-" for stdin) into the store, creating the
store when missing (on Redis too; a Redis store of another kind is refused,
exit 4). Two formats are recognised:

  {"version":1,"sessions":[{"id","createdAt","lastAccessedAt","turns":[...],
   "codexConversationId"}, ...]}   a v1 session file (ISO dates), as the file
                                   storage proposed for codex-mcp-server in
                                   its PR #134 writes it; also what
                                   "session-journal export" writes
  {"key":"value", ...}             a flat cache kept by hook processes: each
                                   key becomes a session whose conversation id
                                   is the value, created and last accessed at
                                   the file's modification time

Idempotent: a session whose id the store already has is left as it is, so
importing the same file twice adds nothing. What the file gets wrong is left
out at the smallest scale, each with a warning on stderr (file, index, code,
reason) and counted:
  a turn with an invalid timestamp or shape   dropped; its session imported
  a session with invalid dates or shape       skipped
  an id outside [A-Za-z0-9_-] (1-256)         mapped: imported as a readable
                                              slug and a hash of the id
                                              ("a.b" -> "a_b-" + 12 hex
                                              digits), each mapping noted

Options:
${locationHelp(23, false)}
  --strict             import nothing if any session, turn or field would be
                       skipped (checked before the store is touched)
  --lock-timeout DUR   wait this long for the journal lock (default 30s; a
                       store on Redis has no writers' lock)
  --max-session-bytes N  the largest session imported, as its journal record
                       (default 67108864, 64 MiB; at most 268435456): a file
                       with a larger session is refused before anything is
                       imported (exit 4)
  --max-line-bytes N   the store's line length (its writers' maxLineBytes;
                       default 1048576): a longer session is spread over
                       several lines
  --json               print one JSON document with the counts and lists
  -h, --help           this help

Prints one summary line (or the --json document) in every case.

Exit codes: 0 done, nothing skipped (ids may be mapped); 1 sessions, turns
or fields were skipped: the rest was imported, or with --strict nothing was;
2 usage; 3 lock busy; 4 the file is unreadable or not one of the formats, or
holds a session over --max-session-bytes (nothing imported), or a store
error; 70 internal error.
`;

export async function importCommand(argv: readonly string[], io: CliIO): Promise<number> {
  const args = parseFlags(argv, { values: [...LOCATION_FLAGS, 'lock-timeout', 'max-session-bytes', 'max-line-bytes'], switches: ['json', 'strict'] });
  if (args.positionals.length !== 1) throw new UsageError(args.positionals.length === 0 ? 'name the file to import (or - for stdin)' : `one file at a time (got ${args.positionals.length})`);
  const file = args.positionals[0]!;
  const json = args.switches.has('json');
  const strict = args.switches.has('strict');
  const location = storeLocation(args, io.env);
  const warn = (line: string) => io.stderr.write(`session-journal import: ${line}\n`);
  // INVALID_IMPORT_FILE propagates: reportError prints it with its hint (exit 4).
  const result: ImportResult = await importSessions({
    ...(location.kind === 'dir' ? { dir: location.dir } : { redis: location.redis }),
    file: file === '-' ? '<stdin>' : file,
    ...(file === '-' && { text: fs.readFileSync(0, 'utf8') }),
    lockTimeoutMs: args.values.has('lock-timeout') ? parseDuration('lock-timeout', args.values.get('lock-timeout')!) : 30_000,
    strict,
    ...(args.values.has('max-session-bytes') && { maxSessionBytes: parsePositiveInt('max-session-bytes', args.values.get('max-session-bytes')!) }),
    ...(args.values.has('max-line-bytes') && { maxLineBytes: parsePositiveInt('max-line-bytes', args.values.get('max-line-bytes')!) }),
    onSkip: (s) => {
      const where = s.key !== undefined ? `key ${JSON.stringify(s.key)}` : `sessions[${s.index}]${s.id !== undefined ? ` (id ${JSON.stringify(s.id)})` : ''}`;
      warn(`warning: ${s.file}: ${where}: ${s.code}: ${s.reason}; skipped`);
    },
    onPartSkip: (s) => {
      const part = s.turn !== undefined ? `turns[${s.turn}]` : s.field!;
      warn(`warning: ${s.file}: sessions[${s.index}] (id ${JSON.stringify(s.id)}): ${part}: ${s.code}: ${s.reason}; ${s.turn !== undefined ? 'turn' : 'field'} dropped, the session is imported`);
    },
    onIdMapped: (m) => {
      const where = m.format === 'flat' ? `key ${JSON.stringify(m.from)}` : `sessions[${m.index}] (id ${JSON.stringify(m.from)})`;
      warn(`note: ${m.file}: ${where}: imported as ${JSON.stringify(m.to)} (ids are 1-256 of [A-Za-z0-9_-]; see "Ids" in docs/OPERATIONS.md)`);
    },
    onWarning: (w) => io.stderr.write(formatWarning(w) + '\n'),
  });
  if (json) io.stdout.write(JSON.stringify(result) + '\n');
  else io.stdout.write(summaryLine(result) + '\n');
  return result.skipped + result.partsSkipped > 0 ? ExitCodes.PROBLEMS : ExitCodes.OK;
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** The one line import prints without --json: what was imported, and everything that was not, counted. */
export function summaryLine(r: ImportResult): string {
  const turns = r.skippedParts.filter((p) => p.turn !== undefined).length;
  const fields = r.partsSkipped - turns;
  const dropped = [turns > 0 && plural(turns, 'turn'), fields > 0 && plural(fields, 'field')].filter(Boolean).join(' and ');
  const extra = [dropped && `${dropped} dropped`, r.idsMapped > 0 && `${plural(r.idsMapped, 'id')} mapped`].filter(Boolean).join(', ');
  if (r.refused) {
    return `nothing imported from ${r.file} (${r.format}, --strict): ${r.skipped} skipped${dropped ? `, ${dropped} dropped` : ''} if imported, ${r.total} in the file`;
  }
  return `imported ${plural(r.imported, 'session')} from ${r.file} (${r.format}): ${r.alreadyPresent} already present, ${r.skipped} skipped, ${r.total} in the file${extra ? `; ${extra}` : ''}`;
}
