/**
 * `verify`, `stats`, `compact`, `export` and `import` with `--redis URL
 * --prefix P`, run as the real binary against a real redis-server, on the
 * scripted history of test/helpers/redis-fixture.ts (goldens under
 * test/golden/redis/, the random prefix replaced by P) and on damage made
 * with a raw client at the keys docs/FORMAT.md names.
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { KeyValueStore, SessionStore } from '../../src/index.js';
import { matchesGoldenJson } from '../helpers/golden.js';
import { runCli as runCliWithin, withoutStoreEnv } from '../helpers/compaction-helpers.js';
import { copyFixtureStore } from '../helpers/fixture-store.js';
import { tempStoreDir } from '../helpers/temp-store.js';
import { FIXTURE_T0, freshRedisStore, redisFixture, type RedisFixture } from '../helpers/redis-fixture.js';

const GOLDEN_DIR = new URL('../../../test/golden/redis/', import.meta.url).pathname;
const HOUR = 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString();
const lines = (text: string) => text.split('\n').filter((l) => l !== '');

/** The binary, with a generous kill timeout: these tests spawn many processes on a possibly busy machine. */
const runCli = (args: string[]) => runCliWithin(args, { timeoutMs: 120_000, env: withoutStoreEnv({ NO_COLOR: '1' }) });
const cli = (f: RedisFixture, command: string, ...args: string[]) => runCli([command, ...f.flags, ...args]);

/** JSON with the random prefix as P, compared with a golden. */
const golden = (t: ExecutionContext, f: RedisFixture, name: string, stdout: string): void => matchesGoldenJson(t, path.join(GOLDEN_DIR, name), JSON.parse(f.normalize(stdout)));

/** A raw client for damage, closed afterwards. */
async function withRaw<T>(f: RedisFixture, fn: (send: (args: string[]) => Promise<unknown>) => Promise<T>): Promise<T> {
  const { createClient } = await import('redis');
  const client = createClient({ url: f.url, socket: { connectTimeout: 60_000 } });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn((args) => client.sendCommand(args) as Promise<unknown>);
  } finally {
    await client.close();
  }
}

const key = (f: RedisFixture, name: string) => `{${f.prefix}}:${name}`;

/**
 * Writes the stream again, each entry through `edit` (null: left out).
 * XADD takes only ids above the stream's last, so an entry in the middle
 * cannot be changed in place: the stream is rebuilt, as a restore would.
 */
async function rewriteStream(f: RedisFixture, edit: (id: string, line: string) => string | null): Promise<void> {
  await withRaw(f, async (send) => {
    const entries = (await send(['XRANGE', key(f, 'log'), '-', '+'])) as Array<[string, string[]]>;
    await send(['DEL', key(f, 'log')]);
    for (const [id, fields] of entries) {
      const line = edit(id, fields[fields.indexOf('r') + 1]!);
      if (line !== null) await send(['XADD', key(f, 'log'), id, 'r', line]);
    }
  });
}

interface Report {
  ok: boolean;
  problems: Array<{ code: string; file: string | null; line: number | null; offset: number | null; entry?: string; message: string }>;
  notes: Array<{ code: string }>;
  records: number;
  snapshots: number;
  head: { seq: number; h: string };
  expectedHead?: { found: boolean; matches: boolean; chainIntact: boolean };
}

// ---- verify -------------------------------------------------------------------

test('verify on Redis: a clean store is OK (exit 0), the report as for a directory (golden), the human view names the store without its password', async (t) => {
  const f = await redisFixture(t);
  const json = await cli(f, 'verify', '--json');
  t.is(json.code, 0, json.stderr);
  golden(t, f, 'verify-clean.json', json.stdout);
  const report = JSON.parse(json.stdout) as Report;
  t.deepEqual([report.records, report.snapshots, report.problems], [8, 1, []]);
  t.deepEqual(
    report.notes.map((n) => n.code),
    ['CHAIN_FROM_SNAPSHOT'],
  );
  const human = await cli(f, 'verify');
  t.is(human.code, 0);
  const shown = lines(f.normalize(human.stdout));
  t.is(shown[0], `store     ${f.url} {P}`);
  t.is(shown[1], 'stream    {P}:log, 1 snapshot');
  t.is(shown.at(-1), 'OK: every record, the hash chain and the snapshots agree');
});

