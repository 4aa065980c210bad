/**
 * `session-journal replay`, run as the real binary (node build/src/cli/main.js)
 * against the committed store fixtures/stores/audit-basic (see
 * fixtures/README.md: an archive with two gzipped segments and a snapshot, a
 * live snapshot and segment, two writers and a compactor, records over two
 * days, one torn line). Outputs are compared with golden files under
 * test/golden/replay/ (UPDATE_GOLDEN=1 rewrites them) and, for the filters and
 * --state, with results computed here independently of the command.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { compactSessions } from '../../src/index.js';
import { CLI_MAIN, FakeClock, HOUR, NO_TTL, openStore, runCli, serializeSessions, waitFor, withoutStoreEnv, type PlainSession } from '../helpers/compaction-helpers.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';
import { copyFixtureStore } from '../helpers/fixture-store.js';
import { STORES_NOW, TEST_T0 } from '../helpers/fixture-now.js';

const FIXTURE = 'audit-basic';
const GOLDEN_DIR = new URL('../../../test/golden/replay/', import.meta.url).pathname;
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const DAMAGED = /^session-journal: warning UNPARSABLE_LINE (.*)\/journal-00000003\.ndjson:3 \(byte 476\): not valid JSON/;

/** A private copy of a committed fixture store (dirs 0700, files 0600, as the store requires). */
const copyStore = (t: ExecutionContext, name = FIXTURE): string => copyFixtureStore(t, name, 'stores');

/** Compares with test/golden/replay/<name>, after replacing the temp store path by STORE. */
function golden(t: ExecutionContext, name: string, actual: string, dir?: string): void {
  const text = dir ? actual.split(dir).join('STORE') : actual;
  const file = path.join(GOLDEN_DIR, name);
  if (UPDATE) {
    fs.mkdirSync(GOLDEN_DIR, { recursive: true });
    fs.writeFileSync(file, text);
  }
  t.is(text, fs.readFileSync(file, 'utf8'), `golden ${name}`);
}

const env = () => withoutStoreEnv({ NO_COLOR: '1' });
const replay = (dir: string, ...args: string[]) => runCli(['replay', '--dir', dir, ...args], { env: env() });
const lines = (text: string) => text.split('\n').filter((l) => l !== '');

interface Event {
  seq: number;
  ts: string;
  writer: string;
  type: string;
  session: string | null;
  payload: Record<string, unknown>;
}
const events = (stdout: string): Event[] => lines(stdout).map((l) => JSON.parse(l) as Event);

/** Every parsable line of the history, read here without the library: archive (gunzipped) then live, by segment number. */
function rawHistory(dir: string): Record<string, unknown>[] {
  const files: { n: number; text: string }[] = [];
  const archive = path.join(dir, 'archive');
  for (const name of fs.existsSync(archive) ? fs.readdirSync(archive) : []) {
    const m = /^journal-(\d+)\.ndjson\.gz$/.exec(name);
    if (m) files.push({ n: Number(m[1]), text: zlib.gunzipSync(fs.readFileSync(path.join(archive, name))).toString('utf8') });
  }
  for (const name of fs.readdirSync(dir)) {
    const m = /^journal-(\d+)\.ndjson$/.exec(name);
    if (m) files.push({ n: Number(m[1]), text: fs.readFileSync(path.join(dir, name), 'utf8') });
  }
  const out: Record<string, unknown>[] = [];
  for (const f of files.sort((a, b) => a.n - b.n)) {
    for (const line of lines(f.text)) {
      try {
        out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // the torn line
      }
    }
  }
  return out;
}

/**
 * The sessions at `at`, computed independently of replay's fold: the records
 * with ts <= at are written, in order, into a fresh one-segment store, which a
 * SessionStore then opens.
 */
async function independentState(t: ExecutionContext, history: Record<string, unknown>[], at: number): Promise<PlainSession[]> {
  const dir = tempStoreDir(t);
  fs.mkdirSync(dir, { mode: 0o700 });
  const kept = history.filter((r) => r.t !== 'journal.rotate' && Date.parse(r.ts as string) <= at);
  fs.writeFileSync(path.join(dir, 'journal-00000001.ndjson'), kept.map((r) => JSON.stringify(r) + '\n').join(''), { mode: 0o600 });
  const { onWarning, warnings } = collectWarnings();
  const store = openStore(dir, onWarning);
  try {
    t.deepEqual(warnings, []);
    return serializeSessions(store.listSessions());
  } finally {
    await store.close();
  }
}

