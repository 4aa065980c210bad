import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SessionStorage } from '../sessions/session-types.js';

/**
 * Runs the real codex-mcp-server (npm `codex-mcp-server`, an optional peer:
 * installed next to session-journal) with any SessionStorage.
 *
 * codex-mcp-server 1.4.x builds its tool handlers once, at module load, in the
 * exported `toolHandlers` object, around one module-level
 * InMemorySessionStorage; `CodexMcpServer` looks handlers up in that same
 * object on every call. Each handler that holds a storage keeps it in a
 * `sessionStorage` property and takes it as its only constructor argument, so
 * replacing those entries with `new Handler(storage)` before the server starts
 * swaps the storage without patching the package.
 */

/** The package's modules, imported by path (1.4.x has no exports map). */
const HANDLERS_MODULE = 'codex-mcp-server/dist/tools/handlers.js';
const SERVER_MODULE = 'codex-mcp-server/dist/server.js';
const STORAGE_MODULE = 'codex-mcp-server/dist/session/storage.js';

/** codex-mcp-server is not installed (or not where Node looks for it). */
export class CodexNotInstalledError extends Error {}
/** codex-mcp-server is installed but not laid out as 1.4.x is. */
export class CodexUnsupportedError extends Error {}

interface ToolHandler {
  sessionStorage?: unknown;
  execute(...args: unknown[]): Promise<unknown>;
  constructor: new (storage: SessionStorage) => ToolHandler;
}

interface CodexModules {
  toolHandlers: Record<string, ToolHandler>;
  CodexMcpServer: new (config: { name: string; version: string }) => { start(): Promise<void>; server?: { close(): Promise<void> } };
  InMemorySessionStorage: new () => SessionStorage;
  version: string;
}

async function importCodex(specifier: string): Promise<Record<string, unknown>> {
  try {
    return (await import(specifier)) as Record<string, unknown>;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const message = String((err as Error).message);
    if (code === 'ERR_MODULE_NOT_FOUND' && /Cannot find package 'codex-mcp-server'/.test(message)) {
      throw new CodexNotInstalledError('codex-mcp-server is not installed: run `npm install codex-mcp-server` next to session-journal (and install the codex CLI)');
    }
    if (code === 'ERR_MODULE_NOT_FOUND' && /Cannot find module '[^']*codex-mcp-server[/\\]dist/.test(message)) {
      throw new CodexUnsupportedError(`this codex-mcp-server version is not supported (${specifier} is missing; 1.4.x is)`);
    }
    throw err;
  }
}

/** Imports codex-mcp-server's modules; throws CodexNotInstalledError or CodexUnsupportedError. */
export async function loadCodexMcpServer(): Promise<CodexModules> {
  const handlers = await importCodex(HANDLERS_MODULE);
  const server = await importCodex(SERVER_MODULE);
  const storage = await importCodex(STORAGE_MODULE);
  const toolHandlers = handlers.toolHandlers as CodexModules['toolHandlers'] | undefined;
  if (!toolHandlers || typeof toolHandlers !== 'object' || typeof server.CodexMcpServer !== 'function' || typeof storage.InMemorySessionStorage !== 'function') {
    throw new CodexUnsupportedError('this codex-mcp-server version is not supported (expected dist/tools/handlers.js toolHandlers and dist/server.js CodexMcpServer, as in 1.4.x)');
  }
  let version = 'unknown';
  try {
    const pkgUrl = import.meta.resolve('codex-mcp-server/package.json');
    version = (JSON.parse(fs.readFileSync(new URL(pkgUrl), 'utf8')) as { version: string }).version;
  } catch {
    // Only informative.
  }
  return {
    toolHandlers,
    CodexMcpServer: server.CodexMcpServer as CodexModules['CodexMcpServer'],
    InMemorySessionStorage: storage.InMemorySessionStorage as CodexModules['InMemorySessionStorage'],
    version,
  };
}

/**
 * Replaces every handler that holds a session storage with a new instance of
 * its class built around `storage`. Returns the tool names replaced; throws
 * CodexUnsupportedError when the codex tool is not among them.
 *
 * When the storage has a `flush()` (SessionStore does), each replaced
 * handler's result is returned only after it resolves: the handlers mutate
 * synchronously and return, so without this a client could get its answer
 * before the turn is durable, or before another server process can see it.
 */
export function installSessionStorage(toolHandlers: Record<string, ToolHandler>, storage: SessionStorage & { flush?: () => Promise<void> }): string[] {
  const replaced: string[] = [];
  for (const [name, handler] of Object.entries(toolHandlers)) {
    if (handler && typeof handler === 'object' && 'sessionStorage' in handler) {
      const fresh = new handler.constructor(storage);
      if (typeof storage.flush === 'function') {
        const execute = fresh.execute.bind(fresh);
        fresh.execute = async (...args: unknown[]) => {
          try {
            return await execute(...args);
          } finally {
            await storage.flush!();
          }
        };
      }
      toolHandlers[name] = fresh;
      replaced.push(name);
    }
  }
  if (!replaced.includes('codex')) {
    throw new CodexUnsupportedError(`this codex-mcp-server version is not supported: no "codex" tool handler holds a sessionStorage (found: ${Object.keys(toolHandlers).join(', ')})`);
  }
  return replaced;
}

export interface CodexServerHandle {
  /** Tools whose handler now uses the given storage. */
  tools: string[];
  /** codex-mcp-server's version. */
  version: string;
  /** Closes the MCP transport (stdin is released). */
  close(): Promise<void>;
}

/**
 * Starts codex-mcp-server on stdio with `storage` (or, with 'memory', its own
 * InMemorySessionStorage). Its console.log and friends are sent to stderr
 * first: stdout carries the MCP protocol and nothing else.
 */
export async function startCodexMcpServer(options: { storage: SessionStorage | 'memory' }): Promise<CodexServerHandle> {
  keepStdoutForProtocol();
  const codex = await loadCodexMcpServer();
  const storage = options.storage === 'memory' ? new codex.InMemorySessionStorage() : options.storage;
  const tools = installSessionStorage(codex.toolHandlers, storage);
  const server = new codex.CodexMcpServer({ name: 'codex-mcp-server', version: codex.version });
  await server.start();
  return {
    tools,
    version: codex.version,
    close: async () => {
      await server.server?.close();
    },
  };
}

/** console.log/info/debug write to stdout in Node; in a stdio MCP server they would corrupt the protocol. */
export function keepStdoutForProtocol(): void {
  const toStderr = (...args: unknown[]) => console.error(...args);
  console.log = toStderr;
  console.info = toStderr;
  console.debug = toStderr;
}

/** The store used when neither --dir nor SESSION_JOURNAL_DIR is given. */
export function defaultCodexStoreDir(env: NodeJS.ProcessEnv = process.env): string {
  const state = env.XDG_STATE_HOME && path.isAbsolute(env.XDG_STATE_HOME) ? env.XDG_STATE_HOME : path.join(env.HOME || os.homedir(), '.local', 'state');
  return path.join(state, 'session-journal', 'codex');
}

/** The value of --dir or SESSION_JOURNAL_DIR that selects codex's own memory-only storage. */
export const MEMORY_STORE = ':memory:';
