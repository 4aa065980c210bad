/**
 * How every command names a store on Redis (src/cli/args.ts, storeLocation):
 * --redis URL with --prefix P, or SESSION_JOURNAL_REDIS and
 * SESSION_JOURNAL_PREFIX; the usage errors (exit 2) for two stores, a
 * missing prefix, a bad URL or prefix; repair refused; an unreachable
 * server (exit 4); and a URL's password never printed, whether it is right
 * or wrong. Run as the real binary against real redis-servers.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { runCli as runCliWithin, withoutStoreEnv } from '../helpers/compaction-helpers.js';
import { tempStoreDir } from '../helpers/temp-store.js';
import { freePort, startRedisServer } from '../helpers/redis-server.js';
import { FIXTURE_T0, appendCommits, PHASE_1, redisFixture } from '../helpers/redis-fixture.js';
import { uniquePrefix } from '../helpers/redis-server.js';

const runCli = (args: string[], env: NodeJS.ProcessEnv = {}) => runCliWithin(args, { timeoutMs: 120_000, env: withoutStoreEnv({ NO_COLOR: '1', ...env }) });
const iso = (ms: number) => new Date(ms).toISOString();
const COMMANDS = ['replay', 'verify', 'stats', 'compact', 'export', 'import'];

test('SESSION_JOURNAL_REDIS and SESSION_JOURNAL_PREFIX name the store when no flag does; --prefix beats the variable', async (t) => {
  const f = await redisFixture(t);
  const byFlags = await runCli(['replay', '--ndjson', ...f.flags]);
  t.is(byFlags.code, 0, byFlags.stderr);
  const byEnv = await runCli(['replay', '--ndjson'], { SESSION_JOURNAL_REDIS: f.url, SESSION_JOURNAL_PREFIX: f.prefix });
  t.is(byEnv.code, 0, byEnv.stderr);
  t.is(byEnv.stdout, byFlags.stdout);
  const prefixFlag = await runCli(['replay', '--ndjson', '--prefix', f.prefix], { SESSION_JOURNAL_REDIS: f.url, SESSION_JOURNAL_PREFIX: 'some-other-store' });
  t.is(prefixFlag.stdout, byFlags.stdout);
  // A flag wins over the other kind's variable: --redis over SESSION_JOURNAL_DIR, --dir over SESSION_JOURNAL_REDIS.
  const dir = tempStoreDir(t);
  const redisOverDir = await runCli(['verify', '--head', ...f.flags], { SESSION_JOURNAL_DIR: dir });
  t.is(redisOverDir.code, 0, redisOverDir.stderr);
  const dirOverRedis = await runCli(['verify', '--head', '--dir', dir], { SESSION_JOURNAL_REDIS: f.url, SESSION_JOURNAL_PREFIX: f.prefix });
  t.is(dirOverRedis.code, 4, 'the directory, which does not exist');
  t.regex(dirOverRedis.stderr, /STORE_NOT_FOUND/);
});

test('usage errors (exit 2, one line and a hint): two stores, a Redis store without a prefix, --prefix with a directory, a bad URL (not echoed) or prefix', async (t) => {
  const dir = tempStoreDir(t);
  const url = 'redis://127.0.0.1:1';
  const cases: Array<{ args: string[]; env?: NodeJS.ProcessEnv; message: RegExp }> = [
    { args: ['--dir', dir, '--redis', url, '--prefix', 'p'], message: /--dir and --redis name two stores: give one of them/ },
    { args: [], env: { SESSION_JOURNAL_DIR: dir, SESSION_JOURNAL_REDIS: url }, message: /SESSION_JOURNAL_DIR and SESSION_JOURNAL_REDIS are both set: pass --dir or --redis to say which store/ },
    { args: ['--redis', url], message: /--redis needs the store's prefix: pass --prefix P or set SESSION_JOURNAL_PREFIX/ },
    { args: [], env: { SESSION_JOURNAL_REDIS: url }, message: /SESSION_JOURNAL_REDIS needs the store's prefix/ },
    { args: ['--dir', dir, '--prefix', 'p'], message: /--prefix goes with --redis \(a store on Redis\), not with a directory/ },
    { args: ['--redis', 'http://user:hunter2-secret@example.com', '--prefix', 'p'], message: /--redis takes a URL, redis:\/\/\[user:password@\]host\[:port\]\[\/db\] or rediss:\/\/\.\.\. for TLS \(the value given is not one; it is not shown/ },
    { args: ['--redis', url, '--prefix', 'two words'], message: /--prefix must be 1 to 128 characters of A-Z a-z 0-9 \. _ : -, got "two words"/ },
    { args: [], message: /no store given: pass --dir DIR or --redis URL --prefix P \(or set SESSION_JOURNAL_DIR, or SESSION_JOURNAL_REDIS and SESSION_JOURNAL_PREFIX\)/ },
  ];
  // Every case for two commands, the first ones for all (they share one resolver).
  const runs = COMMANDS.flatMap((command) => (command === 'stats' || command === 'replay' ? cases : cases.slice(0, 3)).map((c) => ({ command, c })));
  for (const { command, c } of runs) {
    {
      const run = await runCli([command, ...c.args, ...(command === 'import' ? ['file.json'] : [])], c.env);
      const what = `${command} ${c.args.join(' ')} ${JSON.stringify(c.env ?? {})}`;
      t.is(run.code, 2, `${what}: ${run.stderr}`);
      t.regex(run.stderr, new RegExp(`^session-journal ${command}: ${c.message.source}.*\\nhint: session-journal ${command} --help\\n$`), what);
      t.false(run.stderr.includes('hunter2'), 'a URL that may hold a password is never echoed');
    }
  }
});

test('repair refuses a store on Redis with a usage error that says why (exit 2), with or without a prefix, from flags or variables', async (t) => {
  for (const [args, env] of [
    [['--redis', 'redis://127.0.0.1:1'], {}],
    [['--redis', 'redis://127.0.0.1:1', '--prefix', 'p', '--dry-run'], {}],
    [[], { SESSION_JOURNAL_REDIS: 'redis://127.0.0.1:1', SESSION_JOURNAL_PREFIX: 'p' }],
  ] as Array<[string[], NodeJS.ProcessEnv]>) {
    const run = await runCli(['repair', ...args], env);
    t.is(run.code, 2, run.stderr);
    t.regex(run.stderr, /^session-journal repair: repair does not apply to a store on Redis \(.*\): it rewrites segment files, and a store on Redis has none: its commits are appended whole by one script \(nothing is torn\).*run verify to find damage\nhint: session-journal repair --help\n$/);
  }
});

/** A v1 file of one session, for import. */
function oneSessionFile(t: Parameters<typeof tempStoreDir>[0]): string {
  const file = path.join(path.dirname(tempStoreDir(t)), 'one.json');
  fs.writeFileSync(file, JSON.stringify({ version: 1, sessions: [{ id: 's1', createdAt: iso(FIXTURE_T0), lastAccessedAt: iso(FIXTURE_T0), turns: [] }] }));
  return file;
}

