/**
 * `session-journal replay --redis URL --prefix P`, run as the real binary
 * against a real redis-server (test/helpers/redis-server.ts), on the
 * scripted history of test/helpers/redis-fixture.ts: a compaction between
 * two phases, so the history is what the stream holds since it. Outputs are
 * compared with goldens under test/golden/redis/ (UPDATE_GOLDEN=1 rewrites
 * them), the random prefix replaced by P; --follow and --state with records
 * written by real stores on Redis.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { SessionStore, compactSessions } from '../../src/index.js';
import { CLI_MAIN, runCli, waitFor, withoutStoreEnv } from '../helpers/compaction-helpers.js';
import { COMPACTED_AT, FIXTURE_T0, freshRedisStore, redisFixture, type RedisFixture } from '../helpers/redis-fixture.js';
import { startRedisServer } from '../helpers/redis-server.js';
import { waitFor as waitForRedis } from '../helpers/redis-conn.js';

const GOLDEN_DIR = new URL('../../../test/golden/redis/', import.meta.url).pathname;
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const HOUR = 3_600_000;
const NO_TTL = 1000 * 24 * HOUR * 365;

function golden(t: ExecutionContext, name: string, actual: string): void {
  const file = path.join(GOLDEN_DIR, name);
  if (UPDATE) {
    fs.mkdirSync(GOLDEN_DIR, { recursive: true });
    fs.writeFileSync(file, actual);
  }
  t.is(actual, fs.readFileSync(file, 'utf8'), `golden ${name}`);
}

const env = (extra: NodeJS.ProcessEnv = {}) => withoutStoreEnv({ NO_COLOR: '1', ...extra });
/** The binary, with a generous kill timeout: the machine may be busy. */
const replay = (f: RedisFixture, ...args: string[]) => runCli(['replay', ...f.flags, ...args], { env: env(), timeoutMs: 120_000 });
const lines = (text: string) => text.split('\n').filter((l) => l !== '');
const iso = (ms: number) => new Date(ms).toISOString();
const NOTE = /^session-journal replay: note: the history starts after seq 6: earlier records were folded into the snapshot \{P\}:snap by a compaction/;

test('replay on Redis prints every record since the last compaction, in the human view and as NDJSON (goldens), with a note that the history starts after the snapshot', async (t) => {
  const f = await redisFixture(t);
  const human = await replay(f);
  t.is(human.code, 0, human.stderr);
  golden(t, 'replay.txt', human.stdout);
  t.deepEqual(lines(f.normalize(human.stderr)).map((l) => NOTE.test(l)), [true], human.stderr);
  const ndjson = await replay(f, '--ndjson');
  t.is(ndjson.code, 0, ndjson.stderr);
  golden(t, 'replay.ndjson', ndjson.stdout);
  const events = lines(ndjson.stdout).map((l) => JSON.parse(l) as { seq: number; writer: string; type: string; session: string | null });
  // Seqs 7-14 are in the stream; the turn spread over three lines (seq 10-12) is one event, numbered by its last line.
  t.deepEqual(
    events.map((e) => e.seq),
    [7, 8, 9, 12, 13, 14],
  );
  t.deepEqual([...new Set(events.map((e) => e.writer))], ['4201@alpha', '4202@beta']);
});

test('the filters on Redis print exactly the matching events, as for a directory', async (t) => {
  const f = await redisFixture(t);
  const all = lines((await replay(f, '--ndjson')).stdout).map((l) => JSON.parse(l) as { ts: string; writer: string; type: string; session: string | null });
  const bySession = await replay(f, '--ndjson', '--session', 'gamma');
  t.is(bySession.code, 0, bySession.stderr);
  t.deepEqual(lines(bySession.stdout).map((l) => JSON.parse(l)), all.filter((e) => e.session === 'gamma'));
  const turns = await replay(f, '--type', 'turn');
  t.is(turns.code, 0);
  golden(t, 'type-turn.txt', turns.stdout);
  const beta = await replay(f, '--ndjson', '--writer', '4202');
  t.deepEqual(lines(beta.stdout).map((l) => JSON.parse(l)), all.filter((e) => e.writer === '4202@beta'));
  const window = await replay(f, '--ndjson', '--since', iso(FIXTURE_T0 + 2 * HOUR + 1000), '--until', iso(FIXTURE_T0 + 3 * HOUR));
  t.deepEqual(
    lines(window.stdout).map((l) => (JSON.parse(l) as { type: string }).type),
    ['session.create', 'session.delete', 'session.turn'],
  );
});

