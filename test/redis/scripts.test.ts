/**
 * The scripts (src/storage/redis/scripts.ts) on a real server: each outcome
 * of the append (ok, head moved, fenced, data lost), the snapshot install
 * under the fence, the lock (acquire, renew, release only one's own), and
 * EVALSHA falling back to EVAL after SCRIPT FLUSH.
 */
import test from 'ava';
import { StoreScripts, formatHead, parseHead, type AppendBatch, type ChainHead } from '../../src/storage/redis/scripts.js';
import { RedisBatchEncoder } from '../../src/storage/redis/batch-encoder.js';
import { canonicalPayload } from '../../src/engine/record-codec.js';
import { SessionJournalError } from '../../src/errors.js';
import { sharedRedisUrl, startRedisServer } from '../helpers/redis-server.js';
import { openTestConnection } from '../helpers/redis-conn.js';
import type { RedisConnection } from '../../src/storage/redis/connection.js';

const T0 = Date.UTC(2026, 10, 20, 9, 0, 0);
const encoder = new RedisBatchEncoder({ writerJson: JSON.stringify('1@test'), maxLineBytes: 1024 * 1024, hashChain: true, tag: 'tst001' });
const batchOf = (head: ChainHead | undefined, ...keys: string[]): AppendBatch =>
  encoder.encode(
    head,
    keys.map((key, i) => ({ time: T0 + i, type: 'kv.set', payloadJson: canonicalPayload({ key, value: i })! })),
  ).batch;

async function setup(t: Parameters<typeof openTestConnection>[0]): Promise<{ conn: RedisConnection; scripts: StoreScripts }> {
  const { conn } = await openTestConnection(t, await sharedRedisUrl());
  return { conn, scripts: new StoreScripts(conn) };
}

const streamIds = async (conn: RedisConnection): Promise<string[]> => ((await conn.command(['XRANGE', conn.keys.log, '-', '+'])) as [string, string[]][]).map((e) => e[0]);

test('heads are "<seq> <h>", and nothing else parses as one', (t) => {
  t.is(formatHead(undefined), '');
  t.is(formatHead({ seq: 12, hash: 'WfC-d4-TUP00Ca5L-edqnQ' }), '12 WfC-d4-TUP00Ca5L-edqnQ');
  t.deepEqual(parseHead('12 WfC-d4-TUP00Ca5L-edqnQ'), { seq: 12, hash: 'WfC-d4-TUP00Ca5L-edqnQ' });
  t.deepEqual(parseHead('3 '), { seq: 3, hash: '' }, 'the chain off');
  t.is(parseHead(null), undefined);
  t.is(parseHead(''), undefined);
  for (const bad of ['0 x', '12', ' 12 x', '12 a b', '012 x', '99999999999999999 x']) t.is(parseHead(bad), 'invalid', bad);
});

