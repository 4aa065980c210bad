/**
 * JournalEventStore end to end with the SDK's Streamable HTTP server
 * transport (in a child process on 127.0.0.1)
 * and the SDK's client: a client drops mid-stream, resumes with
 * Last-Event-ID and gets exactly what it missed, also across a SIGKILL and
 * restart of the server. (The store API's checks run on every backend in
 * test/conformance/events.test.ts.)
 */
import fs from 'node:fs';
import test from 'ava';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema, LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { countAndDrop, startServer } from '../helpers/mcp-event-clients.js';
import { tempStoreDir } from '../helpers/temp-store.js';

// ---- end to end over HTTP ------------------------------------------------

/** A client that records the logging notifications it gets, with the event id (resumption token) seen before each. */
async function connectClient(url: URL, sessionId?: string) {
  const transport = new StreamableHTTPClientTransport(url, { sessionId, reconnectionOptions: { initialReconnectionDelay: 100, maxReconnectionDelay: 500, reconnectionDelayGrowFactor: 1.5, maxRetries: 5 } });
  const client = new Client({ name: 'resume-test', version: '0.0.0' });
  const received: number[] = [];
  const listeners: Array<(i: number) => void> = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
    const i = (n.params.data as { i: number }).i;
    received.push(i);
    for (const l of listeners) l(i);
  });
  await client.connect(transport);
  return { client, transport, received, onNotification: (l: (i: number) => void) => listeners.push(l) };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, k) => from + k);
const N = 20;
const DROP_AT = 6;

/**
 * Calls `count`, and disconnects once DROP_AT notifications have arrived.
 * Returns the resumption token of the last event received and what arrived.
 */
async function callAndDrop(url: URL) {
  const first = await connectClient(url);
  const sessionId = first.transport.sessionId!;
  return { ...(await countAndDrop(first, N, DROP_AT)), sessionId };
}

/**
 * Resumes the `count` call from `token` with a new client. The server may not
 * have noticed the old connection's abort yet and answer 409 Conflict (the
 * stream still has a live connection); the SDK client does not retry that,
 * so this does, a bounded number of times.
 */
async function resume(url: URL, token: string, sessionId?: string) {
  for (let attempt = 1; ; attempt++) {
    const again = await connectClient(url, sessionId);
    const conflict = new Promise<'conflict'>((resolve) => {
      again.client.onerror = (err) => void (/\b409\b|Conflict/.test(err.message) && resolve('conflict'));
    });
    const request = again.client.request({ method: 'tools/call', params: { name: 'count', arguments: { n: N } } }, CallToolResultSchema, { resumptionToken: token, timeout: 30_000 });
    const outcome = await Promise.race([request, conflict]);
    if (outcome !== 'conflict') {
      await again.client.close();
      return { result: outcome, received: again.received, attempts: attempt };
    }
    request.catch(() => undefined);
    await again.client.close();
    if (attempt >= 20) throw new Error('the server kept answering 409 Conflict to the resumption');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

for (const mode of ['per-session', 'shared'] as const) {
  test(`a client that drops mid-stream resumes with Last-Event-ID and gets exactly the missed events, in order (${mode} store)`, async (t) => {
    const dir = tempStoreDir(t);
    const server = await startServer(t, dir, mode);
    const { resumeFrom, gotBeforeDrop, sessionId } = await callAndDrop(server.url);
    t.deepEqual(gotBeforeDrop, range(1, DROP_AT));
    // Resume at once, while the tool is still sending: replayed events, then live ones.
    const { result, received } = await resume(server.url, resumeFrom, sessionId);
    t.deepEqual(received, range(DROP_AT + 1, N), server.stderr());
    t.deepEqual(result.content, [{ type: 'text', text: `count sent ${N}` }]);
  });
}

test('the same after the server process is SIGKILLed and restarted on the same store', async (t) => {
  const dir = tempStoreDir(t);
  const first = await startServer(t, dir);
  const { resumeFrom, gotBeforeDrop } = await callAndDrop(first.url);
  t.deepEqual(gotBeforeDrop, range(1, DROP_AT));
  await first.resultStored(); // every event and the result are stored (storeEvent resolved)
  first.child.kill('SIGKILL');
  await new Promise((resolve) => first.child.once('exit', resolve));

  // The new process knows no MCP session (the SDK keeps them in memory and cannot restore one): the
  // client opens a new one and resumes the old stream by its event id. Only the shared store allows
  // that; a per-session view refuses another session's ids (event-store-sessions.test.ts).
  const second = await startServer(t, dir);
  const { result, received } = await resume(second.url, resumeFrom);
  t.deepEqual(received, range(DROP_AT + 1, N), second.stderr());
  t.deepEqual(result.content, [{ type: 'text', text: `count sent ${N}` }]);
  t.false(/warning/.test(second.stderr()), second.stderr());
});

test('the standalone GET stream resumes too: the server drops it mid-broadcast and the client reconnects with Last-Event-ID', async (t) => {
  const dir = tempStoreDir(t);
  const server = await startServer(t, dir, 'per-session');
  const c = await connectClient(server.url);
  t.teardown(() => c.client.close());
  // Give the client's GET stream a moment to open, so broadcasts are live.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const result = await c.client.callTool({ name: 'broadcast', arguments: { n: 12, intervalMs: 40, dropAfter: 4 } });
  t.deepEqual(result.content, [{ type: 'text', text: 'broadcast sent 12' }]);
  const deadline = Date.now() + 10_000;
  while (c.received.length < 12 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
  t.deepEqual(c.received, range(1, 12), server.stderr());
  t.true(fs.readdirSync(dir).some((n) => n.startsWith('journal-')));
});
