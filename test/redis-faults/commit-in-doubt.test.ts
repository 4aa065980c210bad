/**
 * A commit whose reply never came (the commit in doubt), made with real
 * faults: a redis-server stopped (SIGSTOP) with the append on its socket,
 * and a TCP proxy (test/helpers/tcp-proxy.ts) that cuts a connection after
 * the server answered, or holds a request back and delivers it late on its
 * old connection. flush() rejects with REDIS_UNAVAILABLE; the store, not
 * reopened, reads the commit back at its next commit, acknowledges it if it
 * is there and writes it again only if it is not: in every case the turn is
 * in the store exactly once and the next flush() resolves.
 */
import test, { type ExecutionContext } from 'ava';
import { SessionStore, compactSessions, type JournalWarning } from '../../src/index.js';
import { SessionJournalError } from '../../src/errors.js';
import { serializeSessions } from '../helpers/child-protocol.js';
import { TEST_T0 } from '../helpers/fixture-now.js';
import { startRedisServer, uniquePrefix, type RedisServer } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/redis-conn.js';
import { freshView, readStream, turnCounts, viewTurnCounts } from '../helpers/redis-faults.js';
import { TcpProxy, requestOf } from '../helpers/tcp-proxy.js';

const clock = () => TEST_T0;
const turn = (prompt: string) => ({ prompt, response: `re ${prompt}`, timestamp: new Date(TEST_T0) });

interface Setup {
  server: RedisServer;
  prefix: string;
  store: SessionStore;
  warnings: JournalWarning[];
  proxy?: TcpProxy;
}

/**
 * A store with one acknowledged turn, on `server` directly (with a command
 * timeout short enough to wait for, long enough for a loaded machine) or
 * through a proxy (whose faults cut connections: no timeout is waited for).
 */
async function setup(t: ExecutionContext, via: 'direct' | 'proxy'): Promise<Setup> {
  const server = await startRedisServer(t);
  const proxy = via === 'proxy' ? await TcpProxy.start(server.port) : undefined;
  if (proxy) t.teardown(() => proxy.close());
  const prefix = uniquePrefix('doubt');
  const warnings: JournalWarning[] = [];
  const url = proxy?.url ?? server.url;
  const store = await SessionStore.open({ redis: { url, prefix, ...(via === 'direct' && { commandTimeoutMs: 3000 }) }, clock, onWarning: (w) => warnings.push(w) });
  t.teardown(() => store.close().catch(() => undefined));
  store.ensureSession('a');
  store.addTurn('a', turn('before'));
  await store.flush();
  return { server, prefix, store, warnings, ...(proxy && { proxy }) };
}

/** The seq the next commit's first line takes: the store is the only writer. */
async function nextSeq(s: Setup): Promise<number> {
  const head = (await readStream(s.server.url, s.prefix)).head;
  return Number((head ?? '0').split(' ')[0]) + 1;
}

async function rejectsUnavailable(t: ExecutionContext, flushing: Promise<void>): Promise<void> {
  const err = await t.throwsAsync(flushing);
  t.is((err as SessionJournalError).code, 'REDIS_UNAVAILABLE', err?.message);
}

/** flush() once the connection came back (RECOVERED), as a caller that retries does. */
async function flushWhenBack(s: Setup, recoveredBefore: number): Promise<void> {
  await waitFor('the reconnection', () => s.warnings.filter((w) => w.code === 'RECOVERED' && /connection to Redis/.test(w.message)).length > recoveredBefore, 30_000);
  await s.store.flush();
}

const recoveries = (s: Setup) => s.warnings.filter((w) => w.code === 'RECOVERED' && /connection to Redis/.test(w.message)).length;

/** The turn `prompt` once in the stream, once in the store's view, once in a fresh process's view. */
async function onceEverywhere(t: ExecutionContext, s: Setup, prompt: string): Promise<void> {
  const stream = await readStream(s.server.url, s.prefix);
  t.deepEqual(stream.problems, []);
  // A compaction may have folded it into the snapshot: count it in the views then.
  if (stream.snapshotSeq === 0) t.is(turnCounts(stream.records).get(prompt), 1, `${prompt} recorded once`);
  t.is(viewTurnCounts(serializeSessions(s.store.listSessions())).get(prompt), 1, `${prompt} once in the store's view`);
  const fresh = await freshView(s.server.url, s.prefix, { clock });
  t.is(viewTurnCounts(fresh.sessions).get(prompt), 1, `${prompt} once in a fresh view`);
  await s.store.catchUp();
  t.deepEqual(serializeSessions(s.store.listSessions()), fresh.sessions);
}

