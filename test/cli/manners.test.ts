/**
 * The command line's manners, as a first-time user meets them: options as
 * POSIX and GNU tools take them (`--`, `-d`, `--dir=`), suggestions for
 * typos, `help CMD`, one TIME syntax for every command, a closed pipe
 * (`| head`), a directory that is not a store, a store of the other kind, an
 * event type that does not exist.
 */
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { JournalEventStore, SessionStore } from '../../src/index.js';
import { UsageError, parseDuration, parseFlags, parseTime } from '../../src/cli/args.js';
import { tempStoreDir } from '../helpers/temp-store.js';
import { copyFixtureStore } from '../helpers/fixture-store.js';
import { CLI_MAIN, FakeClock, T0, fingerprint, runCli, withoutStoreEnv } from '../helpers/compaction-helpers.js';

const lines = (text: string) => text.split('\n').filter((l) => l !== '');

// ---- options ---------------------------------------------------------------

const SPEC = { values: ['dir', 'ttl'], switches: ['json', 'dry-run'] };
const parsed = (argv: string[]) => {
  const p = parseFlags(argv, SPEC);
  return { values: Object.fromEntries(p.values), switches: [...p.switches].sort(), positionals: p.positionals };
};
const usageMessage = (t: ExecutionContext, argv: string[]) => t.throws(() => parseFlags(argv, SPEC), { instanceOf: UsageError })!.message;

test('parseFlags: long, inline, short and grouped forms; -- ends the options; the last value wins', (t) => {
  t.deepEqual(parsed(['--dir', 'a', '--json']), { values: { dir: 'a' }, switches: ['json'], positionals: [] });
  t.deepEqual(parsed(['--dir=a', '-j']), { values: { dir: 'a' }, switches: ['json'], positionals: [] });
  t.deepEqual(parsed(['-d', 'a', '-n']), { values: { dir: 'a' }, switches: ['dry-run'], positionals: [] });
  t.deepEqual(parsed(['-da']), { values: { dir: 'a' }, switches: [], positionals: [] });
  t.deepEqual(parsed(['-jnd', 'a']), { values: { dir: 'a' }, switches: ['dry-run', 'json'], positionals: [] });
  t.deepEqual(parsed(['--dir', 'a', '--dir', 'b']), { values: { dir: 'b' }, switches: [], positionals: [] });
  t.deepEqual(parsed(['file', '--', '--dir', '-x', '-']), { values: {}, switches: [], positionals: ['file', '--dir', '-x', '-'] });
  t.deepEqual(parsed(['-']), { values: {}, switches: [], positionals: ['-'] }, 'a lone - is an argument (stdin)');
  t.deepEqual(parsed(['--ttl=-5']), { values: { ttl: '-5' }, switches: [], positionals: [] }, 'a value that starts with - goes inline');
});

