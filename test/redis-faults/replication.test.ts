/**
 * `redis: { ..., wait: { replicas, timeoutMs } }`: a commit is acknowledged
 * only once that many replicas have it (WAIT). Without a replica flush()
 * rejects with REDIS_NOT_REPLICATED (the records are on the primary, not
 * lost); with a real replica (a second redis-server started with
 * --replicaof) it resolves, and the replica holds the records. A commit no
 * replica confirmed is owed, not fatal: the store goes on, and a later WAIT
 * that succeeds acknowledges it (replication is one ordered stream); on a
 * connection made since, a proof write goes first, or WAIT would count
 * nothing of its own and pass at once.
 */
import test, { type ExecutionContext } from 'ava';
import { SessionStore } from '../../src/index.js';
import { SessionJournalError } from '../../src/errors.js';
import { TEST_T0 } from '../helpers/fixture-now.js';
import { startRedisServer, uniquePrefix } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/redis-conn.js';
import { freshView, readStream, turnCounts, withStore } from '../helpers/redis-faults.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const clock = () => TEST_T0;
const turn = (prompt: string) => ({ prompt, response: `re ${prompt}`, timestamp: new Date(TEST_T0) });

/** A field of INFO replication. */
const replicationInfo = (url: string, field: string) =>
  withStore(url, 'info', async (conn) => new RegExp(`^${field}:(.*)$`, 'm').exec(String(await conn.command(['INFO', 'replication'])))?.[1]?.trim());

/** Makes `replica` a replica of `primary` and waits until the two are in sync. */
async function replicate(replica: { url: string }, primary: { port: number; url: string }): Promise<void> {
  await withStore(replica.url, 'admin', (conn) => conn.command(['REPLICAOF', '127.0.0.1', String(primary.port)]));
  await waitFor('the replica in sync', async () => (await replicationInfo(replica.url, 'master_link_status')) === 'up' && (await replicationInfo(primary.url, 'connected_slaves')) === '1', 30_000);
}

/** A store on `url` whose commits wait for one replica, with session `a`. */
async function openWaiting(t: ExecutionContext, url: string, name: string, timeoutMs: number, quiet = true): Promise<{ store: SessionStore; prefix: string }> {
  const prefix = uniquePrefix(name);
  const store = await SessionStore.open({ redis: { url, prefix, wait: { replicas: 1, timeoutMs } }, clock, ...(quiet ? { onWarning: () => undefined } : {}) });
  t.teardown(() => store.close().catch(() => undefined));
  store.ensureSession('a');
  return { store, prefix };
}

/** The code a promise rejects with, or 'resolved'. */
const outcome = (p: Promise<unknown>) => p.then(
  () => 'resolved',
  (err: SessionJournalError) => err.code,
);

/** The outcomes of `call`, repeated until the store answers from a server (not REDIS_UNAVAILABLE, while it reconnects); the last one is the answer. */
async function onceReconnected(call: () => Promise<unknown>, what: string): Promise<string[]> {
  const seen: string[] = [];
  await waitFor(what, async () => {
    seen.push(await outcome(call()));
    return seen[seen.length - 1] !== 'REDIS_UNAVAILABLE';
  }, 30_000);
  return seen;
}

test('wait for 1 replica with none: flush() rejects REDIS_NOT_REPLICATED; the commit is on the primary', async (t) => {
  const server = await startRedisServer(t);
  const { store, prefix } = await openWaiting(t, server.url, 'wait-none', 200);
  store.addTurn('a', turn('unreplicated'));
  const started = performance.now();
  const err = await t.throwsAsync(store.flush());
  t.is((err as SessionJournalError).code, 'REDIS_NOT_REPLICATED', err?.message);
  t.regex(err!.message, /reached 0 of 1 replicas within 200 ms/);
  t.true(performance.now() - started >= 190, 'WAIT waited its timeout');
  const fresh = await freshView(server.url, prefix, { clock });
  t.deepEqual(fresh.sessions.find((s) => s.id === 'a')?.turns.map((x) => x.prompt), ['unreplicated'], 'on the primary, not lost');
});

