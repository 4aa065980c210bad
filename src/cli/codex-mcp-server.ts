import { formatWarning, type JournalWarning } from '../engine/warnings.js';
import { SessionStore, DEFAULT_MAX_SESSIONS, DEFAULT_TTL_MS } from '../sessions/session-store.js';
import { CodexNotInstalledError, CodexUnsupportedError, MEMORY_STORE, defaultCodexStoreDir, startCodexMcpServer } from '../integrations/codex-mcp-server.js';
import { DIR_ENV, LOCATION_FLAGS, PREFIX_ENV, REDIS_ENV, UsageError, parseDuration, parseFlags, parsePositiveInt, storeLocation, type ParsedArgs, type StoreLocation } from './args.js';
import { ExitCodes, type CliIO } from './output.js';

/** The prefix of codex-mcp-server's sessions on Redis when neither --prefix nor SESSION_JOURNAL_PREFIX gives one. */
export const CODEX_REDIS_PREFIX = 'session-journal:codex';

export const codexMcpServerHelp = `Usage: session-journal codex-mcp-server [--dir DIR | --memory] [options]
       session-journal codex-mcp-server --redis URL [--prefix P] [options]

Runs codex-mcp-server (the npm package, installed next to session-journal:
npm install codex-mcp-server) on stdio, with its sessions kept in a
session-journal store instead of in memory: they survive restarts, and several
server processes (one per MCP client) can share one store.

stdout carries the MCP protocol only; warnings go to stderr. The store is
flushed and closed when stdin ends or on SIGTERM/SIGINT.

Answers of any size are stored (a long one is spread over several journal
lines). The codex tool's output schema is listed only when
STRUCTURED_CONTENT_ENABLED is set (codex-mcp-server sends structuredContent
only then), so clients that list tools first accept its answers.

Options:
  --dir DIR            the store (default: $${DIR_ENV}, else
                       $XDG_STATE_HOME/session-journal/codex, else
                       ~/.local/state/session-journal/codex)
  --redis URL          keep them on Redis instead, shared by servers on
                       several hosts: redis://[user:password@]host:port
                       (default: $${REDIS_ENV}); each tool call first reads
                       what the other servers wrote (a failed read warns
                       CATCH_UP_FAILED and the call goes on from what this
                       server has)
  --prefix P           the store's key prefix on Redis (default:
                       $${PREFIX_ENV}, else ${CODEX_REDIS_PREFIX})
  --memory             keep sessions in codex-mcp-server's own memory storage
                       (also: --dir :memory: or ${DIR_ENV}=:memory:)
  --ttl DURATION       sessions not accessed for this long expire (default 24h)
  --max-sessions N     keep at most N sessions (default ${DEFAULT_MAX_SESSIONS})
  --max-turn-bytes N   store at most N bytes (UTF-8) of prompt + answer per
                       turn (default: no limit but the store's 64 MiB per
                       record): a codex call with a session whose prompt
                       alone is larger is refused before codex runs; a larger
                       answer is returned whole and stored cut to fit, with
                       a TURN_TRUNCATED warning
  -h, --help           this help

Exit codes: 0 stopped normally, 2 usage, 4 store error or codex-mcp-server
missing/unsupported, 70 internal error.
`;

export async function codexMcpServerCommand(argv: readonly string[], io: CliIO): Promise<number> {
  const args = parseFlags(argv, { values: [...LOCATION_FLAGS, 'ttl', 'max-sessions', 'max-turn-bytes'], switches: ['memory'] });
  const location = codexStoreLocation(args, io.env);
  const ttlMs = args.values.has('ttl') ? parseDuration('ttl', args.values.get('ttl')!) : DEFAULT_TTL_MS;
  const maxSessions = args.values.has('max-sessions') ? parsePositiveInt('max-sessions', args.values.get('max-sessions')!) : DEFAULT_MAX_SESSIONS;
  const maxTurnBytes = args.values.has('max-turn-bytes') ? parsePositiveInt('max-turn-bytes', args.values.get('max-turn-bytes')!) : undefined;
  const onWarning = (w: JournalWarning) => io.stderr.write(formatWarning(w) + '\n');

  // Listen before anything slow, so a signal during start-up still closes the store.
  const stopped = waitForStop();
  let store: SessionStore | undefined;
  if (location.kind === 'redis') {
    // Opened async on Redis; each tool call catches up first (another host may have written the session).
    store = await SessionStore.open({ redis: location.redis, ttlMs, maxSessions, onWarning });
  } else if (location.dir !== MEMORY_STORE) {
    store = SessionStore.openSync({ dir: location.dir, ttlMs, maxSessions, onWarning });
  }
  const opened = store;
  let server;
  try {
    server = await startCodexMcpServer({
      storage: opened ?? 'memory',
      onWarning,
      ...(maxTurnBytes !== undefined && { maxTurnBytes }),
      ...(opened && location.kind === 'redis' && { catchUp: () => opened.catchUp() }),
    });
  } catch (err) {
    await store?.close();
    if (err instanceof CodexNotInstalledError || err instanceof CodexUnsupportedError) {
      io.stderr.write(`session-journal codex-mcp-server: ${err.message}\n`);
      return ExitCodes.STORE_ERROR;
    }
    throw err;
  }
  io.stderr.write(`session-journal codex-mcp-server: codex-mcp-server ${server.version}, sessions in ${store ? store.dir : 'memory only'}\n`);
  const reason = await stopped;
  try {
    await server.close();
  } finally {
    await store?.close();
  }
  io.stderr.write(`session-journal codex-mcp-server: stopped (${reason}), store closed\n`);
  // A codex child still running would keep the process alive; we are done with it.
  setTimeout(() => process.exit(process.exitCode ?? ExitCodes.OK), 2000).unref();
  return ExitCodes.OK;
}

/**
 * The store of codex-mcp-server: --memory; else --dir or --redis (or their
 * variables) as for every command, with a default prefix on Redis; else the
 * default directory.
 */
function codexStoreLocation(args: ParsedArgs, env: NodeJS.ProcessEnv): StoreLocation {
  if (args.switches.has('memory')) {
    if (args.values.has('redis') || args.values.has('prefix')) throw new UsageError('--memory keeps sessions in memory: it does not go with --redis or --prefix');
    return { kind: 'dir', dir: MEMORY_STORE };
  }
  const named = args.values.has('dir') || args.values.has('redis') || Boolean(env[DIR_ENV]) || Boolean(env[REDIS_ENV]);
  if (!named) {
    if (args.values.has('prefix')) throw new UsageError('--prefix goes with --redis (a store on Redis), not with a directory');
    return { kind: 'dir', dir: defaultCodexStoreDir(env) };
  }
  return storeLocation(args, env, { defaultPrefix: CODEX_REDIS_PREFIX });
}

function waitForStop(): Promise<string> {
  return new Promise((resolve) => {
    const stop = (reason: string) => () => resolve(reason);
    process.once('SIGTERM', stop('SIGTERM'));
    process.once('SIGINT', stop('SIGINT'));
    process.stdin.once('end', stop('stdin ended'));
    process.stdin.once('close', stop('stdin closed'));
  });
}
