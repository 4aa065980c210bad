/**
 * JournalEventStore.forSession: one store shared by several MCP sessions,
 * each session's transport given its own view. Unit checks on the views
 * (ids of one are unknown in another, every session's `_GET_stream` apart,
 * across processes, reopen, compaction and TTL), then end to end over HTTP
 * with the SDK's Streamable HTTP transport: a session presenting another's
 * event id, or its own id altered, is refused and gets none of the other's
 * events.
 */
import test from 'ava';
import { ErrorCodes, JournalEventStore, SessionJournalError, type McpSessionEventStore } from '../../src/index.js';
import { callToolRaw, messagesOf, openRawSession, resumeRaw, startServer, tagsOf, type ServerMode, type SseEvent } from '../helpers/mcp-event-clients.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';

const note = (tag: string, i: number) => ({ jsonrpc: '2.0' as const, method: 'notifications/message', params: { tag, i } });

type View = Pick<McpSessionEventStore, 'storeEvent' | 'getStreamIdForEventId' | 'replayEventsAfter'>;

async function replayAll(view: View, after: string): Promise<{ stream: string; events: Array<[string, unknown]> }> {
  const events: Array<[string, unknown]> = [];
  const stream = await view.replayEventsAfter(after, { send: async (id, m) => void events.push([id, m]) });
  return { stream, events };
}

const tagsReplayed = async (view: View, after: string) => (await replayAll(view, after)).events.map(([, m]) => (m as ReturnType<typeof note>).params);

async function refused(t: import('ava').ExecutionContext, view: View, id: string, what: string): Promise<void> {
  t.is(await view.getStreamIdForEventId(id), undefined, what);
  const err = await t.throwsAsync(replayAll(view, id), { instanceOf: SessionJournalError }, what);
  t.is(err?.code, ErrorCodes.UNKNOWN_EVENT_ID, what);
}

const SESSION_A = '2f1c0f8e-7d4b-4c57-9a39-6f1f3b0a1d11';
const SESSION_B = 'b7e3f0d2-1a9c-4e5b-8c2d-3f4a5b6c7d8e';

test('each MCP session view keeps its streams, _GET_stream included: ids of one view are unknown in every other and in the unscoped store', async (t) => {
  const dir = tempStoreDir(t);
  const store = await JournalEventStore.open({ dir, fsync: false, autoCompact: false });
  t.teardown(() => store.close());
  const a = store.forSession(SESSION_A);
  const b = store.forSession(SESSION_B);
  // Interleaved, as two live sessions write: their standalone streams share the SDK's name.
  const a1 = await a.storeEvent('_GET_stream', note('A', 1));
  const b1 = await b.storeEvent('_GET_stream', note('B', 1));
  await a.storeEvent('_GET_stream', note('A', 2));
  await b.storeEvent('_GET_stream', note('B', 2));
  const u1 = await store.storeEvent('_GET_stream', note('unscoped', 1));
  await a.storeEvent('_GET_stream', note('A', 3));
  await store.storeEvent('_GET_stream', note('unscoped', 2));

  t.is(await a.getStreamIdForEventId(a1), '_GET_stream', 'the SDK\'s own stream id, so the transport maps it back');
  const fromA = await replayAll(a, a1);
  t.is(fromA.stream, '_GET_stream');
  t.deepEqual(fromA.events.map(([, m]) => (m as ReturnType<typeof note>).params), [{ tag: 'A', i: 2 }, { tag: 'A', i: 3 }]);
  t.deepEqual(await tagsReplayed(b, b1), [{ tag: 'B', i: 2 }]);
  t.deepEqual(await tagsReplayed(store, u1), [{ tag: 'unscoped', i: 2 }]);

  await refused(t, b, a1, 'B given an id of A');
  await refused(t, a, b1, 'A given an id of B');
  await refused(t, store, a1, 'the unscoped store given an id of A');
  await refused(t, a, u1, 'A given an id of the unscoped store');
  t.deepEqual(await tagsReplayed(store.forSession(SESSION_A), a1), [{ tag: 'A', i: 2 }, { tag: 'A', i: 3 }], 'another view of the same session is the same session');
});

