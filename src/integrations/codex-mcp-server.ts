import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SessionStorage } from '../sessions/session-types.js';
import { SessionJournalError } from '../errors.js';
import { RepeatedFailure, WarningCodes, writeWarningToStderr, type WarningHandler } from '../engine/warnings.js';
import { TurnLimitedStorage, type FlushableStorage } from './turn-limit.js';

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
 *
 * Its `codex` tool also declares an `outputSchema`, but the handler returns
 * `structuredContent` only when STRUCTURED_CONTENT_ENABLED is set. A client
 * that lists tools first (the SDK's Client, the desktop clients) then rejects
 * every codex call with -32600 "has an output schema but did not return
 * structured content". startCodexMcpServer makes the listing match what is
 * sent: the schema is listed only when structured content is enabled.
 */

/** The package's modules, imported by path (1.4.x has no exports map). */
const HANDLERS_MODULE = 'codex-mcp-server/dist/tools/handlers.js';
const SERVER_MODULE = 'codex-mcp-server/dist/server.js';
const STORAGE_MODULE = 'codex-mcp-server/dist/session/storage.js';
const DEFINITIONS_MODULE = 'codex-mcp-server/dist/tools/definitions.js';

/** codex-mcp-server is not installed (or not where Node looks for it). */
export class CodexNotInstalledError extends Error {}
/** codex-mcp-server is installed but not laid out as 1.4.x is. */
export class CodexUnsupportedError extends Error {}

interface ToolHandler {
  sessionStorage?: unknown;
  execute(...args: unknown[]): Promise<unknown>;
  constructor: new (storage: SessionStorage) => ToolHandler;
}

/** A tool as codex-mcp-server lists it (tools/list). */
interface ToolDefinition {
  name: string;
  outputSchema?: unknown;
}

interface CodexModules {
  toolHandlers: Record<string, ToolHandler>;
  /** The array tools/list returns, when the package has it where 1.4.x does. */
  toolDefinitions: ToolDefinition[] | undefined;
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
      throw new CodexNotInstalledError('codex-mcp-server is not installed: run `npm install codex-mcp-server` next to session-journal, or name both to npx (`npx -y -p session-journal -p codex-mcp-server session-journal codex-mcp-server`); and install the codex CLI');
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
  const definitions = await importCodex(DEFINITIONS_MODULE);
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
    toolDefinitions: Array.isArray(definitions.toolDefinitions) ? (definitions.toolDefinitions as ToolDefinition[]) : undefined,
    CodexMcpServer: server.CodexMcpServer as CodexModules['CodexMcpServer'],
    InMemorySessionStorage: storage.InMemorySessionStorage as CodexModules['InMemorySessionStorage'],
    version,
  };
}

export interface TurnLimitOptions {
  /**
   * Largest prompt + response stored as one turn, in UTF-8 bytes (default:
   * no limit but the store's maxRecordBytes). A codex call whose prompt
   * alone is larger is refused before codex runs; a larger answer is
   * returned whole and stored cut to fit (TURN_TRUNCATED warning).
   */
  maxTurnBytes?: number;
  /** Where TURN_TRUNCATED (and CATCH_UP_FAILED) go (default: stderr). */
  onWarning?: WarningHandler;
  /**
   * Awaited before each tool call: for a store on Redis, `() =>
   * store.catchUp()`, so that a call sees every turn another host had
   * acknowledged before it (a session created through one server is
   * continued through another). When it rejects with a store error
   * (REDIS_UNAVAILABLE), a CATCH_UP_FAILED warning says so (collapsed when it
   * repeats, RECOVERED when it works again) and the call goes on from this
   * process's view, as a read of a directory store does.
   */
  catchUp?: () => Promise<void>;
}

/**
 * Replaces every handler that holds a session storage with a new instance of
 * its class built around `storage`. Returns the tool names replaced; throws
 * CodexUnsupportedError when the codex tool is not among them.
 *
 * A turn is added after codex has answered, so it must never fail the call:
 * the handlers get `storage` through TurnLimitedStorage, which stores an
 * answer too large for the store cut to fit. With `maxTurnBytes`, a codex
 * call whose prompt alone is over it is refused before codex runs.
 *
 * When the storage has a `flush()` (SessionStore does), each replaced
 * handler's result is returned only after it resolves: the handlers mutate
 * synchronously and return, so without this a client could get its answer
 * before the turn is durable, or before another server process can see it.
 */