test('--state --at on Redis: from the snapshot and the records up to the instant; before the snapshot HISTORY_PRUNED (exit 4) with the earliest instant', async (t) => {
  const f = await redisFixture(t);
  const end = await replay(f, '--state', '--at', iso(FIXTURE_T0 + 6 * HOUR));
  t.is(end.code, 0, end.stderr);
  golden(t, 'state-end.json', end.stdout);
  t.regex(f.normalize(end.stderr), /note: the history up to seq 6 was compacted; the state at 2026-03-09T15:00:00\.000Z is rebuilt from \{P\}:snap \(generation \d+, seq 6\) and the records after it/);

  // Between the compaction and the deletion of beta: beta is still there, gamma not yet.
  const between = await replay(f, '--state', '--at', iso(FIXTURE_T0 + 2 * HOUR));
  t.is(between.code, 0, between.stderr);
  golden(t, 'state-after-compaction.json', between.stdout);
  const ids = (JSON.parse(between.stdout) as { sessions: Array<{ id: string }> }).sessions.map((s) => s.id);
  t.deepEqual(ids, ['alpha', 'beta']);
  const narrowed = await replay(f, '--state', '--at', iso(FIXTURE_T0 + 2 * HOUR), '--session', 'beta');
  t.deepEqual((JSON.parse(narrowed.stdout) as { sessions: Array<{ id: string }> }).sessions.map((s) => s.id), ['beta']);

  // Before the compaction: the records it folded were trimmed. The first record after it dates the snapshot.
  const early = await replay(f, '--state', '--at', iso(FIXTURE_T0 + 30_000));
  t.is(early.code, 4);
  t.is(early.stdout, '');
  const err = lines(f.normalize(early.stderr));
  t.is(err.length, 2, early.stderr);
  t.regex(err[0]!, /^session-journal replay: HISTORY_PRUNED: the history before 2026-03-09T09:00:30\.000Z was compacted away: the oldest base left is \{P\}:snap \(generation \d+, seq 6, taken before 2026-03-09T11:00:00\.000Z\)/);
  t.is(err[1], 'hint: pass --at 2026-03-09T11:00:00.000Z or later');
});

test('--state --at on a Redis store never compacted folds the whole stream', async (t) => {
  const f = await freshRedisStore(t);
  const clock = { now: FIXTURE_T0 };
  const store = await SessionStore.open({ redis: f.location, clock: () => clock.now, autoCompact: false, onWarning: () => undefined });
  store.ensureSession('one');
  clock.now += HOUR;
  store.ensureSession('two');
  await store.close();
  const run = await replay(f, '--state', '--at', iso(FIXTURE_T0 + 1000));
  t.is(run.code, 0, run.stderr);
  t.is(run.stderr, '');
  t.deepEqual((JSON.parse(run.stdout) as { sessions: Array<{ id: string }> }).sessions.map((s) => s.id), ['one']);
});

