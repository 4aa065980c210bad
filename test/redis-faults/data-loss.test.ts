/**
 * Lost data is found, never written over: the stream key deleted under
 * live stores, a server that came back empty (restarted without its
 * append-only file), and a server that may evict keys.
 *
 * - REDIS_DATA_LOST on the next commit of every live store and at open,
 *   and the stream is not created again (a writer starting over would
 *   number its records from seq 1 again, on top of a snapshot or of readers
 *   that had read further);
 * - a server whose maxmemory-policy is not noeviction is refused at open
 *   (REDIS_EVICTION_POLICY), before anything is written. The settings
 *   check itself is test/redis/server-config.test.ts.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { SessionStore } from '../../src/index.js';
import { SessionJournalError } from '../../src/errors.js';
import { StoreChild } from '../helpers/child-protocol.js';
import { timeline } from '../helpers/child-clock.js';
import { TEST_T0 } from '../helpers/fixture-now.js';
import { startRedisServer, uniquePrefix } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/redis-conn.js';
import { withStore } from '../helpers/redis-faults.js';

const clock = () => TEST_T0;
const turn = (prompt: string) => ({ prompt, response: `re ${prompt}`, timestamp: new Date(TEST_T0) });
const codeOf = (err: unknown) => (err as SessionJournalError | undefined)?.code;

test('DEL of the stream under live stores: REDIS_DATA_LOST on their next commit and at open; the stream is not created again', async (t) => {
  const server = await startRedisServer(t);
  const prefix = uniquePrefix('del');
  const redis = { url: server.url, prefix };
  const child = new StoreChild('w');
  t.teardown(() => child.kill());
  await child.request({ op: 'open', redis, fsync: true, clock: timeline(TEST_T0) }, 'opened');
  await child.request({ op: 'ops', ops: [{ k: 'ensure', id: 'a' }, { k: 'turn', id: 'a', prompt: 'one' }] }, 'flushed');
  const here = await SessionStore.open({ redis, clock, onWarning: () => undefined });
  t.teardown(() => here.close().catch(() => undefined));
  here.addTurn('a', turn('two'));
  await here.flush();

  t.is(await withStore(server.url, prefix, (conn) => conn.command(['DEL', conn.keys.log])), 1);

  here.addTurn('a', turn('after the loss'));
  t.is(codeOf(await t.throwsAsync(here.flush())), 'REDIS_DATA_LOST');
  t.deepEqual(here.getSession('a')?.turns.map((x) => x.prompt), ['one', 'two', 'after the loss'], 'reads still answer from the view');
  const failed = await child.request({ op: 'ops', ops: [{ k: 'turn', id: 'a', prompt: 'after the loss, elsewhere' }], tolerateFlushFailure: true }, 'flush-failed');
  t.is(failed.code, 'REDIS_DATA_LOST');
  t.regex(failed.message, /missing/);
  const opening = await t.throwsAsync(SessionStore.open({ redis, clock }));
  t.is(codeOf(opening), 'REDIS_DATA_LOST');
  t.regex(opening!.message, /restore the keys from a backup/);
  // The engines retry in the background (and fail the same way): nothing recreates the stream meanwhile.
  await waitFor('a retry of the failed commit', () => child.warnings.some((w) => w.code === 'COMMIT_FAILED' && /missing/.test(w.message)), 10_000);
  t.is(await withStore(server.url, prefix, (conn) => conn.command(['EXISTS', conn.keys.log])), 0, 'no stream written over the loss');
  t.is(codeOf(await t.throwsAsync(here.flush())), 'REDIS_DATA_LOST', 'still refused');
});

test('a server that came back empty (restarted without its append-only file): the live writer finds the loss (REDIS_DATA_LOST) instead of starting over at seq 1', async (t) => {
  const server = await startRedisServer(t);
  const prefix = uniquePrefix('empty');
  const redis = { url: server.url, prefix };
  const child = new StoreChild('w');
  t.teardown(() => child.kill());
  await child.request({ op: 'open', redis, fsync: true, clock: timeline(TEST_T0) }, 'opened');
  await child.request({ op: 'ops', ops: [{ k: 'ensure', id: 'a' }, { k: 'turn', id: 'a', prompt: 'one' }, { k: 'turn', id: 'a', prompt: 'two' }] }, 'flushed');

  await server.kill();
  for (const name of fs.readdirSync(server.dir)) fs.rmSync(path.join(server.dir, name), { recursive: true, force: true });
  await server.restart();
  await waitFor('the reconnection', () => child.warnings.some((w) => w.code === 'RECOVERED'), 30_000);

  const failed = await child.request({ op: 'ops', ops: [{ k: 'turn', id: 'a', prompt: 'three' }], tolerateFlushFailure: true, noCatchUp: true }, 'flush-failed');
  t.is(failed.code, 'REDIS_DATA_LOST', failed.message);
  const keys = await withStore(server.url, prefix, (conn) => conn.command(['KEYS', `{${prefix}}:*`]));
  t.deepEqual(keys, [], 'nothing written on the empty server');
  const caught = await child.request({ op: 'catch-up' }, 'caught-up');
  t.is(caught.code, 'REDIS_DATA_LOST', 'catchUp() says so too');
  const view = await child.request({ op: 'get', id: 'a' }, 'session');
  t.deepEqual(view.session?.turns.map((x) => x.prompt), ['one', 'two', 'three'], 'the view is kept (for an export, say)');
});

test('a server with maxmemory-policy allkeys-lru is refused at open (REDIS_EVICTION_POLICY), before anything is written', async (t) => {
  const server = await startRedisServer(t, { args: ['--maxmemory-policy', 'allkeys-lru'] });
  const prefix = uniquePrefix('lru');
  const err = await t.throwsAsync(SessionStore.open({ redis: { url: server.url, prefix }, clock }));
  t.is(codeOf(err), 'REDIS_EVICTION_POLICY');
  t.deepEqual(await withStore(server.url, prefix, (conn) => conn.command(['KEYS', `{${prefix}}:*`])), [], 'no key of the store');
  // The same server set to noeviction (CONFIG SET, as an operator would) is accepted.
  await withStore(server.url, prefix, (conn) => conn.command(['CONFIG', 'SET', 'maxmemory-policy', 'noeviction']));
  const store = await SessionStore.open({ redis: { url: server.url, prefix }, clock });
  store.ensureSession('a');
  await store.close();
});