export function installSessionStorage(toolHandlers: Record<string, ToolHandler>, storage: FlushableStorage, options: TurnLimitOptions = {}): string[] {
  const replaced: string[] = [];
  const limited = new TurnLimitedStorage(storage, options.maxTurnBytes, options.onWarning ?? writeWarningToStderr);
  const catchUp = catchUpBeforeCalls(storage, options);
  for (const [name, handler] of Object.entries(toolHandlers)) {
    if (handler && typeof handler === 'object' && 'sessionStorage' in handler) {
      const fresh = new handler.constructor(limited);
      const execute = fresh.execute.bind(fresh);
      fresh.execute = async (...args: unknown[]) => {
        const refusal = name === 'codex' ? promptRefusal(limited, args[0], options.maxTurnBytes) : undefined;
        if (refusal) return refusal;
        await catchUp();
        try {
          return await execute(...args);
        } finally {
          await storage.flush?.();
        }
      };
      toolHandlers[name] = fresh;
      replaced.push(name);
    }
  }
  if (!replaced.includes('codex')) {
    throw new CodexUnsupportedError(`this codex-mcp-server version is not supported: no "codex" tool handler holds a sessionStorage (found: ${Object.keys(toolHandlers).join(', ')})`);
  }
  return replaced;
}

/** TurnLimitOptions.catchUp, made never to fail a call: a store error is warned (collapsed) and the call answers from the view. */
function catchUpBeforeCalls(storage: FlushableStorage, options: TurnLimitOptions): () => Promise<void> {
  const catchUp = options.catchUp;
  if (!catchUp) return async () => undefined;
  const where = (storage as { dir?: unknown }).dir;
  const failures = new RepeatedFailure(WarningCodes.CATCH_UP_FAILED, "catching up with other hosts' commits before a tool call", typeof where === 'string' ? where : 'the session store', options.onWarning ?? writeWarningToStderr, Date.now);
  return async () => {
    try {
      await catchUp();
    } catch (err) {
      // Bugs are not the store's: they fail the call.
      if (!(err instanceof SessionJournalError)) throw err;
      failures.failed(`${err.code}: ${err.message}`, "the call answers from this process's view");
      return;
    }
    failures.succeeded();
  };
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
export async function startCodexMcpServer(options: { storage: SessionStorage | 'memory' } & TurnLimitOptions): Promise<CodexServerHandle> {
  keepStdoutForProtocol();
  const codex = await loadCodexMcpServer();
  const storage = options.storage === 'memory' ? new codex.InMemorySessionStorage() : options.storage;
  const tools = installSessionStorage(codex.toolHandlers, storage, options);
  if (codex.toolDefinitions) listOutputSchemasOnlyWhenSent(codex.toolDefinitions);
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

/** A codex call with a session whose prompt alone is over maxTurnBytes: the error result it gets instead of running codex. */
function promptRefusal(storage: TurnLimitedStorage, args: unknown, maxTurnBytes: number | undefined): { content: Array<{ type: 'text'; text: string }>; isError: true } | undefined {
  const { prompt, sessionId } = (args ?? {}) as { prompt?: unknown; sessionId?: unknown };
  if (typeof prompt !== 'string' || sessionId === undefined || !storage.promptTooLarge(prompt)) return undefined;
  return {
    content: [{ type: 'text', text: `The prompt is ${Buffer.byteLength(prompt)} bytes, more than the ${maxTurnBytes} bytes a session turn may hold here (--max-turn-bytes): it was not sent to codex. Shorten it, call without sessionId, or raise the limit.` }],
    isError: true,
  };
}

/** STRUCTURED_CONTENT_ENABLED as codex-mcp-server 1.4.x reads it (tools/handlers.js). */
export const structuredContentEnabled = (env: NodeJS.ProcessEnv = process.env): boolean => ['1', 'true', 'yes', 'on'].includes((env.STRUCTURED_CONTENT_ENABLED ?? '').toLowerCase());

/**
 * Leaves a tool's `outputSchema` in the tools/list answer only when its
 * results carry `structuredContent` (STRUCTURED_CONTENT_ENABLED set): a
 * client that saw a schema rejects every result without it (-32600), and
 * enabling structured content instead would make clients that show
 * `structuredContent` in place of the text (some Claude Code versions)
 * show the metadata instead of codex's answer. Returns the tools changed.
 */
export function listOutputSchemasOnlyWhenSent(definitions: Array<{ name: string; outputSchema?: unknown }>, env: NodeJS.ProcessEnv = process.env): string[] {
  if (structuredContentEnabled(env)) return [];
  const changed: string[] = [];
  for (const def of definitions) {
    if (def && typeof def === 'object' && 'outputSchema' in def) {
      delete def.outputSchema;
      changed.push(def.name);
    }
  }
  return changed;
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