test('views stay apart in another process, after reopen, and after compaction (the snapshot keeps the session)', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const writer = await JournalEventStore.open({ dir, fsync: false, autoCompact: false, onWarning });
  const reader = await JournalEventStore.open({ dir, fsync: false, autoCompact: false, onWarning });
  const a1 = await writer.forSession(SESSION_A).storeEvent('_GET_stream', note('A', 1));
  const b1 = await writer.forSession(SESSION_B).storeEvent('_GET_stream', note('B', 1));
  await writer.forSession(SESSION_A).storeEvent('_GET_stream', note('A', 2));
  await writer.forSession(SESSION_B).storeEvent('_GET_stream', note('B', 2));

  const check = async (store: JournalEventStore, when: string) => {
    t.deepEqual(await tagsReplayed(store.forSession(SESSION_A), a1), [{ tag: 'A', i: 2 }], when);
    t.deepEqual(await tagsReplayed(store.forSession(SESSION_B), b1), [{ tag: 'B', i: 2 }], when);
    await refused(t, store.forSession(SESSION_B), a1, `${when}: B given an id of A`);
    await refused(t, store, b1, `${when}: the unscoped store given an id of B`);
  };
  await check(reader, 'another process');
  t.is((await writer.compact()).status, 'compacted');
  await Promise.all([writer.close(), reader.close()]);
  const reopened = await JournalEventStore.open({ dir, fsync: false, autoCompact: false, onWarning });
  t.teardown(() => reopened.close());
  t.deepEqual(reopened.stats(), { streams: 2, events: 4 });
  await check(reopened, 'reopened from the snapshot');
  t.deepEqual(warnings, []);
});

test('TTL counts per session\'s stream: an idle session\'s _GET_stream expires, a busy one\'s of the same name stays, in every process', async (t) => {
  const dir = tempStoreDir(t);
  let now = Date.parse('2026-11-22T10:00:00Z');
  const clock = () => now;
  const writer = await JournalEventStore.open({ dir, fsync: false, autoCompact: false, clock, ttlMs: 60_000 });
  const reader = await JournalEventStore.open({ dir, fsync: false, autoCompact: false, clock, ttlMs: 60_000 });
  t.teardown(() => Promise.all([writer.close(), reader.close()]));
  const a1 = await writer.forSession(SESSION_A).storeEvent('_GET_stream', note('A', 1));
  const b1 = await writer.forSession(SESSION_B).storeEvent('_GET_stream', note('B', 1));
  now += 90_000;
  await writer.forSession(SESSION_B).storeEvent('_GET_stream', note('B', 2));
  t.deepEqual(reader.stats(), { streams: 2, events: 3 });

  const result = await writer.compact({ now: clock });
  t.deepEqual(result.removed, { expired: 1 });
  await refused(t, reader.forSession(SESSION_A), a1, 'A\'s expired stream');
  t.deepEqual(await tagsReplayed(reader.forSession(SESSION_B), b1), [{ tag: 'B', i: 2 }]);
  t.deepEqual(reader.stats(), { streams: 1, events: 2 });
});

test('forSession takes 1-256 visible ASCII characters (the MCP rule for session ids), else INVALID_OPTION', async (t) => {
  const dir = tempStoreDir(t);
  const store = await JournalEventStore.open({ dir, fsync: false, autoCompact: false });
  t.teardown(() => store.close());
  for (const [what, id] of [
    ['empty', ''],
    ['257 characters', 'a'.repeat(257)],
    ['a space', 'a b'],
    ['a newline', 'a\nb'],
    ['not ASCII', 'sessión'],
    ['not a string', 42],
  ] as const) {
    const err = t.throws(() => store.forSession(id as string), { instanceOf: SessionJournalError }, what);
    t.is(err?.code, ErrorCodes.INVALID_OPTION, what);
  }
  const longest = '~'.repeat(256);
  const id = await store.forSession(longest).storeEvent('s', note('x', 1));
  t.is(await store.forSession(longest).getStreamIdForEventId(id), 's');
});

// ---- end to end over HTTP ------------------------------------------------

/** A changed character in the seq and in the nonce. */
const altered = (id: string): string[] => [`${Number(id.split('-')[0]) + 1}${id.slice(id.indexOf('-'))}`, id.slice(0, -1) + (id.endsWith('A') ? 'B' : 'A')];
const hasResult = (events: SseEvent[]) => messagesOf(events).some((m) => m.result !== undefined);

