/**
 * Test plumbing for the event-store end-to-end tests: the Streamable HTTP
 * server of mcp-event-server.ts in a child process, and raw HTTP clients that
 * speak to it as any client (or attacker) could: initialize, call a tool and
 * read its SSE response, or send a GET with `Last-Event-ID`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { ExecutionContext } from 'ava';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import type { RedisLocation } from '../../src/storage/redis/redis-location.js';
import { helperScript } from './temp-store.js';

export type ServerMode = 'per-session' | 'shared';

export interface StoredReport {
  session: string;
  stream: string;
  id: string;
  message: { method?: string; params?: { data?: { i?: number; tag?: string } } };
}

/** Where a server keeps its events: a store directory, or a store on Redis (several servers on one prefix are several hosts). */
export type StoreLocation = string | { redis: RedisLocation };

export interface ReplayedReport {
  id: string;
  message: StoredReport['message'] & { result?: unknown };
}

export interface ServerProcess {
  child: ChildProcess;
  url: URL;
  stderr(): string;
  /** Every event the server stored, in the order it reported them. */
  stored: StoredReport[];
  /** Every event a resumption on this server sent, in order (stored by this process or another). */
  replayed: ReplayedReport[];
  /** Resolves when the server reports a tool result stored in the event store. */
  resultStored(): Promise<void>;
  /** Resolves once `condition` holds for what the server reported (rejects after 10 s). */
  waitFor(condition: () => boolean): Promise<void>;
}

export async function startServer(t: ExecutionContext, location: StoreLocation, mode: ServerMode = 'shared'): Promise<ServerProcess> {
  const arg = typeof location === 'string' ? location : JSON.stringify(location);
  const child = fork(helperScript('mcp-event-server.js'), [arg, '60000', mode], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  t.teardown(() => void child.kill('SIGKILL'));
  const stored: StoredReport[] = [];
  const replayed: ReplayedReport[] = [];
  const listeners = new Set<() => void>();
  let doneCount = 0;
  child.on('message', (m: { resultStored?: string; stored?: StoredReport; replayed?: ReplayedReport }) => {
    if (m.stored) stored.push(m.stored);
    if (m.replayed) replayed.push(m.replayed);
    if (m.resultStored !== undefined) doneCount++;
    for (const l of listeners) l();
  });
  const waitFor = (condition: () => boolean): Promise<void> =>
    new Promise((resolve, reject) => {
      if (condition()) return resolve();
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`the server did not report what was awaited within 10 s: ${stderr}`));
      }, 10_000);
      const check = (): void => {
        if (!condition()) return;
        clearTimeout(timer);
        listeners.delete(check);
        resolve();
      };
      listeners.add(check);
    });
  const port = await new Promise<number>((resolve, reject) => {
    child.on('message', (m: { port?: number }) => m.port && resolve(m.port));
    child.once('exit', (code) => reject(new Error(`server exited ${code}: ${stderr}`)));
  });
  return { child, url: new URL(`http://127.0.0.1:${port}/mcp`), stderr: () => stderr, stored, replayed, resultStored: () => waitFor(() => doneCount > 0), waitFor };
}

// ---- raw HTTP --------------------------------------------------------------

/** The protocol version whose clients get priming events (event ids on every request stream). */
const PROTOCOL_VERSION = '2025-11-25';

export interface SseEvent {
  id: string | undefined;
  data: string;
}

/** One JSON-RPC message per non-empty data field (the priming event's is empty). */
export function messagesOf(events: readonly SseEvent[]): Array<{ id?: number; result?: unknown; method?: string; params?: { data?: { i?: number; tag?: string } } }> {
  return events.filter((e) => e.data !== '').map((e) => JSON.parse(e.data));
}

/** The tags of the notifications among `events`. */
export function tagsOf(events: readonly SseEvent[]): Array<string | undefined> {
  return messagesOf(events)
    .filter((m) => m.method === 'notifications/message')
    .map((m) => m.params?.data?.tag);
}

function parseSse(text: string): SseEvent[] {
  const events: SseEvent[] = [];
  for (const block of text.split('\n\n')) {
    if (block.trim() === '') continue;
    let id: string | undefined;
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('id:')) id = line.slice(3).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).trim());
    }
    if (id !== undefined || data.length > 0) events.push({ id, data: data.join('\n') });
  }
  return events;
}

