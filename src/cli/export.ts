import { formatWarning, type JournalWarning } from '../engine/warnings.js';
import { requireStore } from '../storage/file/store-files.js';
import { exportSessions } from '../maintenance/export.js';
import { LOCATION_FLAGS, UsageError, locationHelp, parseFlags, storeLocation } from './args.js';
import type { CliIO } from './output.js';
import { StdoutSink } from './stdout-sink.js';

export const exportHelp = `Usage: session-journal export --dir DIR [options] > sessions.json
       session-journal export --redis URL --prefix P [options] > sessions.json

Prints the store's current sessions on stdout as one JSON document, in the
v1 format "session-journal import" reads (the session file of
codex-mcp-server's FileSessionStorage proposal, PR #134):
{"version":1,"sessions":[...]} with ISO dates, sessions ordered by id.
For backups and for moving sessions to another store. Reads without any
lock: safe beside live writers. On Redis, the state of the snapshot and the
stream after it (a store of another kind is refused, exit 4); import the
document into a directory, or the other way round, to move a store.

Options:
${locationHelp(23)}
  -j, --json           accepted for symmetry: the output is always JSON
  -h, --help           this help

A closed pipe (| head) ends it quietly with exit code 0.
Exit codes: 0 done, 2 usage, 3 compactions replaced a Redis store's
snapshot during each of 5 reads (STORE_CHANGING: retry later), 4 store
error (missing, NOT_A_STORE, unsafe, I/O), 70 internal error.
`;

export async function exportCommand(argv: readonly string[], io: CliIO): Promise<number> {
  const args = parseFlags(argv, { values: [...LOCATION_FLAGS], switches: ['json'] });
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[0])}`);
  const location = storeLocation(args, io.env);
  const onWarning = (w: JournalWarning) => io.stderr.write(formatWarning(w) + '\n');
  let doc;
  if (location.kind === 'dir') {
    requireStore(location.dir);
    doc = exportSessions({ dir: location.dir, onWarning });
  } else {
    doc = await exportSessions({ redis: location.redis, onWarning });
  }
  // A reader that goes away (`| head`) ends it quietly, with exit code 0.
  const out = new StdoutSink(io.stdout, false);
  await out.write(JSON.stringify(doc, null, 2) + '\n');
  await out.end();
  return out.exitCode(io.stderr, 'export');
}
