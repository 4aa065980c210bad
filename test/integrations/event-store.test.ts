/**
 * JournalEventStore: unit checks on the store API, and end to end with the
 * SDK's Streamable HTTP server transport (in a child process on 127.0.0.1)
 * and the SDK's client: a client drops mid-stream, resumes with
 * Last-Event-ID and gets exactly what it missed, also across a SIGKILL and
 * restart of the server.
 */
import fs from 'node:fs';
import test from 'ava';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema, LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { JournalEventStore, SessionJournalError, UNKNOWN_EVENT_ID } from '../../src/index.js';
import { startServer } from '../helpers/mcp-event-clients.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';

const msg = (i: number, method = 'notifications/message') => ({ jsonrpc: '2.0' as const, method, params: { i } });
/** The sequence number an event id starts with (for ordering checks only: the store never parses ids). */
const seqOf = (id: string): number => Number(id.split('-')[0]);

async function replayAll(store: JournalEventStore, after: string): Promise<{ stream: string; events: Array<[string, unknown]> }> {
  const events: Array<[string, unknown]> = [];
  const stream = await store.replayEventsAfter(after, { send: async (id, m) => void events.push([id, m]) });
  return { stream, events };
}

test('storeEvent ids are unique and ordered across two writers; the stream is found from stored data, _GET_stream included', async (t) => {
  const dir = tempStoreDir(t);
  const a = await JournalEventStore.open({ dir, fsync: false });
  const b = await JournalEventStore.open({ dir, fsync: false });
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const primingA = await a.storeEvent('req-1', {});
  const ids = await Promise.all([
    ...Array.from({ length: 20 }, (_, i) => a.storeEvent(i % 2 ? 'req-1' : '_GET_stream', msg(i))),
    ...Array.from({ length: 20 }, (_, i) => b.storeEvent(i % 2 ? 'req-1' : '_GET_stream', msg(100 + i))),
  ]);
  t.is(new Set([primingA, ...ids]).size, 41, 'ids are unique');
  t.is(await b.getStreamIdForEventId(primingA), 'req-1', 'b sees a\'s events');
  t.is(await a.getStreamIdForEventId(ids[0]!), '_GET_stream');
  t.is(await a.getStreamIdForEventId('no-such-id'), undefined);

  // Replay from the priming event on either process: every req-1 event, in id order, without the priming {}.
  for (const store of [a, b]) {
    const { stream, events } = await replayAll(store, primingA);
    t.is(stream, 'req-1');
    t.is(events.length, 20);
    const numeric = events.map(([id]) => seqOf(id));
    t.deepEqual(numeric, [...numeric].sort((x, y) => x - y));
    t.true(events.every(([, m]) => (m as { method?: string }).method === 'notifications/message'));
  }
  // The standalone stream resumes too: its id is not parsed, it is looked up.
  const getIds = ids.filter((_, k) => (k < 20 ? k % 2 === 0 : (k - 20) % 2 === 0));
  const firstGet = [...getIds].sort((x, y) => seqOf(x) - seqOf(y))[0]!;
  const { stream, events } = await replayAll(b, firstGet);
  t.is(stream, '_GET_stream');
  t.is(events.length, 19);

  const err = await t.throwsAsync(replayAll(a, '999999'), { instanceOf: SessionJournalError });
  t.is(err!.code, UNKNOWN_EVENT_ID);
});