test('verify on Redis finds an edited record, a deleted one and an unreadable entry, each at its entry (exit 1)', async (t) => {
  const f = await redisFixture(t);
  // Not the first record after the snapshot: its hash is the snapshot's only link, so an edit there reads as a header mismatch.
  await rewriteStream(f, (id, line) => (id === '13-0' ? line.replace('"gamma"', '"gammb"') : id === '9-0' ? null : line));
  await withRaw(f, (send) => send(['XADD', key(f, 'log'), '14-1', 'r', 'not json']));
  const run = await cli(f, 'verify', '--json');
  t.is(run.code, 1, run.stderr);
  golden(t, f, 'verify-damaged.json', run.stdout);
  const problems = (JSON.parse(f.normalize(run.stdout)) as Report).problems.map((p) => [p.code, p.file, p.entry, p.line]);
  t.deepEqual(problems, [
    ['RECORD_MISSING', '{P}:log', '10-0', null],
    ['RECORD_EDITED', '{P}:log', '13-0', null],
    ['UNPARSABLE_LINE', '{P}:log', '14-1', null],
  ]);
  const human = await cli(f, 'verify');
  t.is(human.code, 1);
  t.regex(f.normalize(human.stdout), /^\{P\}:log entry 13-0  RECORD_EDITED  seq 13 was edited/m);
  t.regex(human.stdout, /FAILED: 3 problems/);
});

test('verify on Redis: a damaged snapshot chunk and a head that is not the last record are problems (exit 1)', async (t) => {
  const f = await redisFixture(t);
  await withRaw(f, async (send) => {
    const gen = ((await send(['HGET', key(f, 'snap'), 'gen'])) as string) ?? '';
    const chunk = key(f, `snap:${gen}:0`);
    const text = (await send(['GET', chunk])) as string;
    await send(['SET', chunk, text.replace('first question', 'first quest1on')]);
    await send(['SET', key(f, 'head'), '14 AAAAAAAAAAAAAAAAAAAAAA']);
  });
  const run = await cli(f, 'verify', '--json');
  t.is(run.code, 1, run.stderr);
  const report = JSON.parse(f.normalize(run.stdout)) as Report;
  t.deepEqual(
    report.problems.map((p) => [p.code, p.file]),
    [
      ['SNAPSHOT_UNREADABLE', '{P}:snap'],
      ['HEAD_MISMATCH', '{P}:head'],
    ],
  );
  t.regex(report.problems[0]!.message, /sha256/);
});

