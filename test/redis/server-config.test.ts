/**
 * The server settings check (src/storage/redis/server-config.ts) against
 * servers started with the settings in question.
 */
import test from 'ava';
import { checkServerSettings } from '../../src/storage/redis/server-config.js';
import { SessionJournalError } from '../../src/errors.js';
import type { JournalWarning } from '../../src/engine/warnings.js';
import { startRedisServer } from '../helpers/redis-server.js';
import { openTestConnection } from '../helpers/redis-conn.js';

function collect(): { warnings: JournalWarning[]; warn: (w: JournalWarning) => void } {
  const warnings: JournalWarning[] = [];
  return { warnings, warn: (w) => warnings.push(w) };
}

test('the durable settings pass without a word', async (t) => {
  const server = await startRedisServer(t);
  const { conn } = await openTestConnection(t, server.url);
  const { warnings, warn } = collect();
  const settings = await checkServerSettings(conn, { fsync: true, warn });
  t.deepEqual(settings, { known: true, maxmemoryPolicy: 'noeviction', appendonly: 'yes', appendfsync: 'always' });
  t.deepEqual(warnings, []);
});

test('a server that may evict keys is refused: REDIS_EVICTION_POLICY', async (t) => {
  const server = await startRedisServer(t, { args: ['--maxmemory-policy', 'allkeys-lru'] });
  const { conn } = await openTestConnection(t, server.url);
  const err = await t.throwsAsync(checkServerSettings(conn, { fsync: true, warn: () => t.fail() }));
  t.is((err as SessionJournalError).code, 'REDIS_EVICTION_POLICY');
  t.regex(err!.message, /allkeys-lru/);
  t.regex(err!.message, /noeviction/);
  t.is((err as SessionJournalError).details.maxmemoryPolicy, 'allkeys-lru');
});

test('without appendfsync always a REDIS_NOT_DURABLE warning, unless the store chose fsync: false', async (t) => {
  const server = await startRedisServer(t, { args: ['--appendfsync', 'everysec'] });
  const { conn } = await openTestConnection(t, server.url);
  const { warnings, warn } = collect();
  await checkServerSettings(conn, { fsync: true, warn });
  t.is(warnings.length, 1);
  t.is(warnings[0]!.code, 'REDIS_NOT_DURABLE');
  t.regex(warnings[0]!.message, /appendonly yes, appendfsync everysec/);
  t.is(warnings[0]!.file, conn.where);
  const quiet = collect();
  await checkServerSettings(conn, { fsync: false, warn: quiet.warn });
  t.deepEqual(quiet.warnings, []);
});

test('without appendonly a REDIS_NOT_DURABLE warning too', async (t) => {
  const server = await startRedisServer(t, { args: ['--appendonly', 'no'] });
  const { conn } = await openTestConnection(t, server.url);
  const { warnings, warn } = collect();
  await checkServerSettings(conn, { fsync: true, warn });
  t.deepEqual(warnings.map((w) => w.code), ['REDIS_NOT_DURABLE']);
  t.regex(warnings[0]!.message, /appendonly no/);
});

test('a server that refuses CONFIG is warned REDIS_CONFIG_UNKNOWN once, and accepted', async (t) => {
  const server = await startRedisServer(t, { args: ['--rename-command', 'CONFIG', ''] });
  const { conn } = await openTestConnection(t, server.url);
  const { warnings, warn } = collect();
  const once = new Set<string>();
  t.deepEqual(await checkServerSettings(conn, { fsync: true, warn, warnedUnknown: once }), { known: false });
  await checkServerSettings(conn, { fsync: true, warn, warnedUnknown: once });
  t.deepEqual(warnings.map((w) => w.code), ['REDIS_CONFIG_UNKNOWN']);
  t.regex(warnings[0]!.message, /noeviction/);
});
