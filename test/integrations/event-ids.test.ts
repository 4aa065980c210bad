/**
 * JournalEventStore event ids: `${seq}-${nonce}` with 128 random bits kept
 * in the record (and in snapshots), looked up whole, so an id cannot be
 * guessed from another and one changed in any character is unknown; and
 * what becomes of the ids of events stored by 0.1.0 (the bare seq).
 */
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { ErrorCodes, Journal, JournalEventStore, SessionJournalError, type JournalRecord } from '../../src/index.js';
import { copyFixtureStore } from '../helpers/fixture-store.js';
import { STORES_NOW } from '../helpers/fixture-now.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';

const msg = (i: number) => ({ jsonrpc: '2.0' as const, method: 'notifications/message', params: { i } });

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

test('an event id is the seq and 128 random bits; an id with any character changed, cut or extended is UNKNOWN_EVENT_ID, here and in another process', async (t) => {
  const dir = tempStoreDir(t);
  const store = await JournalEventStore.open({ dir, fsync: false, autoCompact: false });
  const other = await JournalEventStore.open({ dir, fsync: false, autoCompact: false });
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

test('ids survive reopen and compaction: the journal record and the snapshot entry keep each event\'s nonce', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const store = await JournalEventStore.open({ dir, fsync: false, autoCompact: false, onWarning });
  const ids = [await store.storeEvent('req-1', {}), await store.storeEvent('req-1', msg(1)), await store.storeEvent('req-1', msg(2))];
  const record = JSON.parse(fs.readFileSync(path.join(dir, 'journal-00000001.ndjson'), 'utf8').split('\n')[1]!) as { p: { nonce: string } };
  t.is(`2-${record.p.nonce}`, ids[1]!);

  t.is((await store.compact()).status, 'compacted');
  const snapshot = fs.readdirSync(dir).find((n) => n.startsWith('snapshot-'))!;
  const entry = JSON.parse(fs.readFileSync(path.join(dir, snapshot), 'utf8').split('\n')[1]!) as { stream: string; events: Array<{ seq: number; nonce: string }> };
  t.is(entry.stream, 'req-1');
  t.deepEqual(entry.events.map((e) => `${e.seq}-${e.nonce}`), ids);
  await store.close();

  const reopened = await JournalEventStore.open({ dir, fsync: false, autoCompact: false, onWarning });
  t.teardown(() => reopened.close());
  t.deepEqual((await replayAll(reopened, ids[0]!)).events.map(([id]) => id), ids.slice(1));
  await assertUnknown(t, reopened, changeAt(ids[0]!, ids[0]!.length - 1), 'changed after restore from the snapshot');
  t.deepEqual(warnings, []);
});

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
