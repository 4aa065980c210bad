/**
 * JournalEventStore.forSession end to end over HTTP with the SDK's
 * Streamable HTTP transport (the views' unit checks run on every backend in
 * test/conformance/events-sessions.test.ts): a session presenting another's
 * event id, or its own id altered, is refused and gets none of the other's
 * events.
 */
import test from 'ava';
import { callToolRaw, messagesOf, openRawSession, resumeRaw, startServer, tagsOf, type ServerMode, type SseEvent } from '../helpers/mcp-event-clients.js';
import { tempStoreDir } from '../helpers/temp-store.js';

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
