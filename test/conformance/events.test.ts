/**
 * JournalEventStore on every backend, two stores on one location standing
 * for two processes or hosts: storeEvent ids unique and ordered across
 * writers; the other store resumes a stream (getStreamIdForEventId,
 * replayEventsAfter) without being told to catch up, as the SDK calls them;
 * a 2 MiB event spread over lines; TTL through compaction, dropped by the
 * other store too; event ids that cannot be guessed, kept through reopen
 * and compaction. (Moved from test/integrations/event-store.test.ts, whose
 * HTTP end-to-end tests stayed there, and event-ids.test.ts.)
 */
import test from 'ava';
import { ErrorCodes, SessionJournalError, UNKNOWN_EVENT_ID, type JournalEventStore } from '../../src/index.js';
import { backends } from './every-backend.js';
import { beforePeerRead, collectWarnings, named, TEST_T0 } from './harness.js';

const msg = (i: number, method = 'notifications/message') => ({ jsonrpc: '2.0' as const, method, params: { i } });
/** The sequence number an event id starts with (for ordering checks only: the store never parses ids). */
const seqOf = (id: string): number => Number(id.split('-')[0]);

async function replayAll(store: Pick<JournalEventStore, 'replayEventsAfter'>, after: string): Promise<{ stream: string; events: Array<[string, unknown]> }> {
  const events: Array<[string, unknown]> = [];
  const stream = await store.replayEventsAfter(after, { send: async (id, m) => void events.push([id, m]) });
  return { stream, events };
}

/** The id with the character at `i` replaced by another one of the same kind (digit for digit). */
function changeAt(id: string, i: number): string {
  const c = id[i]!;
  const other = /\d/.test(c) ? String((Number(c) + 1) % 10) : c === 'A' ? 'B' : 'A';
  return id.slice(0, i) + other + id.slice(i + 1);
}

async function assertUnknown(t: import('ava').ExecutionContext, store: Pick<JournalEventStore, 'getStreamIdForEventId' | 'replayEventsAfter'>, id: string, what: string): Promise<void> {
  t.is(await store.getStreamIdForEventId(id), undefined, `${what}: no stream`);
  const err = await t.throwsAsync(replayAll(store, id), { instanceOf: SessionJournalError }, what);
  t.is(err?.code, ErrorCodes.UNKNOWN_EVENT_ID, what);
}