test('wait for 1 replica with a real one (--replicaof): flush() resolves, and the replica holds the records', async (t) => {
  const primary = await startRedisServer(t);
  const replica = await startRedisServer(t, { args: ['--replicaof', '127.0.0.1', String(primary.port)] });
  await waitFor('the replica in sync', async () => (await replicationInfo(replica.url, 'master_link_status')) === 'up' && (await replicationInfo(primary.url, 'connected_slaves')) === '1', 30_000);
  const { store, prefix } = await openWaiting(t, primary.url, 'wait-one', 5000, false);
  for (let i = 0; i < 5; i++) {
    store.addTurn('a', turn(`replicated-${i}`));
    await store.flush();
  }
  // WAIT returned: the replica has every record acknowledged, right now.
  const onPrimary = await readStream(primary.url, prefix);
  const onReplica = await readStream(replica.url, prefix);
  t.deepEqual(onReplica.problems, []);
  t.deepEqual(onReplica.records, onPrimary.records);
  t.is(onReplica.head, onPrimary.head);
  await store.close();
});

test('an unreplicated commit is owed, not fatal: flush() rejects until a replica has it, then resolves with nothing new written; the store is never reopened', async (t) => {
  const primary = await startRedisServer(t);
  const spare = await startRedisServer(t);
  const { store, prefix } = await openWaiting(t, primary.url, 'wait-owed', 200);
  store.addTurn('a', turn('owed'));
  t.is(await outcome(store.flush()), 'REDIS_NOT_REPLICATED');
  t.is(await outcome(store.flush()), 'REDIS_NOT_REPLICATED', 'still no replica: still not acknowledged');

  await replicate(spare, primary);
  t.is(await outcome(store.flush()), 'resolved', 'a replica has it now: the owed commit is acknowledged');
  t.deepEqual((await readStream(spare.url, prefix)).records, (await readStream(primary.url, prefix)).records, 'the replica holds it');
  store.addTurn('a', turn('after'));
  t.is(await outcome(store.flush()), 'resolved', 'and the store goes on');
  t.deepEqual(store.getSession('a')?.turns.map((x) => x.prompt), ['owed', 'after']);
  await store.close();
});

test('an owed commit, its connection lost: flush() on the new connection still rejects while the replica is stopped, and resolves once it has the commit', async (t) => {
  const primary = await startRedisServer(t);
  const replica = await startRedisServer(t);
  await replicate(replica, primary);
  const { store, prefix } = await openWaiting(t, primary.url, 'wait-proof', 300);
  await store.flush();
  replica.pause(); // connected, acknowledging nothing new
  t.teardown(() => replica.resume());
  store.addTurn('a', turn('while-stopped'));
  t.is(await outcome(store.flush()), 'REDIS_NOT_REPLICATED');

  // The store's connection dies; it reconnects by itself, and proves the owed commit over the new one.
  await withStore(primary.url, 'admin', (conn) => conn.command(['CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes']));
  const seen = await onceReconnected(() => store.flush(), 'a proof over the new connection');
  t.is(seen[seen.length - 1], 'REDIS_NOT_REPLICATED', `the stopped replica has not got it: ${seen.join(', ')}`);

  replica.resume();
  await waitFor('the owed commit acknowledged', async () => (await outcome(store.flush())) === 'resolved', 30_000);
  t.deepEqual((await readStream(replica.url, prefix)).records, (await readStream(primary.url, prefix)).records, 'the replica holds it');
  await store.close();
});

/**
 * A failover to a replica that lacks the owed commit: the old primary's
 * replication link is cut (a proxy, partitioned) before the commit, then
 * the clients' proxy moves to the replica, promoted, which has a replica of
 * its own, so a WAIT there succeeds. Nothing may acknowledge the lost commit.
 */