test('append: ok writes every line as <seq>-0 and moves the head; a stale head is "moved" with the current head, writing nothing', async (t) => {
  const { conn, scripts } = await setup(t);
  await scripts.load();
  const first = batchOf(undefined, 'a', 'b', 'c');
  t.deepEqual(await scripts.append(undefined, first), { kind: 'ok' });
  t.deepEqual(await streamIds(conn), ['1-0', '2-0', '3-0']);
  t.is(await conn.command(['GET', conn.keys.head]), formatHead(first.head));
  const fields = (await conn.command(['XRANGE', conn.keys.log, '1-0', '1-0'])) as [string, string[]][];
  t.deepEqual(fields[0]![1][0], 'r');
  t.regex(fields[0]![1][1]!, /^\{"v":2,"seq":1,"ts":\d+,"w":"1@test","c":"tst001","n":3,"t":"kv.set",/);

  // A second writer still at the empty store, and one at an older head.
  const moved = await scripts.append(undefined, batchOf(undefined, 'x'));
  t.deepEqual(moved, { kind: 'moved', head: first.head });
  const second = batchOf(first.head, 'd');
  t.deepEqual(await scripts.append(first.head, second), { kind: 'ok' });
  t.deepEqual(await scripts.append(first.head, batchOf(first.head, 'y')), { kind: 'moved', head: second.head });
  t.deepEqual(await streamIds(conn), ['1-0', '2-0', '3-0', '4-0']);
});

test('append: a batch that does not follow the head is refused before anything is written', async (t) => {
  const { conn, scripts } = await setup(t);
  const bad = { ...batchOf(undefined, 'a', 'b'), firstSeq: 2 };
  const err = await t.throwsAsync(scripts.append(undefined, bad));
  t.is((err as SessionJournalError).code, 'REDIS_COMMAND_FAILED');
  t.regex(err!.message, /does not follow the head/);
  const wrongHead = { ...batchOf(undefined, 'a', 'b'), head: { seq: 5, hash: 'x' } };
  t.regex((await t.throwsAsync(scripts.append(undefined, wrongHead)))!.message, /not the last line/);
  t.is(await conn.command(['EXISTS', conn.keys.log]), 0);
  t.is(await conn.command(['EXISTS', conn.keys.head]), 0);
});

test('append with a fencing token: written only while the token is the fence and the lock', async (t) => {
  const { conn, scripts } = await setup(t);
  const lock = await scripts.acquireLock(60_000);
  if (lock.kind !== 'ok') return t.fail('lock not taken');
  const one = batchOf(undefined, 'a');
  t.deepEqual(await scripts.append(undefined, one, lock.token), { kind: 'ok' });
  // Another compaction took over after this one's lock expired.
  await conn.command(['DEL', conn.keys.lock]);
  const other = await scripts.acquireLock(60_000);
  if (other.kind !== 'ok') return t.fail('second lock not taken');
  t.not(other.token, lock.token);
  t.deepEqual(await scripts.append(one.head, batchOf(one.head, 'b'), lock.token), { kind: 'fenced', fence: other.token, lock: other.token });
  // Fenced is told before the head: a fenced compactor never has to catch up first.
  t.deepEqual(await scripts.append(undefined, batchOf(undefined, 'b'), lock.token), { kind: 'fenced', fence: other.token, lock: other.token });
  // The lock expired and nobody took it: the fence alone does not let the old holder write.
  await conn.command(['DEL', conn.keys.lock]);
  t.deepEqual(await scripts.append(one.head, batchOf(one.head, 'b'), other.token), { kind: 'fenced', fence: other.token, lock: '' });
  // Writers without a token are not fenced.
  t.deepEqual(await scripts.append(one.head, batchOf(one.head, 'b')), { kind: 'ok' });
});

test('append on a store that lost its stream, its head, or both (a snapshot remaining) is "lost", and writes nothing', async (t) => {
  const { conn, scripts } = await setup(t);
  const one = batchOf(undefined, 'a', 'b');
  await scripts.append(undefined, one);
  await conn.command(['DEL', conn.keys.log]);
  const lost = await scripts.append(one.head, batchOf(one.head, 'c'));
  t.is(lost.kind, 'lost');
  t.regex(lost.kind === 'lost' ? lost.reason : '', /stream .* is gone/);
  // Not even a writer that starts over from nothing recreates it.
  t.is((await scripts.append(undefined, batchOf(undefined, 'c'))).kind, 'lost');
  t.is(await conn.command(['EXISTS', conn.keys.log]), 0);

  const { conn: conn2, scripts: scripts2 } = await setup(t);
  await scripts2.append(undefined, one);
  await conn2.command(['DEL', conn2.keys.head]);
  const headless = await scripts2.append(undefined, batchOf(undefined, 'c'));
  t.is(headless.kind, 'lost');
  t.regex(headless.kind === 'lost' ? headless.reason : '', /head .* is gone/);

  const { conn: conn3, scripts: scripts3 } = await setup(t);
  await conn3.command(['HSET', conn3.keys.snap, 'seq', '5', 'gen', '1']);
  const bare = await scripts3.append(undefined, batchOf(undefined, 'c'));
  t.is(bare.kind, 'lost');
  t.regex(bare.kind === 'lost' ? bare.reason : '', /a snapshot exists/);
});

test('after SCRIPT FLUSH (or a restart) EVALSHA gets NOSCRIPT and the script is sent whole', async (t) => {
  const { conn, scripts } = await setup(t);
  await scripts.load();
  await conn.command(['SCRIPT', 'FLUSH']);
  t.deepEqual(await scripts.append(undefined, batchOf(undefined, 'a')), { kind: 'ok' });
  t.is((await streamIds(conn)).length, 1, 'run once, not twice');
});

test('lock: one holder at a time; a refused attempt does not move the fence; renew and release only with the own token', async (t) => {
  const { conn, scripts } = await setup(t);
  const first = await scripts.acquireLock(60_000);
  t.is(first.kind, 'ok');
  const token = first.kind === 'ok' ? first.token : '';
  t.is(await conn.command(['GET', conn.keys.fence]), token);
  const refused = await scripts.acquireLock(60_000);
  t.is(refused.kind, 'held');
  if (refused.kind === 'held') {
    t.is(refused.holder, token);
    t.true(refused.ttlMs > 0 && refused.ttlMs <= 60_000);
  }
  t.is(await conn.command(['GET', conn.keys.fence]), token, 'the holder is not fenced by a refused attempt');

  await conn.command(['PEXPIRE', conn.keys.lock, '100000']);
  t.deepEqual(await scripts.renewLock(token, 5000), { kind: 'ok' });
  const ttl = (await conn.command(['PTTL', conn.keys.lock])) as number;
  t.true(ttl > 0 && ttl <= 5000, `renewed to 5 s (${ttl})`);
  t.deepEqual(await scripts.renewLock('999', 5000), { kind: 'lost', holder: token });
  t.deepEqual(await scripts.releaseLock('999'), { kind: 'not-held', holder: token });
  t.is(await conn.command(['GET', conn.keys.lock]), token, "another's release leaves the lock");
  t.deepEqual(await scripts.releaseLock(token), { kind: 'released' });
  t.is(await conn.command(['EXISTS', conn.keys.lock]), 0);
  t.deepEqual(await scripts.renewLock(token, 5000), { kind: 'lost', holder: '' });
  t.deepEqual(await scripts.releaseLock(token), { kind: 'not-held', holder: '' });

  const next = await scripts.acquireLock(60_000);
  t.is(next.kind === 'ok' && Number(next.token), Number(token) + 1);
  await t.throwsAsync(scripts.acquireLock(0), { message: /time to live/ });
});

test('snapshot install: under the fence, from the manifest the compactor read, never backwards, only with its chunks; the previous generation goes', async (t) => {
  const { conn, scripts } = await setup(t);
  const k = conn.keys;
  const lock = await scripts.acquireLock(60_000);
  const token = lock.kind === 'ok' ? lock.token : '';
  const gen = Number(token);
  const manifest = { seq: 4, h: 'WfC-d4-TUP00Ca5L-edqnQ', gen, chunks: 2, bytes: 10, sha256: 'a'.repeat(64) };
  await conn.command(['SET', k.chunk(gen, 0), 'hello', 'PX', '60000']);
  t.deepEqual(await scripts.installSnapshot(token, manifest, undefined), { kind: 'missing', key: k.chunk(gen, 1) });
  await conn.command(['SET', k.chunk(gen, 1), 'world', 'PX', '60000']);
  t.deepEqual(await scripts.installSnapshot(String(gen + 1), manifest, undefined), { kind: 'fenced', fence: token, lock: token });
  t.deepEqual(await scripts.installSnapshot(token, manifest, { gen: 99, chunks: 1 }), { kind: 'changed', gen: '' });
  t.deepEqual(await scripts.installSnapshot(token, manifest, undefined), { kind: 'ok' });
  const installed = (await conn.command(['HGETALL', k.snap])) as string[];
  t.deepEqual(installed.slice(0, 12), ['seq', '4', 'h', manifest.h, 'gen', String(gen), 'chunks', '2', 'bytes', '10', 'sha256', manifest.sha256]);
  t.is(installed[12], 'at', "and when it was installed, by the server's clock");
  const [seconds] = (await conn.command(['TIME'])) as string[];
  t.true(Math.abs(Number(installed[13]) - Number(seconds) * 1000) < 60_000, `at ${installed[13]} is the server's time in ms`);
  t.is(await conn.command(['PTTL', k.chunk(gen, 0)]), -1, 'installed chunks no longer expire');
  t.is(await conn.command(['PTTL', k.chunk(gen, 1)]), -1);

  // The next compaction: a newer generation replaces this one.
  await scripts.releaseLock(token);
  const next = await scripts.acquireLock(60_000);
  const token2 = next.kind === 'ok' ? next.token : '';
  const gen2 = Number(token2);
  await conn.command(['SET', k.chunk(gen2, 0), 'x', 'PX', '60000']);
  const older = { ...manifest, gen: gen2, chunks: 1, seq: 3 };
  t.deepEqual(await scripts.installSnapshot(token2, older, manifest), { kind: 'behind', seq: 4 });
  t.deepEqual(await scripts.installSnapshot(token2, { ...older, seq: 9 }, manifest), { kind: 'ok' });
  t.is(await conn.command(['EXISTS', k.chunk(gen, 0), k.chunk(gen, 1)]), 0, 'the previous generation is deleted');
  t.is(await conn.command(['HGET', k.snap, 'gen']), String(gen2));
});

test("{P}:writers: each append sets its writer's field to its first seq; an install drops the fields the replaced snapshot had folded, and says up to where", async (t) => {
  const { conn, scripts } = await setup(t);
  const k = conn.keys;
  const other = new RedisBatchEncoder({ writerJson: JSON.stringify('2@test'), maxLineBytes: 1024 * 1024, hashChain: true, tag: 'tst002' });
  const one = batchOf(undefined, 'a', 'b');
  t.deepEqual(await scripts.append(undefined, one), { kind: 'ok' });
  const two = other.encode(one.head, [{ time: T0, type: 'kv.set', payloadJson: canonicalPayload({ key: 'c', value: 1 })! }]).batch;
  t.deepEqual(await scripts.append(one.head, two), { kind: 'ok' });
  const three = batchOf(two.head, 'd');
  t.deepEqual(await scripts.append(two.head, three), { kind: 'ok' });
  t.is(three.writer, 'tst001 1@test', 'tag and writer: two writers drawing the same tag keep apart');
  t.deepEqual(await conn.command(['HGETALL', k.writers]), ['tst001 1@test', '4', 'tst002 2@test', '3']);
  // A moved append sets nothing.
  t.deepEqual(await scripts.append(one.head, batchOf(one.head, 'x')), { kind: 'moved', head: three.head });
  t.is(await conn.command(['HGET', k.writers, 'tst001 1@test']), '4');

  const install = async (seq: number, previous: { gen: number; chunks: number } | undefined) => {
    const lock = await scripts.acquireLock(60_000);
    const token = lock.kind === 'ok' ? lock.token : '';
    await conn.command(['SET', k.chunk(Number(token), 0), 'x', 'PX', '60000']);
    const manifest = { seq, h: '', gen: Number(token), chunks: 1, bytes: 1, sha256: 'a'.repeat(64) };
    t.deepEqual(await scripts.installSnapshot(token, manifest, previous), { kind: 'ok' });
    await scripts.releaseLock(token);
    return manifest;
  };
  // The first snapshot folds up to 3: it replaces none, so no field goes (a writer in doubt about seq 3 can still read its field).
  const first = await install(3, undefined);
  t.deepEqual(await conn.command(['HGETALL', k.writers]), ['tst001 1@test', '4', 'tst002 2@test', '3']);
  // The next one replaces a snapshot that folded up to 3: the fields up to 3 go.
  const second = await install(4, first);
  t.deepEqual(await conn.command(['HGETALL', k.writers]), ['tst001 1@test', '4', '~pruned', '3']);
  await install(4, second);
  t.deepEqual(await conn.command(['HGETALL', k.writers]), ['~pruned', '4']);
});

test('a server out of memory (noeviction) refuses the whole append before it runs: REDIS_COMMAND_FAILED, nothing written', async (t) => {
  const server = await startRedisServer(t);
  const { conn } = await openTestConnection(t, server.url);
  const scripts = new StoreScripts(conn);
  const one = batchOf(undefined, 'a');
  t.deepEqual(await scripts.append(undefined, one), { kind: 'ok' });
  // Below what the server already uses: with noeviction every write is refused, and nothing is evicted.
  const info = (await conn.command(['INFO', 'memory'])) as string;
  const used = Number(/used_memory:(\d+)/.exec(info)![1]);
  await conn.command(['CONFIG', 'SET', 'maxmemory', String(Math.floor(used / 2))]);
  const err = await t.throwsAsync(scripts.append(one.head, batchOf(one.head, 'b', 'c', 'd')));
  t.is((err as SessionJournalError).code, 'REDIS_COMMAND_FAILED');
  t.regex(err!.message, /OOM/);
  await conn.command(['CONFIG', 'SET', 'maxmemory', '0']);
  t.deepEqual(await streamIds(conn), ['1-0']);
  t.is(await conn.command(['GET', conn.keys.head]), formatHead(one.head));
});
