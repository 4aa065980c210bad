/** Test plumbing for the codex-mcp-server end-to-end tests: a fake `codex` on PATH and real MCP stdio clients. */
import fs from 'node:fs';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { helperScript } from './temp-store.js';

export const CLI_MAIN = new URL('../../src/cli/main.js', import.meta.url).pathname;

export interface FakeCodex {
  /** Directory holding the `codex` executable; prepend it to PATH. */
  bin: string;
  /** One JSON line per codex invocation. */
  log: string;
  calls(): Array<{ args: string[]; conversationId: string; resumed: boolean; prompt: string }>;
}

/** Writes an executable `codex` into a fresh bin directory under `root`. */
export function installFakeCodex(root: string): FakeCodex {
  const bin = path.join(root, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  const codex = path.join(bin, 'codex');
  fs.writeFileSync(codex, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(helperScript('fake-codex.js'))} "$@"\n`, { mode: 0o755 });
  const log = path.join(root, 'codex-calls.ndjson');
  return {
    bin,
    log,
    calls: () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []),
  };
}

export interface McpServerConnection {
  client: Client;
  /** What tools/list answered right after initialize (as desktop clients ask before any call). */
  tools: Array<{ name: string; outputSchema?: unknown }>;
  /** Everything the server process wrote on stderr so far. */
  stderr(): string;
  /** Every line the server process wrote on stdout (through the tee). */
  stdoutLines(): string[];
  /** Exit code of the server process (after close), as the tee recorded it. */
  exitCode(): string | undefined;
  /** Pid of the server process itself (behind the tee). */
  serverPid(): number;
  callCodex(sessionId: string, prompt: string): Promise<{ text: string; isError: boolean; structuredContent?: Record<string, unknown> }>;
  listSessions(): Promise<Array<{ id: string; createdAt: string; lastAccessedAt: string; turnCount: number }>>;
  close(): Promise<void>;
}

let serial = 0;

/** Variables that set this process's clock (.ci/run runs the suite a year ahead with libfaketime): the servers run on the same clock. */
const CLOCK_VARIABLES = /^(FAKETIME.*|LD_PRELOAD|NODE_OPTIONS|SJ_FILE_TIME_SHIFT_MS)$/;

function clockEnvironment(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => CLOCK_VARIABLES.test(e[0]) && e[1] !== undefined));
}

/**
 * Spawns `node <script> ...args` behind the stdout tee, with the fake codex
 * first on PATH, and connects a real MCP client to it over stdio as the
 * desktop clients do: initialize, then tools/list, then calls (the SDK's
 * Client checks every result against the output schema the listing gave).
 */
export async function connectStdioServer(t: ExecutionContext, root: string, fake: FakeCodex, commandArgs: string[], env: Record<string, string> = {}): Promise<McpServerConnection> {
  const capture = path.join(root, `stdout-${process.pid}-${++serial}.bin`);
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [helperScript('mcp-stdout-tee.js'), capture, process.execPath, ...commandArgs],
    env: { ...clockEnvironment(), PATH: `${fake.bin}${path.delimiter}${process.env.PATH ?? ''}`, FAKE_CODEX_LOG: fake.log, HOME: root, ...env },
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const client = new Client({ name: 'session-journal-test', version: '0.0.0' });
  await client.connect(transport);
  const { tools } = await client.listTools();
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await client.close();
  };
  t.teardown(close);
  const text = (result: unknown) => ((result as { content: Array<{ type: string; text: string }> }).content[0]?.text ?? '');
  return {
    client,
    tools,
    stderr: () => stderr,
    stdoutLines: () => (fs.existsSync(capture) ? fs.readFileSync(capture, 'utf8').split('\n').filter((l) => l !== '') : []),
    serverPid: () => Number(fs.readFileSync(`${capture}.pid`, 'utf8')),
    exitCode: () => (fs.existsSync(`${capture}.exit`) ? fs.readFileSync(`${capture}.exit`, 'utf8') : undefined),
    async callCodex(sessionId, prompt) {
      const result = await client.callTool({ name: 'codex', arguments: { prompt, sessionId } });
      return { text: text(result), isError: Boolean(result.isError), ...(result.structuredContent !== undefined && { structuredContent: result.structuredContent as Record<string, unknown> }) };
    },
    async listSessions() {
      const body = text(await client.callTool({ name: 'listSessions', arguments: {} }));
      return body === 'No active sessions' ? [] : JSON.parse(body);
    },
    close,
  };
}

/** Waits until `check` holds, polling; fails after `ms`. */
export async function waitFor(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
