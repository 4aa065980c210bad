/**
 * redis-server SIGKILLed in the middle of concurrent appends, then started
 * again on its append-only file (appendonly yes, appendfsync always): every
 * append whose reply arrived is in the stream, exactly once, the stream is
 * gapless, and the writers' connections came back by themselves.
 */
import test from 'ava';
import { StoreScripts, type ChainHead } from '../../src/storage/redis/scripts.js';
import { RedisBatchEncoder } from '../../src/storage/redis/batch-encoder.js';
import { StreamReader } from '../../src/storage/redis/stream-reader.js';
import { canonicalPayload } from '../../src/engine/record-codec.js';
import { SessionJournalError } from '../../src/errors.js';
import type { RedisConnection } from '../../src/storage/redis/connection.js';
import { startRedisServer, uniquePrefix } from '../helpers/redis-server.js';
import { openTestConnection, waitFor } from '../helpers/redis-conn.js';

const T0 = Date.UTC(2026, 10, 20, 9, 0, 0);
const WRITERS = 3;
const KILL_AT = 90;
const STOP_AT = 240;

interface WriterState {
  acked: string[];
  inDoubt: string[];
  unavailable: number;
  reconnects: number;
}

/** Appends commits of 1 to 3 records until `done()`, as a store's writer would: catch up on "moved", retry what surely was not written. */
async function writeUntil(conn: RedisConnection, index: number, state: WriterState, done: () => boolean): Promise<void> {
  const scripts = new StoreScripts(conn);
  const encoder = new RedisBatchEncoder({ writerJson: JSON.stringify(`${index}@crash`), maxLineBytes: 1024 * 1024, hashChain: true });
  let head: ChainHead | undefined;
  let n = 0;
  let pending: string[] = [];
  while (!done()) {
    if (pending.length === 0) pending = Array.from({ length: 1 + (n % 3) }, () => `w${index}-${n++}`);
    const { batch } = encoder.encode(
      head,
      pending.map((key, i) => ({ time: T0 + i, type: 'kv.set', payloadJson: canonicalPayload({ key, value: index })! })),
    );
    try {
      const outcome = await scripts.append(head, batch);
      if (outcome.kind === 'ok') {
        state.acked.push(...pending);
        pending = [];
        head = batch.head;
      } else if (outcome.kind === 'moved') {
        head = outcome.head;
      } else {
        throw new Error(`append: ${JSON.stringify(outcome)}`);
      }
    } catch (err) {
      if (!(err instanceof SessionJournalError) || err.code !== 'REDIS_UNAVAILABLE') throw err;
      state.unavailable++;
      if (err.details.maybeExecuted) {
        // In doubt: maybe written. Not acknowledged, and not written again (a store reads it back to decide).
        state.inDoubt.push(...pending);
        pending = [];
      }
      await waitFor('the reconnection', () => conn.isReady || done(), 30_000);
    }
  }
}

test('SIGKILL of redis-server mid-load: every acknowledged append survives the restart, once; writers reconnect by themselves', async (t) => {
  t.timeout(120_000);
  const server = await startRedisServer(t);
  const prefix = uniquePrefix('crash');
  const states: WriterState[] = [];
  const conns: RedisConnection[] = [];
  for (let i = 0; i < WRITERS; i++) {
    const state: WriterState = { acked: [], inDoubt: [], unavailable: 0, reconnects: 0 };
    const { conn } = await openTestConnection(t, server.url, { prefix, onReconnect: () => state.reconnects++ });
    states.push(state);
    conns.push(conn);
  }
  const total = () => states.reduce((sum, s) => sum + s.acked.length, 0);
  let restarted = false;
  const done = () => restarted && total() >= STOP_AT;
  const writers = conns.map((conn, i) => writeUntil(conn, i, states[i]!, done));
  await waitFor('the first appends', () => total() >= KILL_AT, 60_000);
  const ackedBeforeKill = total();
  await server.kill();
  await server.restart();
  restarted = true;
  await Promise.all(writers);

  t.true(ackedBeforeKill >= KILL_AT);
  t.true(states.some((s) => s.unavailable > 0), 'the kill fell in the middle of the appends');
  t.true(states.every((s) => s.reconnects >= 1), 'every connection came back by itself');

  const { conn: check } = await openTestConnection(t, server.url, { prefix });
  const keys: string[] = [];
  const reader = new StreamReader({
    conn: check,
    consumer: { apply: (r) => void keys.push((r.payload as { key: string }).key) },
    after: { seq: 0, hash: '' },
    maxLineBytes: 1024 * 1024,
    maxRecordBytes: 1024 * 1024,
    warn: (w) => t.fail(`warning ${w.code}: ${w.message}`),
  });
  t.deepEqual(await reader.catchUp(), { kind: 'read', entries: keys.length, more: false }, 'gapless, and the head is its end');
  const stored = new Set(keys);
  t.is(stored.size, keys.length, 'nothing twice');
  const acked = states.flatMap((s) => s.acked);
  const lost = acked.filter((k) => !stored.has(k));
  t.deepEqual(lost, [], 'every acknowledged append is there');
  const inDoubt = new Set(states.flatMap((s) => s.inDoubt));
  t.deepEqual(keys.filter((k) => !acked.includes(k) && !inDoubt.has(k)), [], 'nothing that was never sent');
  t.log(`${acked.length} acknowledged (${ackedBeforeKill} before the kill), ${inDoubt.size} in doubt, ${stored.size} stored`);
});