test('parseFlags: an unknown option names the nearest known one; values and switches are checked', (t) => {
  t.is(usageMessage(t, ['--dirr', 'x']), 'unknown option --dirr; did you mean --dir?');
  t.is(usageMessage(t, ['--jsno']), 'unknown option --jsno; did you mean --json?');
  t.is(usageMessage(t, ['--dry_run']), 'unknown option --dry_run; did you mean --dry-run?');
  t.is(usageMessage(t, ['--verbose']), 'unknown option --verbose', 'nothing near: no guess');
  t.is(usageMessage(t, ['-x']), 'unknown option -x');
  t.is(usageMessage(t, ['-f']), 'unknown option -f', 'a short form only where its long option exists (--follow)');
  t.is(usageMessage(t, ['--dir']), '--dir needs a value');
  t.is(usageMessage(t, ['--dir=']), '--dir needs a value');
  t.regex(usageMessage(t, ['--dir', '--json']), /^--dir needs a value \(got the option "--json"/);
  t.is(usageMessage(t, ['--json=yes']), '--json takes no value');
});

test('TIME is one syntax everywhere: ISO instant, UTC date, epoch ms, or a duration with its unit meaning that long ago', (t) => {
  const now = Date.UTC(2026, 10, 22, 10, 0, 0);
  t.is(parseTime('now', '2026-11-21T09:00:00Z', now), Date.UTC(2026, 10, 21, 9));
  t.is(parseTime('now', '2026-11-21T10:00+01:00', now), Date.UTC(2026, 10, 21, 9));
  t.is(parseTime('now', '2026-11-21', now), Date.UTC(2026, 10, 21));
  t.is(parseTime('now', '1795341600000', now), 1795341600000);
  t.is(parseTime('since', '2h', now), now - 2 * 3_600_000);
  t.is(parseTime('since', '90s', now), now - 90_000);
  t.is(parseTime('since', '7d', now), now - 7 * 86_400_000);
  for (const bad of ['yesterday', '2026-02-30', '2026-02-30T00:00:00Z', '-5', '1.5', '1e12', '2x', '', '99999999999999999999']) {
    t.throws(() => parseTime('now', bad, now), { instanceOf: UsageError, message: /^--now takes a TIME: / }, bad);
  }
});

test('DURATION: a unit, or a bare number of seconds', (t) => {
  t.is(parseDuration('ttl', '3600'), 3_600_000);
  t.is(parseDuration('ttl', '1.5'), 1500);
  t.is(parseDuration('ttl', '250ms'), 250);
  t.is(parseDuration('ttl', '24h'), 86_400_000);
  t.throws(() => parseDuration('ttl', '3x'), { message: /number of seconds/ });
  t.throws(() => parseDuration('ttl', '0'), { message: /greater than zero/ });
});

// ---- the binary -------------------------------------------------------------

async function storeWith(t: ExecutionContext, sessions: number, turnBytes = 100): Promise<string> {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(T0 - 3_600_000);
  const store = await SessionStore.open({ dir, autoCompact: false, clock: clock.read });
  for (let i = 0; i < sessions; i++) {
    const id = `s${String(i).padStart(4, '0')}`;
    store.ensureSession(id);
    store.addTurn(id, { prompt: `p${i} ${'x'.repeat(turnBytes)}`, response: 'r', timestamp: new Date(clock.read()) });
    clock.advance(1000);
  }
  await store.close();
  return dir;
}

test('help CMD and CMD --help (or -h) print that command\'s help; a typo of a command is named', async (t) => {
  const viaHelp = await runCli(['help', 'stats']);
  t.is(viaHelp.code, 0);
  t.regex(viaHelp.stdout, /^Usage: session-journal stats --dir DIR/);
  t.deepEqual(await runCli(['stats', '--help']), viaHelp);
  t.deepEqual(await runCli(['stats', '-h']), viaHelp);
  t.regex((await runCli(['help'])).stdout, /^Usage: session-journal <command>/);

  const typo = await runCli(['hlep']);
  t.is(typo.code, 2);
  t.deepEqual(lines(typo.stderr), ['session-journal: unknown command "hlep"; did you mean help?', 'hint: session-journal --help lists the commands']);
  t.regex((await runCli(['replya'])).stderr, /unknown command "replya"; did you mean replay\?/);
  const unknownTopic = await runCli(['help', 'stat']);
  t.is(unknownTopic.code, 2);
  t.regex(unknownTopic.stderr, /unknown command "stat"; did you mean stats\?/);
});

test('-d DIR is --dir DIR; -- ends the options; an unknown option suggests the known one (exit 2)', async (t) => {
  const dir = await storeWith(t, 2);
  const long = await runCli(['stats', '--dir', dir, '--json', '--now', '2026-01-01']);
  t.is(long.code, 0, long.stderr);
  t.deepEqual(await runCli(['stats', '-d', dir, '-j', '--now', '2026-01-01']), long);
  t.deepEqual(await runCli(['stats', `-d${dir}`, '--json', '--now', '2026-01-01']), long);

  const typo = await runCli(['stats', '--dirr', dir]);
  t.is(typo.code, 2);
  t.deepEqual(lines(typo.stderr), ['session-journal stats: unknown option --dirr; did you mean --dir?', 'hint: session-journal stats --help']);
  // After --, "--help" is an argument, not a request for help.
  const afterEnd = await runCli(['stats', '-d', dir, '--', '--help']);
  t.is(afterEnd.code, 2);
  t.regex(afterEnd.stderr, /unexpected argument "--help"/);
});

test('stats --now takes a TIME like every command: a date, a duration ago, epoch ms', async (t) => {
  const dir = await storeWith(t, 1);
  const nowOf = async (time: string) => {
    const run = await runCli(['stats', '--dir', dir, '--json', '--now', time]);
    t.is(run.code, 0, `${time}: ${run.stderr}`);
    return (JSON.parse(run.stdout) as { now: string }).now;
  };
  t.is(await nowOf('2026-01-03'), '2026-01-03T00:00:00.000Z');
  t.is(await nowOf(String(Date.UTC(2026, 0, 3, 18))), '2026-01-03T18:00:00.000Z');
  t.is(await nowOf('2026-01-03T19:00:00+01:00'), '2026-01-03T18:00:00.000Z');
  // A duration is that long before the current time (the child's clock: only the difference is checked).
  const ago = Date.parse(await nowOf('2d'));
  const current = Date.parse(await nowOf('0s'));
  t.true(Math.abs(current - ago - 2 * 86_400_000) < 60_000, `2d before now: ${new Date(ago).toISOString()} vs ${new Date(current).toISOString()}`);
  const bad = await runCli(['stats', '--dir', dir, '--now', 'yesterday']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /^session-journal stats: --now takes a TIME: /);
});

/** Runs `session-journal ARGS | head ...` in sh: what the command wrote on stderr and how it exited. */
function intoHead(args: string[], head: string): { status: number; stderr: string; shown: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sj-head-'));
  try {
    const err = path.join(dir, 'stderr');
    const status = path.join(dir, 'status');
    const quoted = [process.execPath, CLI_MAIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const shown = spawnSync('/bin/sh', ['-c', `{ ${quoted} 2>'${err}'; echo $? >'${status}'; } | ${head}`], { encoding: 'utf8', env: withoutStoreEnv() }).stdout;
    return { status: Number(fs.readFileSync(status, 'utf8')), stderr: fs.readFileSync(err, 'utf8'), shown };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('a closed pipe (| head) ends export, replay, stats and verify quietly: exit 0, nothing on stderr', async (t) => {
  // Far more than a pipe holds (64 KiB), so the command is still writing when head goes away.
  const dir = await storeWith(t, 100, 8000);
  const exported = intoHead(['export', '--dir', dir], 'head -c 10');
  t.deepEqual(exported, { status: 0, stderr: '', shown: '{\n  "versi' });
  const replayed = intoHead(['replay', '--dir', dir], 'head -1');
  t.is(replayed.stderr, '');
  t.is(replayed.status, 0);
  t.regex(replayed.shown, /^\S+ +\S+ +s0000 +create\n$/);
  for (const command of [
    ['stats', '--dir', dir],
    ['verify', '--dir', dir],
    ['replay', '--dir', dir, '--ndjson'],
  ]) {
    t.deepEqual({ ...intoHead(command, 'head -c 1'), shown: '' }, { status: 0, stderr: '', shown: '' }, command[0]);
  }
});

test('verify, stats, replay, export, repair and compact refuse a directory that is not a store (NOT_A_STORE, exit 4); a new store with no records is one', async (t) => {
  const empty = tempStoreDir(t);
  fs.mkdirSync(empty, { mode: 0o700 });
  const run = await runCli(['verify', '--dir', empty]);
  t.is(run.code, 4);
  t.is(run.stdout, '');
  t.deepEqual(lines(run.stderr), [
    `session-journal verify: NOT_A_STORE: ${empty} is not a store: it holds no segment (journal-*.ndjson), snapshot or archive/ (it is empty)`,
    'hint: pass the store directory itself, the one holding journal-*.ndjson (check --dir or SESSION_JOURNAL_DIR)',
  ]);

  // A store's parent: the store inside is named.
  const store = await storeWith(t, 1);
  const parent = path.dirname(store);
  const before = fingerprint(parent);
  for (const args of [['verify'], ['verify', '--head'], ['stats'], ['replay'], ['export'], ['repair'], ['repair', '--dry-run'], ['compact', '--now', new Date(T0).toISOString()]]) {
    const refused = await runCli([...args, '--dir', parent]);
    t.is(refused.code, 4, args.join(' '));
    t.regex(refused.stderr, new RegExp(`^session-journal ${args[0]}: NOT_A_STORE: .*; ${store} is one\\n`), args.join(' '));
  }
  t.deepEqual(fingerprint(parent), before, 'nothing written');

  // A store opened by a writer, nothing written yet: a store (its first segment is made when it is opened).
  const fresh = tempStoreDir(t);
  await (await SessionStore.open({ dir: fresh, autoCompact: false })).close();
  t.deepEqual(fs.readdirSync(fresh), ['journal-00000001.ndjson']);
  const clean = await runCli(['verify', '--dir', fresh]);
  t.is(clean.code, 0, clean.stdout + clean.stderr);
  t.regex(clean.stdout, /OK: /);
});

test('compact --kind of the wrong kind refuses once: one error and its hint, no warning per record; nothing changed', async (t) => {
  const sessions = await storeWith(t, 40);
  const before = fingerprint(sessions);
  const asEvents = await runCli(['compact', '--dir', sessions, '--kind', 'events', '--now', new Date(T0).toISOString()], { timeoutMs: 60_000 });
  t.is(asEvents.code, 4);
  t.deepEqual(lines(asEvents.stderr), [
    `session-journal compact: STORE_KIND_MISMATCH: ${sessions} holds 80 session.* records and no event.* record; this compaction folds event.* records, so nothing was changed`,
    'hint: a session store is compacted with --kind sessions (the default)',
  ]);
  t.deepEqual(fingerprint(sessions), before);

  // An event store already compacted (its streams in a snapshot), given to the session compactor.
  const events = tempStoreDir(t);
  const store = await JournalEventStore.open({ dir: events, autoCompact: false, clock: () => T0 });
  for (let i = 0; i < 20; i++) await store.storeEvent(`stream-${i}`, { jsonrpc: '2.0', method: 'notifications/message', params: { i } } as never);
  await store.close();
  t.is((await runCli(['compact', '--dir', events, '--kind', 'events', '--now', new Date(T0).toISOString()], { timeoutMs: 60_000 })).code, 0);
  const compacted = fingerprint(events);
  const asSessions = await runCli(['compact', '--dir', events, '--now', new Date(T0).toISOString()], { timeoutMs: 60_000 });
  t.is(asSessions.code, 4);
  t.deepEqual(lines(asSessions.stderr), [
    `session-journal compact: STORE_KIND_MISMATCH: ${events} holds 20 snapshot entries it cannot restore and no session.* record; this compaction folds session.* records, so nothing was changed`,
    'hint: a JournalEventStore is compacted with --kind events, a KeyValueStore is compacted with --kind kv',
  ]);
  t.deepEqual(fingerprint(events), compacted);
});

test('replay --type with a type that does not exist is a usage error that names the near one; another namespace is taken as it is', async (t) => {
  const dir = copyFixtureStore(t, 'audit-basic', 'stores');
  for (const [typo, near] of [
    ['turns', 'turn'],
    ['session.turns', 'session.turn'],
    ['creat', 'create'],
    ['journal.rotat', 'journal.rotate'],
  ] as const) {
    const run = await runCli(['replay', '--dir', dir, '--type', `delete,${typo}`]);
    t.is(run.code, 2, typo);
    t.is(run.stdout, '');
    t.regex(lines(run.stderr)[0]!, new RegExp(`^session-journal replay: --type: unknown event type "${typo.replace('.', '\\.')}"; did you mean ${near.replace('.', '\\.')}\\? `), typo);
  }
  t.is((await runCli(['replay', '--dir', dir, '--type', 'nonsense'])).code, 2);
  const foreign = await runCli(['replay', '--dir', dir, '--type', 'tasks.create']);
  t.deepEqual({ code: foreign.code, stdout: foreign.stdout }, { code: 0, stdout: '' }, 'records of another namespace may be in a store: asked for, none found');
  const known = await runCli(['replay', '--dir', dir, '--type', 'turn,event.store,rotate']);
  t.is(known.code, 0, known.stderr);
  t.true(lines(known.stdout).length > 0);
});

test('repair --dry-run exits 1 only for damage repair cannot undo, as repair itself does', async (t) => {
  const dir = copyFixtureStore(t, 'damaged-rotation-marker', 'stores');
  const dry = await runCli(['repair', '--dir', dir, '--dry-run', '--json'], { timeoutMs: 60_000 });
  t.is(dry.code, 1, dry.stderr);
  t.true((JSON.parse(dry.stdout) as { left: Array<{ reason: string }> }).left.some((l) => l.reason === 'ROTATION_MARKER_DAMAGED'));
  t.is((await runCli(['repair', '--dir', dir], { timeoutMs: 60_000 })).code, 1);
});
