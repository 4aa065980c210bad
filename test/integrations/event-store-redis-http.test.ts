/**
 * Two MCP server processes on one Redis store, as two hosts behind a load
 * balancer: the SDK's own Client and StreamableHTTPClientTransport call a
 * tool on host A, drop the connection mid-stream, and resume on host B with
 * the last event id (the SDK's resumption token, sent as `Last-Event-ID`).
 * B holds none of the events in memory, and writes nothing after them (the
 * client's session on B is opened first): its replay catches up from Redis
 * (replayEventsAfter awaits the journal's follow()) and sends exactly the
 * events A stored after that id, in order, none twice, the tool's result
 * last.
 *
 * Both servers use the shared (unscoped) store: an MCP session lives in the
 * memory of the process that initialized it, so the client opens a new
 * session on B and resumes A's stream by its event id alone (the same as
 * after a restart, test/integrations/event-store.test.ts).
 */
import test from 'ava';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema, LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { countAndDrop, messagesOf, openRawSession, resumeRaw, startServer, type ServerProcess, type StoredReport } from '../helpers/mcp-event-clients.js';
import { openTestConnection } from '../helpers/redis-conn.js';
import { sharedRedisUrl, uniquePrefix } from '../helpers/redis-server.js';

const N = 20;
const DROP_AT = 6;
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, k) => from + k);

/** A request as it left the client: which server, which method, and the Last-Event-ID it carried. */
interface SentRequest {
  port: string;
  method: string;
  lastEventId: string | null;
}

/** The SDK's client, on a fetch that logs each request, recording every logging notification ({i, pid} of its data). */
async function connectClient(url: URL, sent: SentRequest[]) {
  const logged: typeof fetch = (input, init) => {
    const target = new URL(input instanceof Request ? input.url : String(input));
    sent.push({ port: target.port, method: init?.method ?? 'GET', lastEventId: new Headers(init?.headers).get('last-event-id') });
    return fetch(input, init);
  };
  const transport = new StreamableHTTPClientTransport(url, { fetch: logged, reconnectionOptions: { initialReconnectionDelay: 100, maxReconnectionDelay: 500, reconnectionDelayGrowFactor: 1.5, maxRetries: 3 } });
  const client = new Client({ name: 'redis-resume-test', version: '0.0.0' });
  const received: Array<{ i: number; pid: number }> = [];
  const listeners: Array<(i: number) => void> = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
    const { i, pid } = n.params.data as { i: number; pid: number };
    received.push({ i, pid });
    for (const l of listeners) l(i);
  });
  await client.connect(transport);
  return { client, transport, received, onNotification: (l: (i: number) => void) => listeners.push(l) };
}

/** Two server processes on one fresh prefix of the shared Redis; the prefix's keys are removed when the test ends. */
async function twoHosts(t: import('ava').ExecutionContext): Promise<[ServerProcess, ServerProcess]> {
  const url = await sharedRedisUrl();
  const prefix = uniquePrefix('mcp-http');
  await openTestConnection(t, url, { prefix }); // its teardown drops the store's keys
  // Both are up before any event exists: B's view starts empty, so whatever it replays it read from Redis.
  return Promise.all([startServer(t, { redis: { url, prefix } }), startServer(t, { redis: { url, prefix } })]);
}

/**
 * Calls `count` on `server` and closes the client once DROP_AT notifications
 * have arrived: returns the resumption token of the last event received, and
 * what arrived.
 */
async function callAndDrop(server: ServerProcess, sent: SentRequest[]) {
  return countAndDrop(await connectClient(server.url, sent), N, DROP_AT); // A's tool goes on, and A goes on storing its events
}

/** A's stored events of the stream `token` belongs to, after it, without priming events (which are never replayed). */
function storedAfter(stored: readonly StoredReport[], token: string): StoredReport[] {
  const at = stored.findIndex((e) => e.id === token);
  if (at === -1) throw new Error(`the server never reported storing ${token}`);
  const stream = stored[at]!.stream;
  return stored.slice(at + 1).filter((e) => e.stream === stream && Object.keys(e.message).length > 0);
}