/** A child running the binary whose output can be watched while it runs. */
function spawnReplay(args: string[]) {
  const child = spawn(process.execPath, [CLI_MAIN, 'replay', ...args], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out.stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (out.stderr += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  const killer = setTimeout(() => child.kill('SIGKILL'), 240_000);
  void exited.then(() => clearTimeout(killer));
  return { child, out, exited };
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`--follow on Redis prints the history, then what stores on Redis append, across a compaction, until ${signal} (exit 0)`, async (t) => {
    const f = await redisFixture(t);
    const { child, out, exited } = spawnReplay([...f.flags, '--follow', '--ndjson']);
    const count = () => lines(out.stdout).length;
    t.true(await waitFor(() => count() === 6, 60_000), `the history first: ${out.stdout}${out.stderr}`);

    const redis = f.location;
    const store = await SessionStore.open({ redis, autoCompact: false, onWarning: () => undefined });
    const seen = (prompt: string) => out.stdout.includes(`"prompt":"${prompt}"`);
    store.ensureSession('followed');
    store.addTurn('followed', { prompt: 'appended while following', response: 'r', timestamp: new Date(FIXTURE_T0 + 7 * HOUR) });
    await store.flush();
    t.true(await waitFor(() => seen('appended while following'), 60_000), out.stdout);

    // A compaction folds and trims what was printed; the follower goes on with what comes after it.
    const compacted = await compactSessions({ redis, ttlMs: NO_TTL, onWarning: () => undefined, now: () => COMPACTED_AT });
    t.is(compacted.status, 'compacted');
    await store.catchUp();
    store.addTurn('followed', { prompt: 'after a compaction', response: 'r', timestamp: new Date(FIXTURE_T0 + 8 * HOUR) });
    await store.flush();
    // And a long record, spread over several entries, arrives whole.
    const long = `long ${'y'.repeat(3000)}`;
    const spread = await SessionStore.open({ redis, maxLineBytes: 1024, autoCompact: false, onWarning: () => undefined });
    await spread.catchUp();
    spread.addTurn('followed', { prompt: long, response: 'r', timestamp: new Date(FIXTURE_T0 + 9 * HOUR) });
    await spread.close();
    t.true(await waitFor(() => seen('after a compaction') && seen(long), 60_000), out.stdout);
    await store.close();

    const seqs = lines(out.stdout).map((l) => (JSON.parse(l) as { seq: number }).seq);
    t.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'in commit order');
    t.is(new Set(seqs).size, seqs.length, 'each record once');
    child.kill(signal);
    const ended = await exited;
    t.is(ended.code, 0, out.stderr);
    t.notRegex(out.stderr, /RECORDS_MISSING|warning/, out.stderr);
  });
}

/** Clients blocked in a command (CLIENT LIST flag b) on the server of `f`. */
async function blockedClients(f: RedisFixture): Promise<number> {
  const { createClient } = await import('redis');
  const client = createClient({ url: f.url, socket: { connectTimeout: 60_000 } });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const list = String(await client.sendCommand(['CLIENT', 'LIST']));
    return list.split('\n').filter((l) => / flags=\w*b/.test(l)).length;
  } finally {
    await client.close();
  }
}

test('--follow on Redis reports records a compaction trimmed before it read them (RECORDS_MISSING) and goes on after them', async (t) => {
  // A private server: the follower's blocked XREAD is the only one on it.
  const server = await startRedisServer(t);
  const f = await redisFixture(t, 'cli', server.url);
  const redis = f.location;
  const { child, out, exited } = spawnReplay([...f.flags, '--follow', '--ndjson']);
  t.true(await waitFor(() => lines(out.stdout).length === 6, 60_000), out.stdout + out.stderr);
  // A follower that fell behind: stopped while it waits on the stream, and once its XREAD BLOCK has timed out on the server, records are written and compacted away.
  await waitForRedis('the follower blocked on the stream', async () => (await blockedClients(f)) === 1, 60_000);
  child.kill('SIGSTOP');
  try {
    await waitForRedis('the stopped follower no longer blocked on the server', async () => (await blockedClients(f)) === 0, 60_000);
    const store = await SessionStore.open({ redis, autoCompact: false, onWarning: () => undefined });
    store.ensureSession('missed');
    await store.flush();
    const compacted = await compactSessions({ redis, ttlMs: NO_TTL, onWarning: () => undefined, now: () => COMPACTED_AT });
    t.is(compacted.status, 'compacted');
    await store.catchUp();
    store.addTurn('missed', { prompt: 'after the trim', response: 'r', timestamp: new Date(FIXTURE_T0 + 7 * HOUR) });
    await store.close();
  } finally {
    child.kill('SIGCONT');
  }
  t.true(await waitFor(() => out.stdout.includes('"prompt":"after the trim"'), 60_000), out.stdout + out.stderr);
  t.regex(f.normalize(out.stderr), /warning RECORDS_MISSING \{P\}:log entry 16-0: seq 15 is no longer in the stream: a compaction folded them into \{P\}:snap/);
  t.false(out.stdout.includes('"session":"missed","payload":{"id":"missed"}}'), 'the trimmed create is not printed');
  child.kill('SIGINT');
  t.is((await exited).code, 0);
});
