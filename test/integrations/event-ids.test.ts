/**
 * JournalEventStore event ids: `${seq}-${nonce}` with 128 random bits kept
 * in the record (and in snapshots), looked up whole, so an id cannot be
 * guessed from another and one changed in any character is unknown; and
 * what becomes of the ids of events stored by 0.1.0 (the bare seq), from a
 * committed fixture directory. (The id checks on every backend are
 * test/conformance/events.test.ts.)
 */
import test from 'ava';
import { ErrorCodes, Journal, JournalEventStore, SessionJournalError, type JournalRecord } from '../../src/index.js';
import { copyFixtureStore } from '../helpers/fixture-store.js';
import { STORES_NOW } from '../helpers/fixture-now.js';
import { collectWarnings } from '../helpers/temp-store.js';

const msg = (i: number) => ({ jsonrpc: '2.0' as const, method: 'notifications/message', params: { i } });

async function replayAll(store: Pick<JournalEventStore, 'replayEventsAfter'>, after: string): Promise<{ stream: string; events: Array<[string, unknown]> }> {
  const events: Array<[string, unknown]> = [];
  const stream = await store.replayEventsAfter(after, { send: async (id, m) => void events.push([id, m]) });
  return { stream, events };
}

async function assertUnknown(t: import('ava').ExecutionContext, store: Pick<JournalEventStore, 'getStreamIdForEventId' | 'replayEventsAfter'>, id: string, what: string): Promise<void> {
  t.is(await store.getStreamIdForEventId(id), undefined, `${what}: no stream`);
  const err = await t.throwsAsync(replayAll(store, id), { instanceOf: SessionJournalError }, what);
  t.is(err?.code, ErrorCodes.UNKNOWN_EVENT_ID, what);
}

test('events stored by 0.1.0 (no nonce) are still replayed as part of their stream, with their old ids, but no old id is a place to resume from', async (t) => {
  // fixtures/stores/events-0.1.0: written by session-journal 0.1.0 (ids "1".."8"); a snapshot holds seq 1-4.
  const dir = copyFixtureStore(t, 'events-0.1.0', 'stores');
  const clock = () => STORES_NOW.events;
  const { warnings, onWarning } = collectWarnings();
  const store = await JournalEventStore.open({ dir, fsync: false, autoCompact: false, clock, onWarning });
  t.teardown(() => store.close());
  t.deepEqual(store.stats(), { streams: 2, events: 7 });
  for (const old of ['1', '2', '6', '8']) await assertUnknown(t, store, old, `0.1.0 id ${old}`);

  // A new event on the old stream resumes; then a 0.1.0 writer sharing the store adds one after it.
  const fresh = await store.storeEvent('req-1', msg(5));
  const oldWriter = Journal.openSync({ dir, fsync: false, clock, consumer: { reset: () => undefined, restore: () => undefined, apply: (_: JournalRecord) => undefined } });
  oldWriter.append('event.store', { s: 'req-1', m: msg(6) });
  await oldWriter.close();
  const { stream, events } = await replayAll(store, fresh);
  t.is(stream, 'req-1');
  t.deepEqual(events, [['10', msg(6)]], 'sent with its old id, the bare seq');
  await assertUnknown(t, store, '10', 'that id');

  // Compaction keeps the old events as they are (no nonce is made up for them).
  t.is((await store.compact({ now: clock })).status, 'compacted');
  const reopened = await JournalEventStore.open({ dir, fsync: false, autoCompact: false, clock, onWarning });
  t.teardown(() => reopened.close());
  t.deepEqual(reopened.stats(), { streams: 2, events: 9 });
  t.deepEqual((await replayAll(reopened, fresh)).events, [['10', msg(6)]]);
  t.deepEqual(warnings, []);
});