test('SDK client drops mid-stream on host A and resumes on host B (same Redis) with Last-Event-ID: exactly the missed events, in order, none twice', async (t) => {
  const [a, b] = await twoHosts(t);
  const sent: SentRequest[] = [];
  // The client's session on B exists before A stores anything, so B writes nothing after A's events
  // (a write of its own would catch B up as a side effect): the replay alone must fetch them.
  const again = await connectClient(b.url, sent);
  t.teardown(() => again.client.close());
  const { resumeFrom, gotBeforeDrop } = await callAndDrop(a, sent);
  t.deepEqual(gotBeforeDrop, range(1, DROP_AT));
  const dropEvent = a.stored.find((e) => e.message.params?.data?.i === DROP_AT);
  t.is(resumeFrom, dropEvent?.id ?? 'no stored event of i = DROP_AT', 'the SDK\'s resumption token is the id A stored for the last event the client got');

  // The load balancer sends the reconnecting client to B once A has stored the whole call (result included).
  await a.resultStored();
  const result = await again.client.request({ method: 'tools/call', params: { name: 'count', arguments: { n: N } } }, CallToolResultSchema, { resumptionToken: resumeFrom, timeout: 30_000 });

  t.deepEqual(result.content, [{ type: 'text', text: `count sent ${N}` }]);
  t.deepEqual(
    again.received.map((r) => r.i),
    range(DROP_AT + 1, N),
    b.stderr(),
  );
  t.true(
    again.received.every((r) => r.pid === a.child.pid),
    'every replayed notification is one A sent',
  );
  // The SDK sent the token to B as Last-Event-ID, on a GET: the resumption went through the protocol, not around it.
  const bPort = b.url.port;
  t.deepEqual(
    sent.filter((r) => r.port === bPort && r.lastEventId !== null).map((r) => [r.method, r.lastEventId]),
    [['GET', resumeFrom]],
  );
  // What B replayed is, id for id, what A stored after the token: the missed notifications, then the result.
  const expected = storedAfter(a.stored, resumeFrom);
  t.is(expected.length, N - DROP_AT + 1);
  // B reports over IPC, which may arrive after the HTTP stream that carried the same events.
  await b.waitFor(() => b.replayed.length >= expected.length);
  t.deepEqual(
    b.replayed.map((e) => e.id),
    expected.map((e) => e.id),
  );
  t.is(new Set(b.replayed.map((e) => e.id)).size, b.replayed.length, 'no event replayed twice');
  t.truthy(b.replayed.at(-1)?.message.result, 'the tool\'s result comes last');
  t.false(
    b.stored.some((e) => e.message.method === 'notifications/message'),
    'B stored none of the replayed events again',
  );
  t.false(/warning/i.test(a.stderr() + b.stderr()), a.stderr() + b.stderr());
});

test('a resumption on host B while host A is still sending gets every event A had stored before it, in order, from after the token', async (t) => {
  const [a, b] = await twoHosts(t);
  const session = await openRawSession(b.url); // before A's events, as above
  const { resumeFrom, gotBeforeDrop } = await callAndDrop(a, []);
  t.deepEqual(gotBeforeDrop, range(1, DROP_AT));
  // A few more events stored on A while nobody listens; A's tool is still running.
  await a.waitFor(() => storedAfter(a.stored, resumeFrom).length >= 4);
  const storedBefore = storedAfter(a.stored, resumeFrom).map((e) => e.id);
  // B sends what was in Redis when it replayed (at least storedBefore); A's later events are A's to deliver live.
  const outcome = await resumeRaw(b.url, session, resumeFrom, (events) => events.filter((e) => e.data !== '').length >= storedBefore.length);
  t.is(outcome.status, 200);
  if (!('events' in outcome)) return;
  const ids = outcome.events.filter((e) => e.data !== '').map((e) => e.id);
  t.deepEqual(ids.slice(0, storedBefore.length), storedBefore);
  const is = messagesOf(outcome.events)
    .filter((m) => m.method === 'notifications/message')
    .map((m) => m.params?.data?.i);
  t.deepEqual(is, range(DROP_AT + 1, DROP_AT + is.length));
  t.false(/warning/i.test(a.stderr() + b.stderr()), a.stderr() + b.stderr());
});
