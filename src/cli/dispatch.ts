/** Exit codes are API: see docs/OPERATIONS.md. */
export const ExitCodes = { OK: 0, PROBLEMS: 1, USAGE: 2, LOCK_BUSY: 3, ERROR: 4 } as const;

export interface CliContext {
  version: string;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

const USAGE = `Usage: session-journal <command> [options]

Durable, multi-process session storage for MCP servers.

Commands arrive with later releases; every command takes --dir DIR.

Options:
  -h, --help       show this help
  -v, --version    print the version
`;

/** Parses the command line and runs one subcommand; returns the exit code. */
export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const [first] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    ctx.stdout.write(USAGE);
    return first === undefined ? ExitCodes.USAGE : ExitCodes.OK;
  }
  if (first === '--version' || first === '-v') {
    ctx.stdout.write(`${ctx.version}\n`);
    return ExitCodes.OK;
  }
  ctx.stderr.write(`session-journal: unknown command ${JSON.stringify(first)}\nhint: run session-journal --help\n`);
  return ExitCodes.USAGE;
}