for (const backend of backends) {
  test(named(backend, 'storeEvent ids are unique and ordered across two writers; the stream is found from stored data, _GET_stream included'), async (t) => {
    const at = await backend.fresh(t);
    const a = await backend.openEvents(at, { fsync: false });
    const b = await backend.openEvents(at, { fsync: false });
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

  test(named(backend, 'this process replays a message as the journal holds it: a change the caller makes to its object after storeEvent reaches no replay'), async (t) => {
    const at = await backend.fresh(t);
    const a = await backend.openEvents(at, { fsync: false });
    t.teardown(() => a.close());
    const priming = await a.storeEvent('req-1', {});
    const message = { jsonrpc: '2.0', method: 'notifications/message', params: { text: 'as sent', at: new Date(TEST_T0), gone: undefined as unknown } };
    const pending = a.storeEvent('req-1', message);
    message.params.text = 'changed before the commit';
    await pending;
    message.params.text = 'changed after it';
    const journaled = { jsonrpc: '2.0', method: 'notifications/message', params: { text: 'as sent', at: new Date(TEST_T0).toISOString() } };
    t.deepEqual((await replayAll(a, priming)).events.map(([, m]) => m), [journaled], 'this process');
    const b = await backend.openEvents(at, { fsync: false });
    t.teardown(() => b.close());
    t.deepEqual((await replayAll(b, priming)).events.map(([, m]) => m), [journaled], 'a fresh replay');
  });

  test(named(backend, 'a 2 MiB tool result is stored spread over several journal lines, and replayed whole by this process, another one, and after a restart'), async (t) => {
    const at = await backend.fresh(t);
    const { warnings, onWarning } = collectWarnings();
    const writer = await backend.openEvents(at, { fsync: false, onWarning });
    const big = { jsonrpc: '2.0' as const, id: 7, result: { content: [{ type: 'text', text: `${'x'.repeat(2 * 1024 * 1024)} and "the end"` }] } };
    const before = await writer.storeEvent('req-big', msg(1));
    const id = await writer.storeEvent('req-big', big);
    const after = await writer.storeEvent('req-big', msg(2));
    const reader = await backend.openEvents(at, { fsync: false, onWarning });
    for (const store of [writer, reader]) {
      const { stream, events } = await replayAll(store, before);
      t.is(stream, 'req-big');
      t.deepEqual(events.map(([eventId]) => eventId), [id, after]);
      t.deepEqual(events[0]![1], big);
      t.is(await store.getStreamIdForEventId(id), 'req-big');
    }
    await Promise.all([writer.close(), reader.close()]);
    const reopened = await backend.openEvents(at, { fsync: false, onWarning });
    t.teardown(() => reopened.close());
    t.deepEqual((await replayAll(reopened, before)).events, [
      [id, big],
      [after, msg(2)],
    ]);
    t.true((await backend.lines(at)).some((l) => l.record?.t === 'journal.part'), 'written as parts');
    t.deepEqual(warnings, []);
  });

  test(named(backend, 'events survive reopen; old streams expire by TTL through compaction, and other processes drop them'), async (t) => {
    const at = await backend.fresh(t);
    let now = Date.parse('2026-11-22T10:00:00Z');
    const clock = () => now;
    const { warnings, onWarning } = collectWarnings();
    const writer = await backend.openEvents(at, { fsync: false, clock, ttlMs: 60_000, onWarning });
    const old = await writer.storeEvent('old', msg(1));
    await writer.storeEvent('old', msg(2));
    now += 50_000;
    const fresh = await writer.storeEvent('fresh', msg(3));
    now += 30_000; // 'old' last written 80 s ago, 'fresh' just now
    await writer.storeEvent('fresh', msg(4)); // (TTL never counts past the store's newest event)
    const reader = await backend.openEvents(at, { fsync: false, clock, ttlMs: 60_000, onWarning });
    await beforePeerRead(backend, reader); // stats() answers from this process's view
    t.deepEqual(reader.stats(), { streams: 2, events: 4 });

    const result = await writer.compact({ now: clock });
    t.is(result.status, 'compacted');
    t.deepEqual(result.removed, { expired: 1 });
    t.is(await reader.getStreamIdForEventId(old), undefined, 'the other process dropped the expired stream');
    t.is(await reader.getStreamIdForEventId(fresh), 'fresh');
    await writer.storeEvent('fresh', msg(5));
    await Promise.all([writer.close(), reader.close()]);

    const reopened = await backend.openEvents(at, { fsync: false, clock, ttlMs: 60_000, onWarning });
    t.teardown(() => reopened.close());
    t.deepEqual(reopened.stats(), { streams: 1, events: 3 });
    t.deepEqual(
      (await replayAll(reopened, fresh)).events.map(([, m]) => (m as { params: { i: number } }).params.i),
      [4, 5],
    );
    t.deepEqual(warnings, []);
  });

  test(named(backend, 'an event id is the seq and 128 random bits; an id with any character changed, cut or extended is UNKNOWN_EVENT_ID, here and in another process'), async (t) => {
    const at = await backend.fresh(t);
    const store = await backend.openEvents(at, { fsync: false, autoCompact: false });
    const other = await backend.openEvents(at, { fsync: false, autoCompact: false });
    t.teardown(() => Promise.all([store.close(), other.close()]));
    const ids = [await store.storeEvent('req-1', {}), await store.storeEvent('req-1', msg(1)), await store.storeEvent('req-1', msg(2))];
    const nonces = new Set<string>();
    for (const [k, id] of ids.entries()) {
      const m = /^(\d+)-([A-Za-z0-9_-]+)$/.exec(id);
      t.truthy(m, id);
      t.is(Number(m![1]), k + 1, 'the seq comes first');
      t.is(Buffer.from(m![2]!, 'base64url').length, 16, '128 bits of nonce');
      nonces.add(m![2]!);
    }
    t.is(nonces.size, 3);

    const first = ids[0]!;
    for (const reader of [store, other]) {
      t.is(await reader.getStreamIdForEventId(first), 'req-1');
      t.deepEqual((await replayAll(reader, first)).events.map(([id]) => id), ids.slice(1));
      for (let i = 0; i < first.length; i++) await assertUnknown(t, reader, changeAt(first, i), `character ${i} changed`);
      await assertUnknown(t, reader, first.slice(0, -1), 'cut short');
      await assertUnknown(t, reader, `${first}A`, 'extended');
      await assertUnknown(t, reader, '1', 'the bare seq (the 0.1.0 id)');
      await assertUnknown(t, reader, first.toLowerCase() === first ? first.toUpperCase() : first.toLowerCase(), 'case changed');
    }
  });

  test(named(backend, 'ids survive reopen and compaction: the journal record and the snapshot entry keep each event\'s nonce'), async (t) => {
    const at = await backend.fresh(t);
    const { warnings, onWarning } = collectWarnings();
    const store = await backend.openEvents(at, { fsync: false, autoCompact: false, onWarning, clock: () => TEST_T0 });
    const ids = [await store.storeEvent('req-1', {}), await store.storeEvent('req-1', msg(1)), await store.storeEvent('req-1', msg(2))];
    const record = (await backend.lines(at))[1]!.record as unknown as { p: { nonce: string } };
    t.is(`2-${record.p.nonce}`, ids[1]!);

    t.is((await store.compact({ now: () => TEST_T0 })).status, 'compacted');
    const entry = (await backend.snapshotEntries(at))![0] as { stream: string; events: Array<{ seq: number; nonce: string }> };
    t.is(entry.stream, 'req-1');
    t.deepEqual(entry.events.map((e) => `${e.seq}-${e.nonce}`), ids);
    await store.close();

    const reopened = await backend.openEvents(at, { fsync: false, autoCompact: false, onWarning, clock: () => TEST_T0 });
    t.teardown(() => reopened.close());
    t.deepEqual((await replayAll(reopened, ids[0]!)).events.map(([id]) => id), ids.slice(1));
    await assertUnknown(t, reopened, changeAt(ids[0]!, ids[0]!.length - 1), 'changed after restore from the snapshot');
    t.deepEqual(warnings, []);
  });
}