test('a server that cannot be reached: REDIS_UNAVAILABLE (exit 4) with a hint, for every command', async (t) => {
  const port = await freePort();
  const file = oneSessionFile(t);
  for (const command of [...COMMANDS, 'codex-mcp-server']) {
    const run = await runCli([command, '--redis', `redis://127.0.0.1:${port}`, '--prefix', 'nowhere', ...(command === 'import' ? [file] : [])]);
    t.is(run.code, 4, `${command}: ${run.stderr}`);
    t.regex(run.stderr, new RegExp(`^session-journal ${command}: REDIS_UNAVAILABLE: cannot connect to redis://127\\.0\\.0\\.1:${port} \\{nowhere\\}.*\\nhint: check --redis \\(or SESSION_JOURNAL_REDIS\\): the host, the port, the password`), command);
  }
});

test("a URL's password is never printed: not by any command on a server that requires it, nor when it is wrong", async (t) => {
  const password = 'sw0rdfish-pw-7d2f';
  const server = await startRedisServer(t);
  // Set once it runs: the helper checks it is up without a password.
  const { createClient } = await import('redis');
  const admin = createClient({ url: server.url, socket: { connectTimeout: 60_000 } });
  admin.on('error', () => undefined);
  await admin.connect();
  await admin.sendCommand(['CONFIG', 'SET', 'requirepass', password]);
  await admin.close();
  const url = `redis://:${password}@127.0.0.1:${server.port}`;
  const prefix = uniquePrefix('pw');
  await appendCommits(url, prefix, PHASE_1);
  const flags = ['--redis', url, '--prefix', prefix];
  const runs = [
    await runCli(['replay', ...flags]),
    await runCli(['replay', '--state', '--at', iso(FIXTURE_T0 + 3_600_000), ...flags]),
    await runCli(['verify', ...flags]),
    await runCli(['verify', '--head', ...flags]),
    await runCli(['stats', ...flags]),
    await runCli(['stats', '--json', ...flags]),
    await runCli(['export', ...flags]),
    await runCli(['compact', '--json', '--now', iso(FIXTURE_T0 + 3_600_000), ...flags]),
    await runCli(['replay', '--ndjson'], { SESSION_JOURNAL_REDIS: url, SESSION_JOURNAL_PREFIX: prefix }),
  ];
  for (const run of runs) {
    t.is(run.code, 0, run.stderr);
    t.false(run.stdout.includes(password) || run.stderr.includes(password), `${run.stdout}\n${run.stderr}`);
  }
  t.regex(runs[2]!.stdout, new RegExp(`^store {5}redis://127\\.0\\.0\\.1:${server.port} \\{${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\}$`, 'm'));

  const wrong = 'not-the-pw-91c3';
  const file = oneSessionFile(t);
  for (const command of COMMANDS) {
    const run = await runCli([command, '--redis', `redis://default:${wrong}@127.0.0.1:${server.port}`, '--prefix', prefix, ...(command === 'import' ? [file] : [])]);
    t.is(run.code, 4, `${command}: ${run.stderr}`);
    t.regex(run.stderr, /REDIS_UNAVAILABLE/);
    t.false(run.stderr.includes(wrong) || run.stdout.includes(wrong), run.stderr);
  }
});