async function failoverLosingTheTail(t: ExecutionContext, name: string, options: { wait: boolean }) {
  const oldPrimary = await startRedisServer(t);
  const promoted = await startRedisServer(t);
  const promotedsReplica = await startRedisServer(t);
  const link = await TcpProxy.start(oldPrimary.port);
  const clients = await TcpProxy.start(oldPrimary.port);
  t.teardown(() => Promise.all([link.close(), clients.close()]));
  await replicate(promoted, { port: link.port, url: oldPrimary.url });
  await replicate(promotedsReplica, promoted);
  const prefix = uniquePrefix(name);
  const open = async () => {
    const store = await SessionStore.open({ redis: { url: clients.url, prefix, ...(options.wait && { wait: { replicas: 1, timeoutMs: 300 } }) }, clock, onWarning: () => undefined });
    t.teardown(() => store.close().catch(() => undefined));
    return store;
  };
  const store = await open();
  store.ensureSession('a');
  store.addTurn('a', turn('replicated'));
  t.is(await outcome(store.flush()), 'resolved');
  await waitFor('the promoted replica holds it', async () => (await readStream(promoted.url, prefix)).records.length === (await readStream(oldPrimary.url, prefix)).records.length, 30_000);

  link.partition(); // from here nothing reaches the replica
  store.addTurn('a', turn('lost-in-failover'));
  t.is(await outcome(store.flush()), options.wait ? 'REDIS_NOT_REPLICATED' : 'resolved');

  await oldPrimary.kill();
  await withStore(promoted.url, 'admin', (conn) => conn.command(['REPLICAOF', 'NO', 'ONE']));
  await replicate(promotedsReplica, promoted);
  clients.failOver(promoted.port);
  return { store, open, promoted, prefix };
}

test('an owed commit lost in a failover is never acknowledged: flush() on the new primary, whose replica confirms WAITs, fails REDIS_DATA_LOST for good', async (t) => {
  const { store, promoted, prefix } = await failoverLosingTheTail(t, 'wait-failover', { wait: true });
  const seen = await onceReconnected(() => store.flush(), 'an answer from the new primary');
  t.is(seen[seen.length - 1], 'REDIS_DATA_LOST', `flush() after the failover: ${seen.join(', ')}`);
  t.is(await outcome(store.flush()), 'REDIS_DATA_LOST', 'and stays failed: the view holds a turn the store lost');
  t.deepEqual([...turnCounts((await readStream(promoted.url, prefix)).records).keys()], ['replicated'], 'the new primary has only the replicated turn');
});

test('an owed commit lost in a failover, another host writing on at its seq: flush() fails REDIS_DATA_LOST, and the other host is unaffected', async (t) => {
  const { store, open } = await failoverLosingTheTail(t, 'wait-fork', { wait: true });
  const other = await open();
  other.ensureSession('b');
  other.addTurn('b', turn('written-after-failover'));
  t.is(await outcome(other.flush()), 'resolved', 'the other host writes on the new primary');
  const seen = await onceReconnected(() => store.flush(), 'an answer from the new primary');
  t.is(seen[seen.length - 1], 'REDIS_DATA_LOST', `flush() after the failover: ${seen.join(', ')}`);
  store.addTurn('a', turn('after'));
  t.is(await outcome(store.flush()), 'REDIS_DATA_LOST', 'nothing more is acknowledged to a view that holds a lost turn');
});

test('without wait, a reader whose last records a failover lost does not read on along the other history: catchUp() fails REDIS_DATA_LOST', async (t) => {
  const { store, open } = await failoverLosingTheTail(t, 'nowait-fork', { wait: false });
  const other = await open();
  other.ensureSession('b');
  other.addTurn('b', turn('written-after-failover'));
  other.addTurn('b', turn('and-another'));
  await other.flush();
  const seen = await onceReconnected(() => store.catchUp(), 'an answer from the new primary');
  t.is(seen[seen.length - 1], 'REDIS_DATA_LOST', `catchUp() after the failover: ${seen.join(', ')}`);
  t.is(store.getSession('b'), undefined, 'the other history was not read in');
});