test('a 2 MiB tool result is stored spread over several journal lines, and replayed whole by this process, another one, and after a restart', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const writer = await JournalEventStore.open({ dir, fsync: false, onWarning });
  const big = { jsonrpc: '2.0' as const, id: 7, result: { content: [{ type: 'text', text: `${'x'.repeat(2 * 1024 * 1024)} and "the end"` }] } };
  const before = await writer.storeEvent('req-big', msg(1));
  const id = await writer.storeEvent('req-big', big);
  const after = await writer.storeEvent('req-big', msg(2));
  const reader = await JournalEventStore.open({ dir, fsync: false, onWarning });
  for (const store of [writer, reader]) {
    const { stream, events } = await replayAll(store, before);
    t.is(stream, 'req-big');
    t.deepEqual(events.map(([eventId]) => eventId), [id, after]);
    t.deepEqual(events[0]![1], big);
    t.is(await store.getStreamIdForEventId(id), 'req-big');
  }
  await Promise.all([writer.close(), reader.close()]);
  const reopened = await JournalEventStore.open({ dir, fsync: false, onWarning });
  t.teardown(() => reopened.close());
  t.deepEqual((await replayAll(reopened, before)).events, [
    [id, big],
    [after, msg(2)],
  ]);
  t.true(fs.readFileSync(`${dir}/journal-00000001.ndjson`, 'utf8').includes('"t":"journal.part"'), 'written as parts');
  t.deepEqual(warnings, []);
});

test('events survive reopen; old streams expire by TTL through compaction, and other processes drop them', async (t) => {
  const dir = tempStoreDir(t);
  let now = Date.parse('2026-11-22T10:00:00Z');
  const clock = () => now;
  const { warnings, onWarning } = collectWarnings();
  const writer = await JournalEventStore.open({ dir, fsync: false, clock, ttlMs: 60_000, onWarning });
  const old = await writer.storeEvent('old', msg(1));
  await writer.storeEvent('old', msg(2));
  now += 50_000;
  const fresh = await writer.storeEvent('fresh', msg(3));
  now += 30_000; // 'old' last written 80 s ago, 'fresh' just now
  await writer.storeEvent('fresh', msg(4)); // (TTL never counts past the store's newest event)
  const reader = await JournalEventStore.open({ dir, fsync: false, clock, ttlMs: 60_000, onWarning });
  t.deepEqual(reader.stats(), { streams: 2, events: 4 });

  const result = await writer.compact({ now: clock });
  t.is(result.status, 'compacted');
  t.deepEqual(result.removed, { expired: 1 });
  t.is(await reader.getStreamIdForEventId(old), undefined, 'the other process dropped the expired stream');
  t.is(await reader.getStreamIdForEventId(fresh), 'fresh');
  await writer.storeEvent('fresh', msg(5));
  await Promise.all([writer.close(), reader.close()]);

  const reopened = await JournalEventStore.open({ dir, fsync: false, clock, ttlMs: 60_000, onWarning });
  t.teardown(() => reopened.close());
  t.deepEqual(reopened.stats(), { streams: 1, events: 3 });
  t.deepEqual(
    (await replayAll(reopened, fresh)).events.map(([, m]) => (m as { params: { i: number } }).params.i),
    [4, 5],
  );
  t.deepEqual(warnings, []);
});

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
  let lastToken: string | undefined;
  let dropped = false;
  let resumeFrom: string | undefined;
  const gotBeforeDrop: number[] = [];
  const droppedAt = new Promise<void>((resolve) =>
    first.onNotification((i) => {
      if (dropped) return;
      gotBeforeDrop.push(i);
      if (i === DROP_AT) {
        dropped = true;
        resumeFrom = lastToken;
        resolve();
      }
    }),
  );
  const call = first.client
    .request({ method: 'tools/call', params: { name: 'count', arguments: { n: N, intervalMs: 40 } } }, CallToolResultSchema, { onresumptiontoken: (token) => void (dropped || (lastToken = token)) })
    .catch((err: Error) => err);
  await droppedAt;
  const sessionId = first.transport.sessionId!;
  await first.client.close(); // aborts the SSE stream: the server goes on storing events
  assertFailed(await call);
  return { resumeFrom: resumeFrom!, gotBeforeDrop, sessionId };
}

function assertFailed(value: unknown): void {
  if (!(value instanceof Error)) throw new Error('the dropped call should have failed on the client');
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
