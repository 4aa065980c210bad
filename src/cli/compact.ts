import { compactSessions } from '../sessions/compact-sessions.js';
import { DEFAULT_MAX_SESSIONS, DEFAULT_TTL_MS } from '../sessions/session-store.js';
import { formatWarning } from '../journal/warnings.js';
import { parseDuration, parseFlags, parsePositiveInt, storeDir } from './args.js';
import { ExitCodes, type CliIO } from './output.js';

export const compactHelp = `Usage: session-journal compact --dir DIR [options]

Folds the journal into a new snapshot, drops expired sessions (TTL) and the
least recently used beyond --max-sessions (LRU), and archives the folded
segments. Safe beside live writers. Quiet on success.

Options:
  --dir DIR            the store (default: $SESSION_JOURNAL_DIR)
  --ttl DURATION       drop sessions not accessed for this long (default 24h)
  --max-sessions N     keep at most N sessions (default ${DEFAULT_MAX_SESSIONS})
  --lock-timeout DUR   wait this long for a running compaction or writer (default 30s)
  --no-archive         delete folded segments instead of archiving them
  --archive-max-age D  delete archived files older than this (default 30d)
  --archive-max-files N  keep at most N archived files (default 1000)
  --json               print one JSON document with what was done
  -h, --help           this help

Durations take ms, s, m, h or d: 90s, 15m, 24h, 7d.
Exit codes: 0 done or nothing to do, 2 usage, 3 lock busy (retry later),
4 store error (I/O, permissions), 70 internal error.
`;

export async function compactCommand(argv: readonly string[], io: CliIO): Promise<number> {
  const args = parseFlags(argv, {
    values: ['dir', 'ttl', 'max-sessions', 'lock-timeout', 'archive-max-age', 'archive-max-files'],
    switches: ['json', 'no-archive'],
  });
  const json = args.switches.has('json');
  const result = await compactSessions({
    dir: storeDir(args, io.env),
    ttlMs: args.values.has('ttl') ? parseDuration('ttl', args.values.get('ttl')!) : DEFAULT_TTL_MS,
    maxSessions: args.values.has('max-sessions') ? parsePositiveInt('max-sessions', args.values.get('max-sessions')!) : DEFAULT_MAX_SESSIONS,
    lockTimeoutMs: args.values.has('lock-timeout') ? parseDuration('lock-timeout', args.values.get('lock-timeout')!) : 30_000,
    archive: {
      keep: !args.switches.has('no-archive'),
      ...(args.values.has('archive-max-age') && { maxAgeMs: parseDuration('archive-max-age', args.values.get('archive-max-age')!) }),
      ...(args.values.has('archive-max-files') && { maxFiles: parsePositiveInt('archive-max-files', args.values.get('archive-max-files')!) }),
    },
    onWarning: (w) => io.stderr.write(formatWarning(w) + '\n'),
  });
  if (json) io.stdout.write(JSON.stringify(result) + '\n');
  return ExitCodes.OK;
}