const headers = (sessionId?: string): Record<string, string> => ({
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': PROTOCOL_VERSION,
  ...(sessionId && { 'mcp-session-id': sessionId }),
});

/** Initializes an MCP session over plain HTTP; returns its id. No standalone GET stream is opened. */
export async function openRawSession(url: URL): Promise<string> {
  const init = await fetch(url, {
    method: 'POST',
    headers: headers(),
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'raw-http', version: '0.0.0' } } }),
  });
  const sessionId = init.headers.get('mcp-session-id');
  await init.text();
  if (!init.ok || !sessionId) throw new Error(`initialize failed: ${init.status}`);
  const initialized = await fetch(url, { method: 'POST', headers: headers(sessionId), body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
  await initialized.text();
  return sessionId;
}

/** Calls a tool and reads its whole SSE response (the stream ends with the result). */
export async function callToolRaw(url: URL, sessionId: string, requestId: number, name: string, args: object): Promise<SseEvent[]> {
  const res = await fetch(url, { method: 'POST', headers: headers(sessionId), body: JSON.stringify({ jsonrpc: '2.0', id: requestId, method: 'tools/call', params: { name, arguments: args } }) });
  if (!res.ok) throw new Error(`tools/call ${name} answered ${res.status}: ${await res.text()}`);
  return parseSse(await res.text());
}

export type ResumeOutcome = { status: 200; events: SseEvent[] } | { status: number; text: string };

/**
 * A GET with `Last-Event-ID`, as a reconnecting client sends it. A refusal
 * is read whole; an SSE stream (which the server keeps open for live events)
 * is read until `enough` holds of what arrived, then dropped.
 */
export async function resumeRaw(url: URL, sessionId: string, lastEventId: string, enough: (events: SseEvent[]) => boolean): Promise<ResumeOutcome> {
  const abort = new AbortController();
  const { accept: _json, ...rest } = headers(sessionId);
  const res = await fetch(url, { method: 'GET', headers: { ...rest, accept: 'text/event-stream', 'last-event-id': lastEventId }, signal: abort.signal });
  if (res.status !== 200 || !res.headers.get('content-type')?.includes('text/event-stream')) return { status: res.status, text: await res.text() };
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const deadline = setTimeout(() => abort.abort(), 10_000);
  try {
    for (;;) {
      const events = parseSse(text.slice(0, text.lastIndexOf('\n\n') + 2));
      if (enough(events)) return { status: 200, events };
      const { value, done } = await reader.read();
      if (done) throw new Error(`the stream ended before the awaited events arrived: ${text}`);
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    clearTimeout(deadline);
    abort.abort();
  }
}

/** A connected SDK client and a way to hear the `count` tool's notifications (their `i`). */
export interface CountingClient {
  client: Client;
  onNotification(listener: (i: number) => void): void;
}

/**
 * Calls the `count` tool (`n` notifications, 40 ms apart) and closes the
 * client once notification `dropAt` arrived, which aborts the SSE stream
 * while the server goes on storing events. Returns the resumption token of
 * the last event received before the drop and what arrived; the call itself
 * must have failed on the client.
 */
export async function countAndDrop(first: CountingClient, n: number, dropAt: number): Promise<{ resumeFrom: string; gotBeforeDrop: number[] }> {
  let lastToken: string | undefined;
  let dropped = false;
  let resumeFrom: string | undefined;
  const gotBeforeDrop: number[] = [];
  const droppedAt = new Promise<void>((resolve) =>
    first.onNotification((i) => {
      if (dropped) return;
      gotBeforeDrop.push(i);
      if (i === dropAt) {
        dropped = true;
        resumeFrom = lastToken;
        resolve();
      }
    }),
  );
  const call = first.client
    .request({ method: 'tools/call', params: { name: 'count', arguments: { n, intervalMs: 40 } } }, CallToolResultSchema, { onresumptiontoken: (token) => void (dropped || (lastToken = token)) })
    .catch((err: Error) => err);
  await droppedAt;
  await first.client.close();
  if (!((await call) instanceof Error)) throw new Error('the dropped call should have failed on the client');
  return { resumeFrom: resumeFrom!, gotBeforeDrop };
}