test('verify on Redis: a snapshot whose head is not what the stream after it chains from (the manifest changed) is a problem at the snapshot (exit 1)', async (t) => {
  const f = await redisFixture(t);
  await withRaw(f, (send) => send(['HSET', key(f, 'snap'), 'h', 'AAAAAAAAAAAAAAAAAAAAAA']));
  const run = await cli(f, 'verify', '--json');
  t.is(run.code, 1, run.stderr);
  const report = JSON.parse(f.normalize(run.stdout)) as Report;
  t.deepEqual(
    report.problems.map((p) => [p.code, p.file]),
    [
      ['SNAPSHOT_HEADER_MISMATCH', '{P}:snap'],
      ['SNAPSHOT_UNREADABLE', '{P}:snap'],
    ],
  );
  t.regex(report.problems[0]!.message, /^the snapshot's head \(seq 6, h AAAAAAAAAAAA…\) is not what the first record after it \(\{P\}:log entry 7-0, seq 7\) chains from/);
  t.regex(report.problems[1]!.message, /the header folds seq 6 \(h "[^"]+"\), the manifest seq 6 \(h "AAAAAAAAAAAAAAAAAAAAAA"\)/);
});

test('verify --head and --expect-head on Redis: the head as writers see it; a record folded into the snapshot is unavailable, the snapshot head itself is found', async (t) => {
  const f = await redisFixture(t);
  const head = await cli(f, 'verify', '--head');
  t.is(head.code, 0, head.stderr);
  t.regex(head.stdout, /^14:[A-Za-z0-9_-]{22}\n$/);
  const report = JSON.parse((await cli(f, 'verify', '--json')).stdout) as Report;
  t.is(head.stdout.trim(), `${report.head.seq}:${report.head.h}`);

  const proven = await cli(f, 'verify', '--json', '--expect-head', head.stdout.trim());
  t.is(proven.code, 0, proven.stdout);
  t.like(JSON.parse(proven.stdout) as Report, { expectedHead: { found: true, matches: true, chainIntact: true } });

  const snapshotHead = await withRaw(f, async (send) => `${String(await send(['HGET', key(f, 'snap'), 'seq']))}:${String(await send(['HGET', key(f, 'snap'), 'h']))}`);
  const atSnapshot = await cli(f, 'verify', '--json', '--expect-head', snapshotHead);
  t.is(atSnapshot.code, 0, atSnapshot.stdout);
  t.like(JSON.parse(atSnapshot.stdout) as Report, { expectedHead: { found: true, matches: true } });

  const folded = await cli(f, 'verify', '--json', '--expect-head', '3:AAAAAAAAAAAAAAAAAAAAAA');
  t.is(folded.code, 1);
  t.deepEqual(
    (JSON.parse(folded.stdout) as Report).problems.map((p) => p.code),
    ['EXPECTED_HEAD_UNAVAILABLE'],
  );
  const changed = await cli(f, 'verify', '--json', '--expect-head', '9:AAAAAAAAAAAAAAAAAAAAAA');
  t.deepEqual(
    (JSON.parse(changed.stdout) as Report).problems.map((p) => p.code),
    ['EXPECTED_HEAD_MISMATCH'],
  );
});

// ---- stats --------------------------------------------------------------------

test('stats on Redis: sessions, the stream, the snapshot and its manifest, writers, head (golden without the server-dependent memory figure)', async (t) => {
  const f = await redisFixture(t);
  const now = iso(FIXTURE_T0 + 6 * HOUR + 60_000);
  const json = await cli(f, 'stats', '--json', '--now', now, '--ttl', '2h');
  t.is(json.code, 0, json.stderr);
  const stats = JSON.parse(f.normalize(json.stdout)) as Record<string, unknown> & { journalBytes: number; lastCompaction: string | null; redis: { streamMemoryBytes: number | null; where: string; manifest: { at?: number } | null } };
  t.true(stats.journalBytes > 0);
  t.is(stats.redis.streamMemoryBytes, stats.journalBytes);
  t.is(stats.redis.where, `${f.url} {P}`);
  t.regex(stats.lastCompaction ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, "when the manifest was installed, by the server's clock");
  t.is(stats.lastCompaction, new Date(stats.redis.manifest!.at!).toISOString());
  const serverTime = { lastCompaction: 'SERVER TIME', redis: { ...stats.redis, manifest: { ...stats.redis.manifest, at: 'SERVER TIME' } } };
  golden(t, f, 'stats.json', JSON.stringify({ ...stats, ...serverTime, journalBytes: 'MEMORY', redis: { ...serverTime.redis, streamMemoryBytes: 'MEMORY', where: 'URL {P}' } }));

  const human = await cli(f, 'stats', '--now', now, '--ttl', '2h');
  t.is(human.code, 0, human.stderr);
  const rows = lines(f.normalize(human.stdout));
  t.deepEqual(
    rows.map((r) => r.split(/ {2,}/)[0]),
    ['store', 'sessions', 'stream', 'snapshot', 'last compaction', 'kept aside', 'since snapshot', 'head', 'writers', ''],
  );
  t.regex(human.stdout, /^sessions +1 live, 1 expired \(ttl 7200s, at 2026-03-09T15:01:00\.000Z\)$/m);
  t.regex(human.stdout, /^stream +8 entries, [\d.]+ (B|KiB) on the server$/m);
  t.regex(f.normalize(human.stdout), /^last compaction +\d{4}-\d\d-\d\dT[\d:.]+Z: generation 1, folded up to seq 6$/m);
  t.regex(human.stdout, /^writers +4201@alpha {2}3 records, last seen 2026-03-09T14:00:00\.000Z$/m);
});

// ---- compact ------------------------------------------------------------------

test('compact on Redis: folds, drops expired sessions, trims the stream (exit 0); then nothing to do; replay and verify agree afterwards', async (t) => {
  const f = await redisFixture(t);
  // Retention counts from the store's newest activity (alpha's reset at 14:00) at the latest: gamma, idle since 13:00, expires.
  const run = await cli(f, 'compact', '--json', '--now', iso(FIXTURE_T0 + 5 * HOUR + 30 * 60_000), '--ttl', '30m');
  t.is(run.code, 0, run.stderr);
  const result = JSON.parse(f.normalize(run.stdout)) as { status: string; removed: Record<string, number>; kept: number; snapshot: string; segmentsArchived: number };
  t.like(result, { status: 'compacted', removed: { expired: 1 }, kept: 1, snapshot: '{P}:snap generation 2', segmentsArchived: 0 });
  // What is left of the stream: the retention record journaled by the compaction.
  const after = await cli(f, 'replay', '--ndjson');
  t.is(after.code, 0, after.stderr);
  t.deepEqual(
    lines(after.stdout).map((l) => JSON.parse(l) as { type: string; session: string; payload: { reason: string } }).map((e) => [e.type, e.session, e.payload.reason]),
    [['session.delete', 'gamma', 'expired']],
  );
  t.regex(f.normalize(after.stderr), /note: the history starts after seq 14: earlier records were folded into the snapshot \{P\}:snap/);
  // The next one folds that record (it follows the snapshot, as a directory's follow it in the next segment); then there is nothing to do.
  for (const status of ['compacted', 'nothing-to-do']) {
    const again = await cli(f, 'compact', '--json', '--now', iso(FIXTURE_T0 + 5 * HOUR + 30 * 60_000), '--ttl', '30m');
    t.is(again.code, 0, again.stderr);
    t.like(JSON.parse(again.stdout), { status, removed: {} });
  }
  const verify = await cli(f, 'verify', '--json');
  t.is(verify.code, 0, verify.stdout);
  const state = await cli(f, 'replay', '--state', '--at', iso(FIXTURE_T0 + 6 * HOUR));
  t.deepEqual((JSON.parse(state.stdout) as { sessions: Array<{ id: string }> }).sessions.map((s) => s.id), ['alpha']);
  // Quiet on success without --json.
  const quiet = await cli(f, 'compact', '--now', iso(FIXTURE_T0 + 5 * HOUR + 30 * 60_000));
  t.deepEqual([quiet.code, quiet.stdout, quiet.stderr], [0, '', '']);
});

test('compact on Redis: the archive options are usage errors (exit 2); another kind is refused (exit 4); a clock ahead of the server refuses (exit 5)', async (t) => {
  const f = await redisFixture(t);
  for (const flags of [['--no-archive'], ['--archive-max-age', '7d'], ['--archive-max-files', '3']]) {
    const run = await cli(f, 'compact', ...flags);
    t.is(run.code, 2, run.stderr);
    t.regex(run.stderr, new RegExp(`^session-journal compact: ${flags[0]} does not apply to a store on Redis: .*\\nhint: session-journal compact --help\\n$`));
  }
  const kind = await cli(f, 'compact', '--kind', 'kv', '--now', iso(FIXTURE_T0 + 6 * HOUR));
  t.is(kind.code, 4, kind.stderr);
  t.regex(f.normalize(kind.stderr), /^session-journal compact: STORE_KIND_MISMATCH: .*\{P\}.* is a session store, not a kv store\nhint: a session store is compacted with --kind sessions \(the default\)\n$/);
  const ahead = await cli(f, 'compact', '--now', '2099-01-01T00:00:00Z');
  t.is(ahead.code, 5, ahead.stderr);
  t.regex(ahead.stderr, /CLOCK_SKEW: .* ahead of the Redis server of /);
  // Nothing changed by any of them.
  t.is((await cli(f, 'verify', '--head')).stdout.split(':')[0], '14');
});

test('every command on a prefix that holds no store: NOT_A_STORE (exit 4) with a hint about --prefix, and nothing is created', async (t) => {
  const f = await freshRedisStore(t);
  for (const command of [['replay'], ['replay', '--state'], ['verify'], ['verify', '--head'], ['stats'], ['export'], ['compact']]) {
    const run = await cli(f, command[0]!, ...command.slice(1));
    t.is(run.code, 4, `${command.join(' ')}: ${run.stderr}`);
    t.regex(f.normalize(run.stderr), /NOT_A_STORE: redis:\/\/.* \{P\} is not a store: none of its keys .* exists\nhint: no store lives under that prefix on that server: check --prefix/, command.join(' '));
  }
  t.deepEqual(await withRaw(f, (send) => send(['KEYS', `{${f.prefix}}:*`])), []);
});

// ---- export and import ----------------------------------------------------------

test('export on Redis prints the v1 document of the current sessions (golden); import --redis creates a store from it, idempotently', async (t) => {
  const f = await redisFixture(t);
  const exported = await cli(f, 'export');
  t.is(exported.code, 0, exported.stderr);
  t.is(exported.stderr, '');
  golden(t, f, 'export.json', exported.stdout);

  const file = path.join(path.dirname(tempStoreDir(t)), 'sessions.json');
  fs.writeFileSync(file, exported.stdout);
  const target = await freshRedisStore(t);
  const imported = await cli(target, 'import', file);
  t.is(imported.code, 0, imported.stderr);
  t.is(imported.stdout, `imported 2 sessions from ${file} (v1): 0 already present, 0 skipped, 2 in the file\n`);
  const again = await cli(target, 'import', '--json', file);
  t.is(again.code, 0);
  t.like(JSON.parse(again.stdout), { imported: 0, alreadyPresent: 2 });
  const reexported = await cli(target, 'export');
  t.is(reexported.stdout, exported.stdout, 'the same document back');
  // The imported store is a session store like any: verify is clean, kind recorded.
  t.is((await cli(target, 'verify')).code, 0);
  t.is(await withRaw(target, (send) => send(['HGET', key(target, 'meta'), 'kind'])), 'session');
});

test('moving a store directory to Redis: export --dir | import --redis gives the same sessions (docs/SCALING.md)', async (t) => {
  const dir = copyFixtureStore(t, 'audit-basic', 'stores');
  const fromDir = await runCli(['export', '--dir', dir]);
  t.is(fromDir.code, 0, fromDir.stderr);
  const file = path.join(path.dirname(tempStoreDir(t)), 'moved.json');
  fs.writeFileSync(file, fromDir.stdout);
  const f = await freshRedisStore(t);
  const imported = await cli(f, 'import', file);
  t.is(imported.code, 0, imported.stderr);
  const fromRedis = await cli(f, 'export');
  t.is(fromRedis.stdout, fromDir.stdout);
  // And the sessions are there for a store on Redis.
  const store = await SessionStore.open({ redis: f.location, ttlMs: 1e15, autoCompact: false, onWarning: () => undefined });
  t.teardown(() => store.close());
  t.is(store.listSessions().length, (JSON.parse(fromDir.stdout) as { sessions: unknown[] }).sessions.length);
});

test('export and import refuse a Redis store of another kind (STORE_KIND_MISMATCH, exit 4), importing nothing', async (t) => {
  const f = await freshRedisStore(t);
  const kv = await KeyValueStore.open({ redis: f.location, onWarning: () => undefined });
  kv.set('k', 'v');
  await kv.close();
  const exported = await cli(f, 'export');
  t.is(exported.code, 4, exported.stderr);
  t.regex(exported.stderr, /STORE_KIND_MISMATCH: .* is a kv store, not a session store\nhint: a KeyValueStore is compacted with --kind kv/);
  const file = path.join(path.dirname(tempStoreDir(t)), 'one.json');
  fs.writeFileSync(file, JSON.stringify({ version: 1, sessions: [{ id: 's1', createdAt: iso(FIXTURE_T0), lastAccessedAt: iso(FIXTURE_T0), turns: [] }] }));
  const imported = await cli(f, 'import', file);
  t.is(imported.code, 4, imported.stderr);
  t.regex(imported.stderr, /STORE_KIND_MISMATCH/);
  t.is(await withRaw(f, (send) => send(['XLEN', key(f, 'log')])), 1, 'only the kv record');
});