test('every --help names --redis and --prefix and their variables; the command list says which commands take them', async (t) => {
  for (const command of COMMANDS) {
    const help = await runCli([command, '--help']);
    t.is(help.code, 0);
    t.regex(help.stdout, /^ {2}--redis URL +a store on Redis: redis:\/\/\[user:password@\]host:port\n +\(default: \$SESSION_JOURNAL_REDIS\); messages show it\n +without the password$/m, command);
    t.regex(help.stdout, /^ {2}--prefix P +its key prefix \(default: \$SESSION_JOURNAL_PREFIX\)$/m, command);
    t.regex(help.stdout, new RegExp(`^ {7}session-journal ${command} --redis URL --prefix P`, 'm'), command);
  }
  const codex = await runCli(['codex-mcp-server', '--help']);
  t.regex(codex.stdout, /--redis URL +keep them on Redis instead/);
  t.regex(codex.stdout, /--prefix P +the store's key prefix on Redis \(default:\n +\$SESSION_JOURNAL_PREFIX, else session-journal:codex\)/);
  t.regex((await runCli(['repair', '--help'])).stdout, /repair is for a store directory only\. A store on Redis has no files/);
  t.regex((await runCli(['--help'])).stdout, /or --redis URL --prefix P for a store on Redis\n\(SESSION_JOURNAL_REDIS, SESSION_JOURNAL_PREFIX; every command but repair\)/);
});
