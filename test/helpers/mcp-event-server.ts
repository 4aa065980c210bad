/**
 * A Streamable HTTP MCP server on 127.0.0.1 whose transports use a
 * JournalEventStore, for the resumption tests. Run with fork():
 *   node mcp-event-server.js LOCATION [LIFETIME_MS] [per-session|shared]
 * LOCATION is a store directory, or a store on Redis as JSON
 * (`{"redis":{"url":"redis://127.0.0.1:6379","prefix":"p"}}`): several
 * such processes on one prefix are the hosts behind a load balancer.
 * `per-session` (the README's wiring) gives each MCP session's transport
 * `store.forSession(id)`; `shared` (the default) gives every transport the
 * store itself. It reports {port} once listening, {stored: {session, stream,
 * id, message}} after each event is stored, {sent: i} after each
 * notification is stored, {toolDone: n} when a tool call has finished,
 * {resultStored: id} once its result is stored, {replayed: {id, message}}
 * for each event a resumption sent (whichever process stored it), and exits
 * by itself after LIFETIME_MS (default 60 s).
 *
 * Tools: `count {n, intervalMs, tag}` sends n logging notifications on the
 * request's stream, then answers; `broadcast {n, intervalMs, dropAfter, tag}`
 * sends n on the standalone GET stream, closing that stream (the client
 * reconnects with Last-Event-ID) after `dropAfter` of them. Each
 * notification's data is `{i, tool, tag, pid}`, pid the process that sent it.
 */
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport, type EventStore } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { JournalEventStore, formatWarning } from '../../src/index.js';
import type { RedisLocation } from '../../src/storage/redis/redis-location.js';

const location = process.argv[2];
const lifetimeMs = Number(process.argv[3] ?? 60_000);
const mode = process.argv[4] ?? 'shared';
if (!location || (mode !== 'shared' && mode !== 'per-session')) throw new Error('usage: mcp-event-server LOCATION [LIFETIME_MS] [per-session|shared]');
const where: { dir: string } | { redis: RedisLocation } = location.startsWith('{') ? { redis: (JSON.parse(location) as { redis: RedisLocation }).redis } : { dir: location };

const store = await JournalEventStore.open({ ...where, onWarning: (w) => process.stderr.write(formatWarning(w) + '\n') });
/** Tells the parent what was stored, and once a tool result is stored, i.e. a SIGKILL can no longer lose any of that call's stream. */
function reporting(eventStore: EventStore, session: string): EventStore {
  return {
    getStreamIdForEventId: (id) => eventStore.getStreamIdForEventId!(id),
    replayEventsAfter: (id, { send }) =>
      eventStore.replayEventsAfter(id, {
        send: async (eventId, message) => {
          report({ replayed: { id: eventId, message } });
          await send(eventId, message);
        },
      }),
    storeEvent: async (streamId, message) => {
      const id = await eventStore.storeEvent(streamId, message);
      report({ stored: { session, stream: streamId, id, message } });
      if ('result' in message && 'content' in message.result) report({ resultStored: id }); // a tool's result, not initialize's
      return id;
    },
  };
}
// Both satisfy the SDK's interface as declared (checked at compile time).
const shared: EventStore = store;
const forSession = (id: string): EventStore => store.forSession(id);
const transports = new Map<string, StreamableHTTPServerTransport>();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const report = (message: object) => process.connected && process.send!(message);

function mcpServer(transport: () => StreamableHTTPServerTransport): Server {
  const server = new Server({ name: 'event-store-test', version: '0.0.0' }, { capabilities: { tools: {}, logging: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({
    tools: [
      { name: 'count', inputSchema: { type: 'object' } },
      { name: 'broadcast', inputSchema: { type: 'object' } },
    ],
  }));
  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const args = (request.params.arguments ?? {}) as { n?: number; intervalMs?: number; dropAfter?: number; tag?: string };
    const n = Math.min(args.n ?? 10, 1000);
    const intervalMs = Math.min(args.intervalMs ?? 20, 1000);
    for (let i = 1; i <= n; i++) {
      const notification = { method: 'notifications/message' as const, params: { level: 'info' as const, data: { i, tool: request.params.name, tag: args.tag, pid: process.pid } } };
      if (request.params.name === 'broadcast') {
        await server.notification(notification); // no related request: the standalone _GET_stream
        if (i === args.dropAfter) transport().closeStandaloneSSEStream();
      } else {
        await extra.sendNotification(notification);
      }
      report({ sent: i });
      await sleep(intervalMs);
    }
    report({ toolDone: n });
    return { content: [{ type: 'text', text: `${request.params.name} sent ${n}` }] };
  });
  return server;
}

const httpServer = http.createServer((req, res) => {
  void (async () => {
    const sid = req.headers['mcp-session-id'];
    let transport = typeof sid === 'string' ? transports.get(sid) : undefined;
    if (!transport) {
      if (typeof sid === 'string') {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }));
        return;
      }
      // The session id is made first, so the transport's event store can be that session's view.
      const sessionId = randomUUID();
      const created: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => sessionId,
        eventStore: reporting(mode === 'per-session' ? forSession(sessionId) : shared, sessionId),
        retryInterval: 100,
        onsessioninitialized: (id) => void transports.set(id, created),
      });
      await mcpServer(() => created).connect(created);
      transport = created;
    }
    await transport.handleRequest(req, res);
  })().catch((err) => {
    process.stderr.write(`request failed: ${(err as Error).stack}\n`);
    if (!res.headersSent) res.writeHead(500).end();
  });
});

httpServer.listen(0, '127.0.0.1', () => {
  const address = httpServer.address();
  report({ port: typeof address === 'object' && address ? address.port : 0 });
});

setTimeout(() => {
  void store.close().finally(() => process.exit(0));
}, lifetimeMs);