test('the server stopped (SIGSTOP) with the append on its socket: flush() rejects after the timeout; read back once the server goes on, the turn is there once', async (t) => {
  const s = await setup(t, 'direct');
  const streamBefore = (await readStream(s.server.url, s.prefix)).records.length;
  s.server.pause();
  t.teardown(() => s.server.resume());
  s.store.addTurn('a', turn('sent-to-a-stopped-server'));
  await rejectsUnavailable(t, s.store.flush());
  const before = recoveries(s);
  s.server.resume();
  // What the server did with the append it found on its socket: ran it, or not (the client had closed that connection).
  const landed = (await readStream(s.server.url, s.prefix)).records.length > streamBefore;
  await flushWhenBack(s, before);
  await onceEverywhere(t, s, 'sent-to-a-stopped-server');
  t.log(landed ? 'the server ran the append when it went on: read back and acknowledged' : 'the append did not run: written again');
});

test('the reply lost after the script ran (the proxy cuts the connection): the commit is read back and acknowledged, not written again', async (t) => {
  const s = await setup(t, 'proxy');
  const dropped = s.proxy!.dropReplyTo(requestOf('EVALSHA', 'reply-lost'));
  s.store.addTurn('a', turn('reply-lost'));
  const before = recoveries(s);
  await rejectsUnavailable(t, s.store.flush());
  await dropped;
  t.is(turnCounts((await readStream(s.server.url, s.prefix)).records).get('reply-lost'), 1, 'the server ran it');
  await flushWhenBack(s, before);
  await onceEverywhere(t, s, 'reply-lost');
});

test('the append held in the network and delivered on its old connection after the writer read that it was not there: it cannot run any more, and the turn is written once', async (t) => {
  const s = await setup(t, 'proxy');
  const first = await nextSeq(s);
  const held = s.proxy!.holdRequest(requestOf('EVALSHA', 'held-back'));
  // The moment that decides: the writer's read-back ran and found nothing; the held append arrives before the answer does.
  let delivered: 'ran' | 'closed' | undefined;
  s.proxy!.beforeReplyTo(requestOf('XRANGE', `\r\n${first}-0\r\n`), async () => (delivered = await (await held).deliver()));
  s.store.addTurn('a', turn('held-back'));
  const before = recoveries(s);
  await rejectsUnavailable(t, s.store.flush());
  await flushWhenBack(s, before);
  await onceEverywhere(t, s, 'held-back');
  t.is(delivered, 'closed', 'the server had closed the old connection (CLIENT KILL) before the writer read the stream');
});

test('the reply lost, then cut off while a compaction folds and trims the commit: read back after the trim, acknowledged once', async (t) => {
  const s = await setup(t, 'proxy');
  const dropped = s.proxy!.dropReplyTo(requestOf('EVALSHA', 'trimmed-while-in-doubt'), true);
  s.store.addTurn('a', turn('trimmed-while-in-doubt'));
  const before = recoveries(s);
  await rejectsUnavailable(t, s.store.flush());
  await dropped;
  // Another host compacts meanwhile: the commit leaves the stream for the snapshot.
  const result = await compactSessions({ redis: { url: s.server.url, prefix: s.prefix }, now: clock, ttlMs: 1e12, maxSessions: 1000 });
  t.is(result.status, 'compacted');
  const stream = await readStream(s.server.url, s.prefix);
  t.is(turnCounts(stream.records).get('trimmed-while-in-doubt'), undefined, 'trimmed from the stream');
  s.proxy!.heal();
  await flushWhenBack(s, before);
  await onceEverywhere(t, s, 'trimmed-while-in-doubt');
});

test('a commit still in doubt after two compactions (its trace pruned): not guessed, not written again; flush() rejects REDIS_COMMIT_UNKNOWN until the store is reopened, which finds it once', async (t) => {
  const s = await setup(t, 'proxy');
  const dropped = s.proxy!.dropReplyTo(requestOf('EVALSHA', 'in-doubt-too-long'), true);
  s.store.addTurn('a', turn('in-doubt-too-long'));
  const before = recoveries(s);
  await rejectsUnavailable(t, s.store.flush());
  await dropped;
  const redis = { url: s.server.url, prefix: s.prefix };
  const other = await SessionStore.open({ redis, clock });
  for (const round of [1, 2]) {
    other.addTurn('a', turn(`other-${round}`));
    await other.flush();
    t.is((await compactSessions({ redis, now: clock, ttlMs: 1e12, maxSessions: 1000 })).status, 'compacted');
  }
  await other.close();
  s.proxy!.heal();
  await waitFor('the reconnection', () => recoveries(s) > before, 30_000);
  const err = await t.throwsAsync(s.store.flush());
  t.is((err as SessionJournalError).code, 'REDIS_COMMIT_UNKNOWN', err?.message);
  t.is((await t.throwsAsync(s.store.flush()) as SessionJournalError).code, 'REDIS_COMMIT_UNKNOWN', 'until the store is reopened');
  t.true(s.warnings.some((w) => w.code === 'COMMIT_FAILED' && /cannot be read back/.test(w.message)));
  const fresh = await freshView(s.server.url, s.prefix, { clock });
  t.is(viewTurnCounts(fresh.sessions).get('in-doubt-too-long'), 1, 'it had landed: once, never twice');
});
