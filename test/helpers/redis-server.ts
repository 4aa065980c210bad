/**
 * A private redis-server for tests (the Debian package; .ci/test-tools.sh
 * installs it): bench/peers/redis-server.ts starts it (one copy of that code
 * for the tests and the benchmarks); this adds what the tests need on top. A
 * missing redis-server fails the test with the reason: these tests never skip.
 *
 * sharedRedisUrl() gives every test of a process one server: CI's (SJ_REDIS_URL,
 * started by .ci/run) or one started here at first use. Tests on a shared
 * server keep apart by prefix (uniquePrefix).
 */
import fs from 'node:fs';
import type { ExecutionContext } from 'ava';
import { RedisServer, type RedisServerOptions } from '../../bench/peers/redis-server.js';

export { RedisServer, freePort, type RedisServerOptions } from '../../bench/peers/redis-server.js';

/** A private server for one test, stopped (and its directory removed) when the test ends. */
export async function startRedisServer(t: ExecutionContext, options: RedisServerOptions = {}): Promise<RedisServer> {
  const server = await RedisServer.start(options);
  t.teardown(() => server.stop());
  return server;
}

let shared: Promise<string> | undefined;

/** The server every test of this process shares: SJ_REDIS_URL (CI), else one started at first use and killed at exit. */
export function sharedRedisUrl(): Promise<string> {
  const fromEnv = process.env.SJ_REDIS_URL;
  if (fromEnv) return Promise.resolve(fromEnv);
  shared ??= RedisServer.start().then((server) => {
    process.on('exit', () => fs.rmSync(server.dir, { recursive: true, force: true }));
    return server.url;
  });
  return shared;
}

let prefixes = 0;

/** A prefix no other test (of any process, on a shared server) uses. */
export function uniquePrefix(name = 't'): string {
  return `sj-test:${name}:${process.pid}:${++prefixes}:${Math.random().toString(36).slice(2, 8)}`;
}
