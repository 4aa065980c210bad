import fs from 'node:fs';
import { formatWarning } from '../journal/warnings.js';
import { importSessions, type ImportResult } from '../maintenance/import.js';
import { UsageError, parseDuration, parseFlags, storeDir } from './args.js';
import { ExitCodes, type CliIO } from './output.js';

export const importHelp = `Usage: session-journal import --dir DIR [options] FILE

Imports sessions from FILE ("-" for stdin) into the store, creating the
store when missing. Two formats are recognised:

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
importing the same file twice adds nothing. Entries with invalid dates or
ids are skipped with a warning on stderr and counted.

Options:
  --dir DIR            the store (default: $SESSION_JOURNAL_DIR)
  --lock-timeout DUR   wait this long for the journal lock (default 30s)
  --json               print one JSON document with the counts
  -h, --help           this help

Exit codes: 0 done (even when entries were skipped), 2 usage, 3 lock busy,
4 the file is unreadable or not one of the formats (nothing imported), or a
store error; 70 internal error.
`;

export async function importCommand(argv: readonly string[], io: CliIO): Promise<number> {
  const args = parseFlags(argv, { values: ['dir', 'lock-timeout'], switches: ['json'] });
  if (args.positionals.length !== 1) throw new UsageError(args.positionals.length === 0 ? 'name the file to import (or - for stdin)' : `one file at a time (got ${args.positionals.length})`);
  const file = args.positionals[0]!;
  const json = args.switches.has('json');
  const dir = storeDir(args, io.env);
  // INVALID_IMPORT_FILE propagates: reportError prints it with its hint (exit 4).
  const result: ImportResult = await importSessions({
      dir,
      file: file === '-' ? '<stdin>' : file,
      ...(file === '-' && { text: fs.readFileSync(0, 'utf8') }),
      lockTimeoutMs: args.values.has('lock-timeout') ? parseDuration('lock-timeout', args.values.get('lock-timeout')!) : 30_000,
      onSkip: (s) => {
        const where = s.key !== undefined ? `key ${JSON.stringify(s.key)}` : `sessions[${s.index}]${s.id !== undefined ? ` (id ${JSON.stringify(s.id)})` : ''}`;
        io.stderr.write(`session-journal import: warning: ${s.file}: ${where}: ${s.code}: ${s.reason}; skipped\n`);
      },
      onWarning: (w) => io.stderr.write(formatWarning(w) + '\n'),
    });
  if (json) io.stdout.write(JSON.stringify(result) + '\n');
  else {
    const s = (n: number) => (n === 1 ? '' : 's');
    io.stdout.write(
      `imported ${result.imported} session${s(result.imported)} from ${result.file} (${result.format}): ${result.alreadyPresent} already present, ${result.skipped} skipped, ${result.total} in the file\n`,
    );
  }
  return ExitCodes.OK;
}
