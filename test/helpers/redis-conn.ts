/** Connections for the Redis tests: closed, and their store's keys removed, when the test ends. */
import type { ExecutionContext } from 'ava';
import { RedisConnection, type RedisConnectOptions } from '../../src/storage/redis/connection.js';
import type { JournalWarning } from '../../src/engine/warnings.js';
import { uniquePrefix } from './redis-server.js';

export interface TestConnection {
  conn: RedisConnection;
  warnings: JournalWarning[];
}

/** Opens a connection to `url` under a fresh prefix (or `options.prefix`); warnings are collected, not printed. */
export async function openTestConnection(t: ExecutionContext, url: string, options: Partial<RedisConnectOptions> = {}): Promise<TestConnection> {
  const warnings: JournalWarning[] = [];
  const conn = await RedisConnection.open({ url, prefix: options.prefix ?? uniquePrefix(), onWarning: (w) => warnings.push(w), ...options });
  t.teardown(async () => {
    if (conn.isReady) await dropStoreKeys(conn).catch(() => undefined);
    await conn.close();
  });
  return { conn, warnings };
}

/** Deletes every key of the connection's store (SCAN on its prefix). */
export async function dropStoreKeys(conn: RedisConnection): Promise<void> {
  let cursor = '0';
  do {
    const reply = (await conn.command(['SCAN', cursor, 'MATCH', `{${conn.keys.prefix}}:*`, 'COUNT', '1000'])) as [string, string[]];
    cursor = reply[0];
    if (reply[1].length > 0) await conn.command(['DEL', ...reply[1]]);
  } while (cursor !== '0');
}

/** Waits until `check` holds, polling (never a fixed sleep), or fails after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