/** A child running the binary whose output can be watched while it runs. */
function spawnReplay(args: string[], envExtra: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [CLI_MAIN, 'replay', ...args], { env: withoutStoreEnv({ NO_COLOR: '1', ...envExtra }), stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out.stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (out.stderr += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  void exited.then(() => clearTimeout(killer));
  return { child, out, exited };
}

// ---- the whole history -----------------------------------------------------

test('replay prints the whole history in commit order across archive and live segments (human view, NO_COLOR)', async (t) => {
  const dir = copyStore(t);
  const run = await replay(dir);
  t.is(run.code, 0, run.stderr);
  golden(t, 'human.txt', run.stdout);
  t.false(run.stdout.includes('\u001b['), 'no colour with NO_COLOR and no terminal');
  t.false(run.stdout.includes('journal.rotate'), 'engine records hidden by default');
  // Aligned columns: every line has time, writer, session and event at the same offsets.
  for (const line of lines(run.stdout)) t.regex(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z  \d{4}@audit-host  \S+ +\S+/);
  const starts = lines(run.stdout).map((l) => l.indexOf('  ', 26 + 'NNNN@audit-host'.length));
  t.is(new Set(starts).size, 1, 'session column aligned');
  t.regex(run.stdout, /alpha +turn +"Summarize the design of the session journal: segments, snaps…"\n/, 'a turn shows the first 60 characters of its prompt');
  t.regex(run.stdout, /"second question\\nwith a newline"/, 'a newline in a prompt stays on one line, escaped');
  t.regex(run.stdout, /alpha +conversation +conv-alpha-1\n/);
  t.regex(run.stdout, /epsilon +delete +expired\n/);
  t.regex(run.stdout, /delta +update +fields: note; unset: codexConversationId\n/);
});

test('replay --ndjson: one event per line {seq, ts, writer, type, session, payload}, every record of the history', async (t) => {
  const dir = copyStore(t);
  const run = await replay(dir, '--ndjson');
  t.is(run.code, 0, run.stderr);
  golden(t, 'all.ndjson', run.stdout);
  const got = events(run.stdout);
  const expected = rawHistory(dir).filter((r) => r.t !== 'journal.rotate');
  t.deepEqual(
    got,
    expected.map((r) => ({ seq: r.seq, ts: r.ts, writer: r.w, type: r.t, session: (r.p as { id?: string }).id ?? null, payload: r.p })) as unknown as Event[],
  );
  t.deepEqual(
    got.map((e) => e.seq),
    [...Array(25).keys()].map((i) => i + 1).filter((s) => s !== 12 && s !== 19),
    'gapless but for the two rotation markers',
  );
  t.deepEqual([...new Set(got.map((e) => e.writer))].sort(), ['4101@audit-host', '4202@audit-host', '4300@audit-host']);
  t.deepEqual([...new Set(got.map((e) => e.ts.slice(0, 10)))], ['2026-03-09', '2026-03-10'], 'two days');
});

test('a damaged line: a warning on stderr with file:line, stdout stays clean', async (t) => {
  const dir = copyStore(t);
  for (const args of [[], ['--ndjson'], ['--state']]) {
    const run = await replay(dir, ...args);
    t.is(run.code, 0);
    const err = lines(run.stderr);
    t.is(err.length, 1, run.stderr);
    const m = DAMAGED.exec(err[0]!);
    t.truthy(m, err[0]);
    t.is(m?.[1], dir, 'the full path of the file');
    t.false(run.stdout.includes('UNPARSABLE'), 'nothing of it on stdout');
    t.false(run.stdout.includes('"prom\n'));
    if (args[0] === '--ndjson') for (const line of lines(run.stdout)) t.notThrows(() => JSON.parse(line));
    // The parser's own wording differs between Node versions.
    golden(t, 'damaged.stderr.txt', run.stderr.replace(/not valid JSON: .*$/m, 'not valid JSON: <parser message>'), dir);
  }
});

// ---- filters ---------------------------------------------------------------

test('--session, --type, --writer each print exactly the matching events', async (t) => {
  const dir = copyStore(t);
  const all = events((await replay(dir, '--ndjson')).stdout);
  const withRotations = events((await replay(dir, '--ndjson', '--type', 'journal.rotate,session.create,session.touch,session.update,session.turn,session.reset,session.conversation,session.delete')).stdout);
  t.is(withRotations.length, all.length + 2, '--type naming journal.rotate shows the engine records');
  const check = async (file: string, args: string[], keep: (e: Event) => boolean, from = all) => {
    const run = await replay(dir, '--ndjson', ...args);
    t.is(run.code, 0, run.stderr);
    const got = events(run.stdout);
    t.deepEqual(got, from.filter(keep), args.join(' '));
    t.true(got.length > 0, `${args.join(' ')} matches something`);
    if (file) golden(t, file, run.stdout);
  };
  await check('session-alpha.ndjson', ['--session', 'alpha'], (e) => e.session === 'alpha');
  await check('', ['--session', 'beta,zeta'], (e) => e.session === 'beta' || e.session === 'zeta');
  await check('type-turn.ndjson', ['--type', 'turn'], (e) => e.type === 'session.turn');
  await check('', ['--type', 'session.turn'], (e) => e.type === 'session.turn');
  await check('', ['--type', 'delete,conversation'], (e) => e.type === 'session.delete' || e.type === 'session.conversation');
  await check('type-rotate.ndjson', ['--type', 'rotate'], (e) => e.type === 'journal.rotate', withRotations);
  await check('writer-4202.ndjson', ['--writer', '4202'], (e) => e.writer === '4202@audit-host');
  await check('', ['--writer', '4101@audit-host'], (e) => e.writer === '4101@audit-host');
  await check('', ['--writer', '4300'], (e) => e.writer === '4300@audit-host');
  await check('', ['--session', 'delta', '--type', 'turn', '--writer', '4101'], (e) => e.session === 'delta' && e.type === 'session.turn' && e.writer.startsWith('4101@'));
  // No match is not an error.
  const none = await replay(dir, '--session', 'nobody');
  t.is(none.code, 0);
  t.is(none.stdout, '');
  t.is(events((await replay(dir, '--ndjson', '--writer', '4101@other-host')).stdout).length, 0, 'a full writer must match the host too');
  // The human view filters the same way.
  const human = await replay(dir, '--type', 'turn');
  golden(t, 'type-turn.txt', human.stdout);
  t.is(lines(human.stdout).length, all.filter((e) => e.type === 'session.turn').length);
});

test('--since and --until with ISO instants and dates (inclusive)', async (t) => {
  const dir = copyStore(t);
  const all = events((await replay(dir, '--ndjson')).stdout);
  const check = async (args: string[], from: number, to: number) => {
    const run = await replay(dir, '--ndjson', ...args);
    t.is(run.code, 0, run.stderr);
    const got = events(run.stdout);
    t.deepEqual(got, all.filter((e) => Date.parse(e.ts) >= from && Date.parse(e.ts) <= to), args.join(' '));
    return run.stdout;
  };
  const out = await check(['--since', '2026-03-10T00:00:00Z', '--until', '2026-03-10T09:00:00.000Z'], Date.parse('2026-03-10T00:00:00Z'), Date.parse('2026-03-10T09:00:00Z'));
  golden(t, 'since-until.ndjson', out);
  t.true(out.includes('"seq":17,'), 'an event exactly at --until is included');
  await check(['--since', '2026-03-09T21:05:00Z'], Date.parse('2026-03-09T21:05:00Z'), Infinity);
  await check(['--until', '2026-03-09T22:00:00+01:00'], -Infinity, Date.parse('2026-03-09T21:00:00Z'));
  await check(['--since', '2026-03-10'], Date.parse('2026-03-10T00:00:00Z'), Infinity);
  const day1alpha = events((await replay(dir, '--ndjson', '--since', '2026-03-09', '--until', '2026-03-09T23:59:59.999Z', '--session', 'alpha')).stdout);
  t.deepEqual(
    day1alpha.map((e) => e.seq),
    [1, 2, 3, 10],
    'what session alpha did on the first day',
  );
});

test('--since 2h and --until 30m mean that long before --now', async (t) => {
  const dir = tempStoreDir(t);
  const { onWarning, warnings } = collectWarnings();
  const NOW = TEST_T0;
  const clock = new FakeClock(NOW - 3 * HOUR);
  const store = openStore(dir, onWarning, { clock: clock.read });
  store.ensureSession('three-hours-ago');
  await store.flush();
  clock.now = NOW - 90 * 60_000;
  store.ensureSession('ninety-minutes-ago');
  await store.flush();
  clock.now = NOW - 10 * 60_000;
  store.ensureSession('ten-minutes-ago');
  await store.close();
  t.deepEqual(warnings, []);
  const sessions = async (...args: string[]) => {
    const run = await replay(dir, '--ndjson', ...args, '--now', String(NOW));
    t.is(run.code, 0, run.stderr);
    return events(run.stdout).map((e) => e.session);
  };
  t.deepEqual(await sessions('--since', '2h'), ['ninety-minutes-ago', 'ten-minutes-ago']);
  t.deepEqual(await sessions('--since', '30m'), ['ten-minutes-ago']);
  t.deepEqual(await sessions('--until', '30m'), ['three-hours-ago', 'ninety-minutes-ago']);
  t.deepEqual(await sessions('--since', '1d', '--until', '2h'), ['three-hours-ago']);
  t.deepEqual(await sessions('--since', '7d'), ['three-hours-ago', 'ninety-minutes-ago', 'ten-minutes-ago']);
});

// ---- point-in-time state -----------------------------------------------------

const STATE_TIMES = [
  ['before-anything', '2026-03-09T20:00:00Z'],
  ['day1-2103', '2026-03-09T21:03:00Z'],
  ['day1-2300', '2026-03-09T23:00:00Z'],
  ['after-first-compaction', '2026-03-10T00:00:00Z'],
  ['day2-0830', '2026-03-10T08:30:00Z'],
  ['after-damage', '2026-03-10T22:20:00Z'],
  ['end', '2026-03-11T00:00:00Z'],
] as const;

test('--state --at T reconstructs the sessions at several times, as an independent fold of the records with ts <= T', async (t) => {
  const dir = copyStore(t);
  const history = rawHistory(dir);
  for (const [name, at] of STATE_TIMES) {
    const run = await replay(dir, '--state', '--at', at);
    t.is(run.code, 0, run.stderr);
    t.is(lines(run.stdout).length, 1, 'one JSON document');
    golden(t, `state-${name}.json`, run.stdout);
    const doc = JSON.parse(run.stdout) as { at: string; sessions: PlainSession[] };
    t.deepEqual(Object.keys(doc), ['at', 'sessions']);
    t.is(doc.at, new Date(at).toISOString());
    t.deepEqual(doc.sessions, await independentState(t, history, Date.parse(at)), `state at ${at}`);
  }
  const at2300 = JSON.parse((await replay(dir, '--state', '--at', '2026-03-09T23:00:00Z')).stdout) as { sessions: PlainSession[] };
  t.deepEqual(
    at2300.sessions.map((s) => s.id),
    ['alpha', 'beta', 'epsilon', 'gamma'],
    'gamma not yet deleted, delta not yet created',
  );
  t.is(at2300.sessions[0]!.codexConversationId, 'conv-alpha-1');
  t.is(at2300.sessions[0]!.turns.length, 2);
});

test('--state without --at is the state at --now (the fixture\'s documented now); --session narrows it; --json is accepted', async (t) => {
  const dir = copyStore(t);
  const now = new Date(STORES_NOW.audit).toISOString();
  const run = await replay(dir, '--state', '--json', '--now', now);
  t.is(run.code, 0, run.stderr);
  const doc = JSON.parse(run.stdout) as { at: string; sessions: PlainSession[] };
  t.is(doc.at, now);
  t.deepEqual(doc.sessions, await independentState(t, rawHistory(dir), STORES_NOW.audit));
  t.deepEqual(
    doc.sessions.map((s) => s.id),
    ['alpha', 'delta', 'zeta'],
  );
  const one = JSON.parse((await replay(dir, '--state', '--session', 'delta', '--now', now)).stdout) as { sessions: PlainSession[] };
  t.deepEqual(one.sessions, doc.sessions.filter((s) => s.id === 'delta'));
  t.is(one.sessions[0]!.note, 'cleared');
  t.false('codexConversationId' in one.sessions[0]!);
});

test('--state --at with a pruned archive: falls back to the oldest snapshot that precedes T and says so on stderr', async (t) => {
  const full = copyStore(t);
  const history = rawHistory(full);
  const dir = copyStore(t);
  fs.rmSync(path.join(dir, 'archive', 'journal-00000001.ndjson.gz'));

  const at = '2026-03-10T08:30:00Z';
  const run = await replay(dir, '--state', '--at', at);
  t.is(run.code, 0, run.stderr);
  t.deepEqual((JSON.parse(run.stdout) as { sessions: PlainSession[] }).sessions, await independentState(t, history, Date.parse(at)));
  const notes = lines(run.stderr).filter((l) => !DAMAGED.test(l));
  t.is(notes.length, 1, run.stderr);
  t.regex(notes[0]!, /^session-journal replay: note: the history before segment 2 was pruned; .*archive\/snapshot-00000002\.ndjson\.gz \(seq 12\)/);

  // Before that snapshot: the state cannot be rebuilt; exit 4, one line and a hint.
  const early = await replay(dir, '--state', '--at', '2026-03-09T22:00:00Z');
  t.is(early.code, 4);
  t.is(early.stdout, '');
  const err = lines(early.stderr).filter((l) => !DAMAGED.test(l));
  t.is(err.length, 2, early.stderr);
  t.regex(err[0]!, /^session-journal replay: HISTORY_PRUNED: .*snapshot-00000002\.ndjson\.gz/);
  t.regex(err[1]!, /^hint: pass --at 2026-03-10T08:00:00\.000Z or later$/);

  // With both archived segments gone, the live snapshot is the base (taken at an unknown time before seq 20).
  fs.rmSync(path.join(dir, 'archive', 'journal-00000002.ndjson.gz'));
  const late = '2026-03-10T23:10:00Z';
  const run2 = await replay(dir, '--state', '--at', late);
  t.is(run2.code, 0, run2.stderr);
  t.deepEqual((JSON.parse(run2.stdout) as { sessions: PlainSession[] }).sessions, await independentState(t, history, Date.parse(late)));
  t.regex(run2.stderr, /note: the history before segment 3 was pruned; .*\/snapshot-00000003\.ndjson \(seq 19\)/);
  // The listing says the history is incomplete.
  const listing = await replay(dir);
  t.is(listing.code, 0);
  t.regex(listing.stderr, /note: the history starts at seq 20: earlier records were pruned/);
});

// ---- --follow ------------------------------------------------------------------

test('--follow prints new events as writers append, across compactions, until SIGINT (exit 0)', async (t) => {
  const dir = copyStore(t);
  const { child, out, exited } = spawnReplay(['--dir', dir, '--follow', '--ndjson']);
  const count = () => lines(out.stdout).length;
  t.true(await waitFor(() => count() === 23, 15_000), `the history first: ${out.stdout}${out.stderr}`);

  const { onWarning } = collectWarnings();
  const store = openStore(dir, onWarning);
  const seen = (prompt: string) => out.stdout.includes(`"prompt":"${prompt}"`);
  store.ensureSession('followed');
  store.addTurn('followed', { prompt: 'appended while following', response: 'r', timestamp: new Date() });
  await store.flush();
  t.true(await waitFor(() => seen('appended while following'), 10_000), out.stdout);

  const compacted = await compactSessions({ dir, ttlMs: NO_TTL, onWarning });
  t.is(compacted.status, 'compacted');
  store.addTurn('followed', { prompt: 'after the compaction', response: 'r', timestamp: new Date() });
  await store.flush();
  t.true(await waitFor(() => seen('after the compaction'), 10_000), out.stdout);

  // The follower is stopped while three compactions run: the segment after its
  // own is archived before it looks, so it reloads from the newest snapshot
  // and must fill the gap in seq from the archive.
  child.kill('SIGSTOP');
  try {
    await compactSessions({ dir, ttlMs: NO_TTL, onWarning });
    store.addTurn('followed', { prompt: 'between two compactions', response: 'r', timestamp: new Date() });
    await store.flush();
    await compactSessions({ dir, ttlMs: NO_TTL, onWarning });
    await compactSessions({ dir, ttlMs: NO_TTL, onWarning });
    store.addTurn('followed', { prompt: 'after three compactions', response: 'r', timestamp: new Date() });
    await store.close();
  } finally {
    child.kill('SIGCONT');
  }
  t.true(await waitFor(() => seen('between two compactions') && seen('after three compactions'), 10_000), out.stdout);

  child.kill('SIGINT');
  const { code } = await exited;
  t.is(code, 0);
  const got = events(out.stdout);
  const seqs = got.map((e) => e.seq);
  t.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'in commit order');
  t.is(new Set(seqs).size, seqs.length, 'nothing printed twice');
  t.deepEqual(
    got.filter((e) => e.session === 'followed').map((e) => e.type),
    ['session.create', 'session.turn', 'session.turn', 'session.turn', 'session.turn'],
  );
  t.false(got.some((e) => e.type === 'journal.rotate'), 'rotation markers are engine records');
  const err = lines(out.stderr);
  t.true(err.length <= 1 && err.every((l) => DAMAGED.test(l)), out.stderr);
});

test('--follow with filters prints only matching new events; SIGTERM also ends it with 0', async (t) => {
  const dir = copyStore(t);
  const { child, out, exited } = spawnReplay(['--dir', dir, '--follow', '--session', 'watched', '--type', 'turn']);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const { onWarning } = collectWarnings();
  const store = openStore(dir, onWarning);
  store.ensureSession('watched');
  store.ensureSession('ignored');
  store.addTurn('ignored', { prompt: 'not this one', response: 'r', timestamp: new Date() });
  store.addTurn('watched', { prompt: 'this one', response: 'r', timestamp: new Date() });
  await store.close();
  t.true(await waitFor(() => out.stdout.includes('"this one"'), 10_000), out.stdout);
  await new Promise((resolve) => setTimeout(resolve, 400));
  child.kill('SIGTERM');
  t.is((await exited).code, 0);
  t.is(lines(out.stdout).length, 1, out.stdout);
  t.regex(out.stdout, /^\S+Z {2}\d+@\S+ +watched +turn +"this one"\n$/);
});

// ---- broken pipe -------------------------------------------------------------

async function bigStore(t: ExecutionContext): Promise<string> {
  const dir = tempStoreDir(t);
  const { onWarning } = collectWarnings();
  const store = openStore(dir, onWarning);
  for (let i = 0; i < 3000; i++) {
    store.ensureSession(`s${i % 40}`);
    store.addTurn(`s${i % 40}`, { prompt: `prompt ${i} ${'x'.repeat(100)}`, response: 'r', timestamp: new Date() });
  }
  await store.close();
  return dir;
}

test('a reader that goes away (| head -1): exit 0, no stack trace, for both views', async (t) => {
  const dir = await bigStore(t);
  for (const args of [['--ndjson'], []]) {
    const { child, out, exited } = spawnReplay(['--dir', dir, ...args]);
    t.true(await waitFor(() => out.stdout.includes('\n'), 10_000));
    child.stdout.destroy();
    const { code, signal } = await exited;
    t.is(signal, null);
    t.is(code, 0, out.stderr);
    t.is(out.stderr, '', 'quiet');
  }
  // Through a real shell pipeline as well.
  const sh = spawnSync('/bin/sh', ['-c', `"${process.execPath}" "${CLI_MAIN}" replay --dir "${dir}" --ndjson | head -1; echo "status=$?"`], { encoding: 'utf8', env: env() });
  t.regex(sh.stdout, /^\{"seq":1,.*\}\nstatus=0\n$/);
  t.is(sh.stderr, '');
  const pipestatus = spawnSync('/bin/bash', ['-c', `"${process.execPath}" "${CLI_MAIN}" replay --dir "${dir}" | head -1 >/dev/null; echo "\${PIPESTATUS[0]}"`], { encoding: 'utf8', env: env() });
  t.is(pipestatus.stdout, '0\n', pipestatus.stderr);
  t.is(pipestatus.stderr, '');
});

// ---- terminal ---------------------------------------------------------------


test('colour only on a terminal, and never with NO_COLOR', (t) => {
  const dir = copyStore(t);
  const onTty = (extra: NodeJS.ProcessEnv) =>
    spawnSync('script', ['-qec', `"${process.execPath}" "${CLI_MAIN}" replay --dir "${dir}" --session alpha`, '/dev/null'], { encoding: 'utf8', env: withoutStoreEnv(extra) });
  const coloured = onTty({ NO_COLOR: '' });
  t.is(coloured.status, 0, coloured.stderr);
  t.true(coloured.stdout.includes('\u001b[36mturn'), JSON.stringify(coloured.stdout.slice(0, 300)));
  const plain = onTty({ NO_COLOR: '1' });
  t.is(plain.status, 0);
  t.false(plain.stdout.includes('\u001b['));
  t.true(plain.stdout.includes('alpha'));
  // Not a terminal: no colour even without NO_COLOR.
  const piped = spawnSync(process.execPath, [CLI_MAIN, 'replay', '--dir', dir], { encoding: 'utf8', env: withoutStoreEnv({ NO_COLOR: '' }) });
  t.false(piped.stdout.includes('\u001b['));
});

// ---- usage and errors ----------------------------------------------------------

test('usage errors exit 2 with one line and a hint; a missing store exits 4', async (t) => {
  const dir = copyStore(t);
  for (const args of [
    ['--since', 'yesterday'],
    ['--until', '2026-02-30T00:00:00Z'],
    ['--at', '2026-03-10T00:00:00Z'],
    ['--state', '--type', 'turn'],
    ['--state', '--follow'],
    ['--json'],
    ['--bogus'],
    ['extra'],
    ['--since', '2026-03-11', '--until', '2026-03-10'],
    ['--state', '--now', 'yesterday'],
  ]) {
    const run = await replay(dir, ...args);
    t.is(run.code, 2, args.join(' '));
    t.is(run.stdout, '');
    const err = lines(run.stderr);
    t.is(err.length, 2, run.stderr);
    t.regex(err[0]!, /^session-journal replay: /);
    t.regex(err[1]!, /^hint: session-journal replay --help$/);
  }
  const missing = await replay(path.join(dir, 'nope'));
  t.is(missing.code, 4);
  t.regex(missing.stderr, /^session-journal replay: STORE_NOT_FOUND: /);
  const none = await runCli(['replay']);
  t.is(none.code, 2);
  t.regex(none.stderr, /SESSION_JOURNAL_DIR/);
});

test('replay --help, and the store from SESSION_JOURNAL_DIR', async (t) => {
  const help = await runCli(['replay', '--help']);
  t.is(help.code, 0);
  t.is(help.stderr, '');
  t.regex(help.stdout, /^Usage: session-journal replay --dir DIR/);
  for (const flag of ['--session', '--type', '--writer', '--since', '--until', '--ndjson', '--follow', '--state', '--at']) t.true(help.stdout.includes(flag), flag);
  const top = await runCli(['--help']);
  t.regex(top.stdout, /\n {2}replay +print the audit trail/);

  const dir = copyStore(t);
  const viaEnv = await runCli(['replay', '--ndjson'], { env: withoutStoreEnv({ SESSION_JOURNAL_DIR: dir }) });
  t.is(viaEnv.code, 0);
  t.is(viaEnv.stdout, (await replay(dir, '--ndjson')).stdout);
});

test('replay is read-only: the store files are unchanged and no lock is left', async (t) => {
  const dir = copyStore(t);
  const before = snapshotOfFiles(dir);
  await replay(dir);
  await replay(dir, '--state', '--at', '2026-03-10T00:00:00Z');
  t.deepEqual(snapshotOfFiles(dir), before);
});

function snapshotOfFiles(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      const p = path.join(dir, rel, name);
      if (fs.statSync(p).isDirectory()) walk(path.join(rel, name));
      else out[path.join(rel, name)] = fs.readFileSync(p).toString('base64');
    }
  };
  walk('');
  return out;
}
