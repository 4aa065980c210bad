import { compactCommand, compactHelp } from './compact.js';
import { replayCommand, replayHelp } from './replay.js';
import { verifyCommand, verifyHelp } from './verify.js';
import { statsCommand, statsHelp } from './stats.js';
import { codexMcpServerCommand, codexMcpServerHelp } from './codex-mcp-server.js';
import { repairCommand, repairHelp } from './repair.js';
import { importCommand, importHelp } from './import.js';
import { exportCommand, exportHelp } from './export.js';
import { suggestion } from './args.js';
import { ExitCodes, reportError, type CliIO } from './output.js';

interface Command {
  summary: string;
  help: string;
  run: (argv: readonly string[], io: CliIO) => Promise<number>;
}

/** Every subcommand: one module each, returning an exit code instead of exiting. */
const COMMANDS: Record<string, Command> = {
  replay: { summary: 'print the audit trail (archive + journal), filter it, --follow it, or --state --at T', help: replayHelp, run: replayCommand },
  verify: { summary: 'check every record, the hash chain and the snapshots (read-only, no lock); --head', help: verifyHelp, run: verifyCommand },
  stats: { summary: 'sessions (live, expired), bytes, segments, last compaction, writers seen', help: statsHelp, run: statsCommand },
  compact: { summary: 'fold the journal into a snapshot, apply TTL and LRU (for cron)', help: compactHelp, run: compactCommand },
  repair: { summary: 'move torn or corrupt bytes into DIR/quarantine/ so the journal is clean (takes the locks)', help: repairHelp, run: repairCommand },
  import: { summary: 'import sessions from a v1 session file or a flat {"key":"value"} cache (idempotent)', help: importHelp, run: importCommand },
  export: { summary: 'print the current sessions as a v1 JSON document (for backups and moving back)', help: exportHelp, run: exportCommand },
  'codex-mcp-server': { summary: 'run codex-mcp-server (npm) on stdio with its sessions in a store', help: codexMcpServerHelp, run: codexMcpServerCommand },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `Usage: session-journal <command> [options]
       session-journal help <command>

Durable, multi-process session storage for MCP servers.

Commands:
${lines.join('\n')}

Every command takes --dir DIR (-d DIR, or the SESSION_JOURNAL_DIR
environment variable), or --redis URL --prefix P for a store on Redis
(SESSION_JOURNAL_REDIS, SESSION_JOURNAL_PREFIX; every command but repair),
and --help. -- ends the options. Exit codes: docs/OPERATIONS.md.

Options:
  -h, --help       show this help
  -v, --version    print the version
`;
}

/** Names the top level knows besides the commands: what a typo may have meant. */
const TOP_LEVEL_WORDS = ['help', '--help', '--version'];

/** `help` and `--help` with `-h` before any `--` (after it they are arguments). */
function asksForHelp(rest: readonly string[]): boolean {
  const end = rest.indexOf('--');
  return (end === -1 ? rest : rest.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

function unknownCommand(name: string, io: CliIO): number {
  io.stderr.write(`session-journal: unknown command ${JSON.stringify(name)}${suggestion(name, [...Object.keys(COMMANDS), ...TOP_LEVEL_WORDS])}\nhint: session-journal --help lists the commands\n`);
  return ExitCodes.USAGE;
}

/** Parses the command line and runs one subcommand; returns the exit code. */
export async function run(argv: readonly string[], io: CliIO & { version: string }): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h') {
    (first === undefined ? io.stderr : io.stdout).write(usage());
    return first === undefined ? ExitCodes.USAGE : ExitCodes.OK;
  }
  if (first === 'help') {
    // `help CMD` is `CMD --help`.
    if (rest.length === 0) return run(['--help'], io);
    if (rest.length > 1) {
      io.stderr.write(`session-journal help: name one command (got ${rest.length})\nhint: session-journal --help lists the commands\n`);
      return ExitCodes.USAGE;
    }
    const topic = COMMANDS[rest[0]!];
    if (!topic) return unknownCommand(rest[0]!, io);
    io.stdout.write(topic.help);
    return ExitCodes.OK;
  }
  if (first === '--version' || first === '-v') {
    io.stdout.write(`${io.version}\n`);
    return ExitCodes.OK;
  }
  const command = COMMANDS[first];
  if (!command) return unknownCommand(first, io);
  if (asksForHelp(rest)) {
    io.stdout.write(command.help);
    return ExitCodes.OK;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    return reportError(err, io, first);
  }
}
