/**
 * The connection (src/storage/redis/connection.ts): coded errors for an
 * unreachable server, a missing node-redis and bad options; commands fail
 * fast while disconnected and the client reconnects by itself; client
 * errors are warnings, collapsed, never crashes; and a connection never
 * keeps its process alive when idle or closed, only while a command waits.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { RedisConnection, loadNodeRedis } from '../../src/storage/redis/connection.js';
import { SessionJournalError } from '../../src/errors.js';
import { freePort, sharedRedisUrl, startRedisServer, uniquePrefix } from '../helpers/redis-server.js';
import { openTestConnection, waitFor } from '../helpers/redis-conn.js';
import { helperScript } from '../helpers/temp-store.js';
import { TcpProxy, requestOf } from '../helpers/tcp-proxy.js';

const codeOf = (err: unknown): unknown => (err as SessionJournalError | undefined)?.code;

test('a closed port fails the open at once with REDIS_UNAVAILABLE, naming the server without its password', async (t) => {
  const port = await freePort();
  await loadNodeRedis(); // its first import is not what is timed
  const started = performance.now();
  const err = await t.throwsAsync(RedisConnection.open({ url: `redis://user:s3cret@127.0.0.1:${port}`, prefix: uniquePrefix(), onWarning: () => t.fail('no warning for a failed open') }));
  t.is(codeOf(err), 'REDIS_UNAVAILABLE');
  // node-redis by itself retries a first connection for ever; one attempt takes milliseconds (a loaded machine: seconds).
  t.true(performance.now() - started < 10_000, 'it does not retry');
  t.regex(err!.message, new RegExp(`redis://127\\.0\\.0\\.1:${port}`));
  t.regex(err!.message, /ECONNREFUSED/);
  t.notRegex(err!.message, /s3cret/);
});

test('without node-redis, the error is REDIS_NOT_INSTALLED and says how to install it', async (t) => {
  const missing = Object.assign(new Error("Cannot find package 'redis'"), { code: 'ERR_MODULE_NOT_FOUND' });
  const err = await t.throwsAsync(loadNodeRedis(() => Promise.reject(missing)));
  t.is(codeOf(err), 'REDIS_NOT_INSTALLED');
  t.regex(err!.message, /npm install redis/);
  t.is((err as Error).cause, missing);
  // Anything else the import throws is not disguised.
  const other = new SyntaxError('broken');
  t.is(await t.throwsAsync(loadNodeRedis(() => Promise.reject(other))), other);
});

test('a bad url or prefix is INVALID_OPTION before anything connects', async (t) => {
  for (const [url, prefix, option] of [
    ['not a url', 'p', 'redis.url'],
    ['http://127.0.0.1:6379', 'p', 'redis.url'],
    ['redis://127.0.0.1:1', 'bad prefix', 'redis.prefix'],
  ] as const) {
    const err = await t.throwsAsync(RedisConnection.open({ url, prefix }));
    t.is(codeOf(err), 'INVALID_OPTION', `${url} ${prefix}`);
    t.is((err as SessionJournalError).details.option, option);
  }
});

test('an error reply is REDIS_COMMAND_FAILED with the reply, and surely not executed', async (t) => {
  const { conn } = await openTestConnection(t, await sharedRedisUrl());
  await conn.command(['SET', conn.keys.meta, 'text']);
  const err = await t.throwsAsync(conn.command(['HGET', conn.keys.meta, 'kind']));
  t.is(codeOf(err), 'REDIS_COMMAND_FAILED');
  t.regex(err!.message, /WRONGTYPE/);
  t.false((err as SessionJournalError).details.maybeExecuted);
});

test('while the server is down commands fail at once with REDIS_UNAVAILABLE; the client reconnects by itself; the loss is warned, collapsed, then RECOVERED', async (t) => {
  const server = await startRedisServer(t);
  const reconnects: number[] = [];
  const { conn, warnings } = await openTestConnection(t, server.url, { onReconnect: () => reconnects.push(1) });
  await conn.command(['SET', conn.keys.head, 'x']);
  await server.kill();
  await waitFor('the loss to be seen', () => !conn.isReady);
  const started = performance.now();
  const err = await t.throwsAsync(conn.command(['GET', conn.keys.head]));
  t.is(codeOf(err), 'REDIS_UNAVAILABLE');
  t.false((err as SessionJournalError).details.maybeExecuted, 'refused before it was sent');
  t.true(performance.now() - started < 1000, 'not queued until a reconnection');
  // Some failed reconnections while it is down: warned collapsed (1st, 2nd, 4th... of each message).
  await waitFor('failed reconnections', () => warnings.filter((w) => /ECONNREFUSED/.test(w.message)).length >= 2);
  await server.restart();
  await waitFor('the reconnection', () => conn.isReady);
  t.is(await conn.command(['GET', conn.keys.head]), 'x', 'the AOF kept it');
  t.is(reconnects.length, 1);
  const codes = warnings.map((w) => w.code);
  t.is(codes[0], 'REDIS_DISCONNECTED');
  t.is(codes[codes.length - 1], 'RECOVERED');
  t.true(codes.slice(0, -1).every((c) => c === 'REDIS_DISCONNECTED'));
  t.true(warnings.every((w) => w.file === conn.where));
  t.regex(warnings[warnings.length - 1]!.message, /works again after \d+ failures/);
});

test('a command in flight when the server dies is REDIS_UNAVAILABLE, maybe executed', async (t) => {
  const server = await startRedisServer(t);
  const { conn } = await openTestConnection(t, server.url);
  const waiting = conn.command(['BLPOP', `${conn.keys.head}:none`, '5']);
  await new Promise((resolve) => setImmediate(resolve));
  await server.kill();
  const err = await t.throwsAsync(waiting);
  t.is(codeOf(err), 'REDIS_UNAVAILABLE');
  t.true((err as SessionJournalError).details.maybeExecuted);
});

test('a stopped server (SIGSTOP): a command sent to it fails after commandTimeoutMs, maybe executed; the connection is replaced, and works again once the server goes on', async (t) => {
  const server = await startRedisServer(t);
  const { conn, warnings } = await openTestConnection(t, server.url, { commandTimeoutMs: 1000 });
  server.pause();
  t.teardown(() => server.resume());
  const started = performance.now();
  const err = await t.throwsAsync(conn.command(['SET', conn.keys.head, 'sent to a stopped server']));
  t.is(codeOf(err), 'REDIS_UNAVAILABLE');
  t.true((err as SessionJournalError).details.maybeExecuted, 'it was sent: it may run');
  t.regex(err!.message, /no reply within 1000 ms/);
  t.true(performance.now() - started < 5000, 'bounded by the timeout, not by the server');
  t.false(conn.isReady, 'the connection was dropped');
  t.is(warnings[0]?.code, 'REDIS_DISCONNECTED');
  server.resume();
  await waitFor('the reconnection', () => conn.isReady);
  t.is(await conn.command(['PING']), 'PONG');
});

test('a connection the client lost but the server still holds: retireLostConnections() closes it on the server, and a request still on its way never runs', async (t) => {
  const server = await startRedisServer(t);
  const proxy = await TcpProxy.start(server.port);
  t.teardown(() => proxy.close());
  const { conn } = await openTestConnection(t, proxy.url);
  const key = `${conn.keys.head}:late`;
  const deliverLate = async (value: string, retire: boolean) => {
    const held = proxy.holdRequest(requestOf('SET', value));
    const err = await t.throwsAsync(conn.command(['SET', key, value]));
    t.is(codeOf(err), 'REDIS_UNAVAILABLE');
    t.true((err as SessionJournalError).details.maybeExecuted);
    await waitFor('the reconnection', () => conn.isReady);
    if (retire) await conn.retireLostConnections();
    return (await held).deliver();
  };
  // Without it, the bytes held in the network run when they arrive, after the client gave up on them.
  t.is(await deliverLate('unretired', false), 'ran');
  t.is(await conn.command(['GET', key]), 'unretired');
  t.is(await deliverLate('retired', true), 'closed', 'the server had closed that connection');
  t.is(await conn.command(['GET', key]), 'unretired', 'the late request did not run');
  await conn.retireLostConnections(); // nothing left to close: a no-op
});

test('a command after close is CLOSED; close is idempotent', async (t) => {
  const conn = await RedisConnection.open({ url: await sharedRedisUrl(), prefix: uniquePrefix() });
  await conn.close();
  await conn.close();
  t.is(codeOf(await t.throwsAsync(conn.command(['PING']))), 'CLOSED');
});

/** Runs the lifetime child; resolves with its output once it exits by itself (or fails after 10 s). */
function runChild(url: string, mode: string, onLine?: (line: string) => void): Promise<{ code: number | null; out: string; exitedAt: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [helperScript('redis-lifetime-child.js'), url, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      for (const line of d.toString().split('\n')) if (line) onLine?.(line);
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the ${mode} child did not exit by itself within 10 s (output: ${out}${err})`));
    }, 10_000);
    // 'close', not 'exit': 'exit' can come before the last of stdout is read (seen in CI: "ready" without "down").
    child.once('close', (code) => {
      clearTimeout(timer);
      if (err) out += `stderr: ${err}`;
      resolve({ code, out, exitedAt: performance.now() });
    });
  });
}

test('a process holding an idle connection, or a closed one, exits by itself', async (t) => {
  const url = await sharedRedisUrl();
  const idle = await runChild(url, 'idle');
  t.is(idle.code, 0, idle.out);
  t.is(idle.out, 'ready\n');
  const closed = await runChild(url, 'close');
  t.is(closed.code, 0, closed.out);
  t.is(closed.out, 'closed\n');
});

test('a command in flight keeps the process alive until its reply', async (t) => {
  const result = await runChild(await sharedRedisUrl(), 'inflight');
  t.is(result.code, 0, result.out);
  t.is(result.out, 'replied\n');
});

test('a process whose server went away exits by itself: the reconnection timers do not hold it', async (t) => {
  const server = await startRedisServer(t);
  let down = 0;
  const result = await runChild(server.url, 'down', (line) => {
    if (line === 'ready') void server.kill();
    if (line === 'down') down = performance.now();
  });
  t.is(result.code, 0, result.out);
  t.is(result.out, 'ready\ndown\n');
  t.true(result.exitedAt - down < 5000, 'no backoff timer kept it');
});