test('cross-session replay is refused over HTTP: session B sending an event id of A, or its own id altered, gets 400 and none of A\'s events; each resumes its own', async (t) => {
  const dir = tempStoreDir(t);
  const server = await startServer(t, dir, 'per-session');
  const a = await openRawSession(server.url);
  const b = await openRawSession(server.url);
  const aCall = await callToolRaw(server.url, a, 1, 'count', { n: 3, intervalMs: 1, tag: 'A' });
  const bCall = await callToolRaw(server.url, b, 1, 'count', { n: 3, intervalMs: 1, tag: 'B' });
  t.deepEqual(tagsOf(aCall), ['A', 'A', 'A']);
  const aPriming = aCall[0]!.id!;
  const bPriming = bCall[0]!.id!;
  t.regex(aPriming, /^\d+-[A-Za-z0-9_-]{22}$/);

  for (const [what, id] of [
    ['an id of A', aPriming],
    ['an id of A\'s tool result', aCall[aCall.length - 1]!.id!],
    ...altered(bPriming).map((x) => [`B's own id altered (${x})`, x] as const),
  ] as const) {
    const outcome = await resumeRaw(server.url, b, id, () => true);
    t.is(outcome.status, 400, what);
    // The SDK asks getStreamIdForEventId first; an id it does not know is answered so, before any replay.
    t.is('text' in outcome && JSON.parse(outcome.text).error.message, 'Invalid event ID format', what);
    t.false('text' in outcome && outcome.text.includes('"tag":"A"'), what);
  }

  // The refusals are B's view at work, not bad ids: each session resumes its own call, result included.
  const aResumed = await resumeRaw(server.url, a, aPriming, hasResult);
  const bResumed = await resumeRaw(server.url, b, bPriming, hasResult);
  t.is(aResumed.status, 200);
  t.is(bResumed.status, 200);
  const aEvents = 'events' in aResumed ? aResumed.events : [];
  const bEvents = 'events' in bResumed ? bResumed.events : [];
  t.deepEqual(tagsOf(aEvents), ['A', 'A', 'A']);
  t.deepEqual(tagsOf(bEvents), ['B', 'B', 'B']);
  t.deepEqual(aEvents.map((e) => e.id), aCall.slice(1).map((e) => e.id), 'the same ids as the first delivery');
  t.false(/warning|request failed/.test(server.stderr()), server.stderr());
});

for (const mode of ['per-session', 'shared'] as const satisfies readonly ServerMode[]) {
  const title =
    mode === 'per-session'
      ? 'standalone notifications of session A never reach session B when B resumes its _GET_stream (per-session views)'
      : 'given the store itself, every session resumes one _GET_stream: B gets A\'s standalone notifications (what forSession prevents)';
  test(title, async (t) => {
    const dir = tempStoreDir(t);
    const server = await startServer(t, dir, mode);
    const a = await openRawSession(server.url);
    const b = await openRawSession(server.url);
    const standalone = (session: string, tag: string) => server.stored.filter((s) => s.session === session && s.stream === '_GET_stream' && s.message.params?.data?.tag === tag);
    // No GET stream is open: the transports store what they broadcast, for a client to resume.
    await callToolRaw(server.url, b, 1, 'broadcast', { n: 1, intervalMs: 1, tag: 'B' });
    await callToolRaw(server.url, a, 1, 'broadcast', { n: 3, intervalMs: 1, tag: 'A' });
    await callToolRaw(server.url, b, 2, 'broadcast', { n: 2, intervalMs: 1, tag: 'B' });
    await server.waitFor(() => standalone(b, 'B').length === 3 && standalone(a, 'A').length === 3);

    const outcome = await resumeRaw(server.url, b, standalone(b, 'B')[0]!.id, (events) => tagsOf(events).filter((x) => x === 'B').length >= 2);
    t.is(outcome.status, 200);
    const tags = tagsOf('events' in outcome ? outcome.events : []);
    if (mode === 'per-session') t.deepEqual(tags, ['B', 'B']);
    else t.deepEqual(tags, ['A', 'A', 'A', 'B', 'B']);
  });
}
