/**
 * JournalEventStore.forSession on every backend: one store shared by
 * several MCP sessions, each session's transport given its own view. Ids of
 * one view are unknown in another, every session's `_GET_stream` apart,
 * across stores (processes or hosts), reopen, compaction and TTL; the
 * session id rule. (Moved from test/integrations/event-store-sessions.test.ts,
 * whose HTTP end-to-end tests stayed there.)
 */
import test from 'ava';
import { ErrorCodes, SessionJournalError, type JournalEventStore, type McpSessionEventStore } from '../../src/index.js';
import { backends } from './every-backend.js';
import { beforePeerRead, collectWarnings, named, TEST_T0 } from './harness.js';

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

for (const backend of backends) {
  test(named(backend, 'each MCP session view keeps its streams, _GET_stream included: ids of one view are unknown in every other and in the unscoped store'), async (t) => {
    const at = await backend.fresh(t);
    const store = await backend.openEvents(at, { fsync: false, autoCompact: false });
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

  test(named(backend, 'views stay apart in another process, after reopen, and after compaction (the snapshot keeps the session)'), async (t) => {
    const at = await backend.fresh(t);
    const { warnings, onWarning } = collectWarnings();
    const writer = await backend.openEvents(at, { fsync: false, autoCompact: false, onWarning, clock: () => TEST_T0 });
    const reader = await backend.openEvents(at, { fsync: false, autoCompact: false, onWarning, clock: () => TEST_T0 });
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
    t.is((await writer.compact({ now: () => TEST_T0 })).status, 'compacted');
    await Promise.all([writer.close(), reader.close()]);
    const reopened = await backend.openEvents(at, { fsync: false, autoCompact: false, onWarning, clock: () => TEST_T0 });
    t.teardown(() => reopened.close());
    t.deepEqual(reopened.stats(), { streams: 2, events: 4 });
    await check(reopened, 'reopened from the snapshot');
    t.deepEqual(warnings, []);
  });

  test(named(backend, 'TTL counts per session\'s stream: an idle session\'s _GET_stream expires, a busy one\'s of the same name stays, in every process'), async (t) => {
    const at = await backend.fresh(t);
    let now = Date.parse('2026-11-22T10:00:00Z');
    const clock = () => now;
    const writer = await backend.openEvents(at, { fsync: false, autoCompact: false, clock, ttlMs: 60_000 });
    const reader = await backend.openEvents(at, { fsync: false, autoCompact: false, clock, ttlMs: 60_000 });
    t.teardown(() => Promise.all([writer.close(), reader.close()]));
    const a1 = await writer.forSession(SESSION_A).storeEvent('_GET_stream', note('A', 1));
    const b1 = await writer.forSession(SESSION_B).storeEvent('_GET_stream', note('B', 1));
    now += 90_000;
    await writer.forSession(SESSION_B).storeEvent('_GET_stream', note('B', 2));
    await beforePeerRead(backend, reader); // stats() answers from this process's view
    t.deepEqual(reader.stats(), { streams: 2, events: 3 });

    const result = await writer.compact({ now: clock });
    t.deepEqual(result.removed, { expired: 1 });
    await refused(t, reader.forSession(SESSION_A), a1, 'A\'s expired stream');
    t.deepEqual(await tagsReplayed(reader.forSession(SESSION_B), b1), [{ tag: 'B', i: 2 }]);
    await beforePeerRead(backend, reader);
    t.deepEqual(reader.stats(), { streams: 1, events: 2 });
  });

  test(named(backend, 'forSession takes 1-256 visible ASCII characters (the MCP rule for session ids), else INVALID_OPTION'), async (t) => {
    const at = await backend.fresh(t);
    const store = await backend.openEvents(at, { fsync: false, autoCompact: false });
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
}
