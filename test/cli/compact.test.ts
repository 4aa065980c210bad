/**
 * `session-journal compact`, run as the real binary (node build/src/cli/main.js):
 * quiet on success, --json, durations, the store from --dir or
 * SESSION_JOURNAL_DIR, and the documented exit codes (2 usage, 3 lock busy,
 * 4 store error).
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { JournalEventStore } from '../../src/index.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';
import { CLI_MAIN, DAY, FakeClock, HOUR, T0, fingerprint as fingerprintOf, freshReplay, openStore, runCli, snapshotsIn, withoutStoreEnv, writeAgedSessions } from '../helpers/compaction-helpers.js';
import { makeFreshLock } from '../helpers/held-lock.js';

/**
 * Every compaction here is judged at NOW (`--now`): the sessions' ages are
 * relative to it, never to the calendar the suite runs on.
 */
const NOW = T0;
const NOW_ISO = new Date(NOW).toISOString();

/** The binary, with a generous kill timeout: the tests of this file run at once, each spawning compactions (which restart once). */
const runBinary = (args: string[], options: Parameters<typeof runCli>[1] = {}) => runCli(args, { timeoutMs: 120_000, ...options });

/** `session-journal compact ARGS --now NOW`. */
const compact = (args: string[], options?: Parameters<typeof runCli>[1]) => runBinary(['compact', ...args, '--now', NOW_ISO], options);

/** A store with sessions last accessed the given number of ms before NOW. */
async function storeAged(t: import('ava').ExecutionContext, ages: Record<string, number>): Promise<string> {
  const dir = tempStoreDir(t);
  const { onWarning, warnings } = collectWarnings();
  const clock = new FakeClock(0);
  const store = openStore(dir, onWarning, { clock: clock.read });
  for (const [id, age] of Object.entries(ages).sort((a, b) => b[1] - a[1])) {
    clock.now = NOW - age;
    await writeAgedSessions(store, clock, [id], 0);
  }
  await store.close();
  t.deepEqual(warnings, []);
  return dir;
}

const lines = (text: string) => text.split('\n').filter((l) => l !== '');

test('the test runs the compiled binary', (t) => {
  t.true(fs.existsSync(CLI_MAIN), CLI_MAIN);
});

test('compact is quiet on success: exit 0, empty stdout and stderr', async (t) => {
  const dir = await storeAged(t, { a: 1000, b: 2000 });
  const run = await compact(['--dir', dir]);
  t.deepEqual(run, { code: 0, stdout: '', stderr: '' });
  t.deepEqual(snapshotsIn(dir), ['snapshot-00000002.ndjson']);
  // Nothing to do is just as quiet.
  t.deepEqual(await compact(['--dir', dir]), { code: 0, stdout: '', stderr: '' });
});

test('compact --json prints exactly one JSON document with what was done', async (t) => {
  const dir = await storeAged(t, { a: 1000, b: 2000, old: 3 * DAY });
  const run = await compact(['--dir', dir, '--json']);
  t.is(run.code, 0);
  t.is(run.stderr, '');
  t.is(lines(run.stdout).length, 1, 'one line');
  t.true(run.stdout.endsWith('\n'));
  const doc = JSON.parse(run.stdout) as Record<string, unknown>;
  for (const key of ['bytesBefore', 'bytesAfter', 'kept', 'removed', 'segmentsArchived', 'durationMs']) t.true(key in doc, `has ${key}`);
  t.is(doc.status, 'compacted');
  t.is(doc.kept, 2);
  t.deepEqual(doc.removed, { expired: 1 }, 'the default TTL is 24 h');
  t.is(doc.segmentsArchived, 1);
  t.true(typeof doc.bytesBefore === 'number' && (doc.bytesBefore as number) > 0);
  t.true(typeof doc.bytesAfter === 'number' && typeof doc.durationMs === 'number');

  const again = await compact(['--dir', dir, '--json']);
  t.is(again.code, 0);
  t.is(lines(again.stdout).length, 1);
  t.is((JSON.parse(again.stdout) as { status: string }).status, 'compacted', 'the journaled deletes are folded');
  const third = await compact(['--dir', dir, '--json']);
  t.is((JSON.parse(third.stdout) as { status: string }).status, 'nothing-to-do');
});

test('compact --ttl parses 7d, 24h and 90s (each removes exactly the sessions older than it)', async (t) => {
  const dir = await storeAged(t, { tenDays: 10 * DAY, twoDays: 2 * DAY, twoHours: 2 * HOUR, fiveSeconds: 5000 });
  const removed = async (ttl: string) => {
    const run = await compact(['--dir', dir, '--json', '--ttl', ttl]);
    t.is(run.code, 0, `--ttl ${ttl}: ${run.stderr}`);
    t.is(run.stderr, '');
    return (JSON.parse(run.stdout) as { removed: Record<string, number> }).removed;
  };
  t.deepEqual(await removed('7d'), { expired: 1 });
  t.deepEqual(await removed('24h'), { expired: 1 });
  t.deepEqual(await removed('90s'), { expired: 1 });
  const { onWarning } = collectWarnings();
  t.deepEqual((await freshReplay(dir, onWarning)).map((s) => s.id), ['fiveSeconds']);
  // --ttl=VALUE works too.
  t.is((await compact([`--dir=${dir}`, '--ttl=15m'])).code, 0);
});

test('compact --ttl 3x: exit 2, a one-line error and a hint on stderr, nothing on stdout, store untouched', async (t) => {
  const dir = await storeAged(t, { a: 1000 });
  const before = fs.readdirSync(dir).sort();
  const run = await compact(['--dir', dir, '--ttl', '3x']);
  t.is(run.code, 2);
  t.is(run.stdout, '');
  const err = lines(run.stderr);
  t.is(err.length, 2, run.stderr);
  t.regex(err[0]!, /^session-journal compact: .*--ttl.*"3x"/);
  t.regex(err[1]!, /^hint: /);
  t.deepEqual(fs.readdirSync(dir).sort(), before);
});

test('compact without --dir uses SESSION_JOURNAL_DIR; with neither it is a usage error', async (t) => {
  const dir = await storeAged(t, { a: 1000 });
  const run = await compact(['--json'], { env: withoutStoreEnv({ SESSION_JOURNAL_DIR: dir }) });
  t.is(run.code, 0, run.stderr);
  t.is(run.stderr, '');
  t.is((JSON.parse(run.stdout) as { status: string }).status, 'compacted');
  t.deepEqual(snapshotsIn(dir), ['snapshot-00000002.ndjson']);

  const none = await compact([]);
  t.is(none.code, 2);
  t.is(none.stdout, '');
  t.regex(none.stderr, /SESSION_JOURNAL_DIR/);
});

test('compact on a missing store: exit 4 with STORE_NOT_FOUND, and no directory is created', async (t) => {
  const dir = tempStoreDir(t);
  const run = await compact(['--dir', dir]);
  t.is(run.code, 4);
  t.is(run.stdout, '');
  const err = lines(run.stderr);
  t.is(err.length, 2, run.stderr);
  t.regex(err[0]!, /^session-journal compact: STORE_NOT_FOUND: /);
  t.regex(err[1]!, /^hint: /);
  t.false(fs.existsSync(dir));
});

test('compact while another compaction holds compact.lock: exit 3 after --lock-timeout', async (t) => {
  const dir = await storeAged(t, { a: 1000 });
  makeFreshLock(dir, 'compact.lock'); // not stale
  const run = await compact(['--dir', dir, '--lock-timeout', '300ms']);
  t.is(run.code, 3, run.stderr);
  t.is(run.stdout, '');
  t.regex(run.stderr, /LOCK_TIMEOUT/);
  t.regex(lines(run.stderr)[1] ?? '', /^hint: .*retry/);
  t.deepEqual(snapshotsIn(dir), [], 'nothing compacted');
  t.true(fs.existsSync(path.join(dir, 'compact.lock')), "the other compaction's lock is left alone");
});

test('compact on a group-writable store: exit 4 with UNSAFE_PERMISSIONS', async (t) => {
  const dir = await storeAged(t, { a: 1000 });
  fs.chmodSync(dir, 0o770);
  const run = await compact(['--dir', dir]);
  t.is(run.code, 4);
  t.is(run.stdout, '');
  t.regex(lines(run.stderr)[0] ?? '', /^session-journal compact: UNSAFE_PERMISSIONS: /);
  t.regex(lines(run.stderr)[1] ?? '', /^hint: chmod 700/);
  t.deepEqual(snapshotsIn(dir), []);
});

test('compact --help: exit 0, the usage on stdout, nothing on stderr', async (t) => {
  const run = await compact(['--help']);
  t.is(run.code, 0);
  t.is(run.stderr, '');
  t.regex(run.stdout, /^Usage: session-journal compact --dir DIR/);
  t.regex(run.stdout, /--ttl DURATION/);
});

test('compact --no-archive deletes folded segments instead of archiving them', async (t) => {
  const dir = await storeAged(t, { a: 1000 });
  const run = await compact(['--dir', dir, '--no-archive']);
  t.deepEqual(run, { code: 0, stdout: '', stderr: '' });
  t.false(fs.existsSync(path.join(dir, 'archive')));
  t.deepEqual(fs.readdirSync(dir).sort(), ['journal-00000002.ndjson', 'snapshot-00000002.ndjson']);
});

test('compact --max-sessions keeps the N most recently accessed', async (t) => {
  const dir = await storeAged(t, { s3: 3000, s2: 2000, s1: 1000 });
  const run = await compact(['--dir', dir, '--json', '--max-sessions', '2']);
  t.is(run.code, 0);
  t.deepEqual((JSON.parse(run.stdout) as { removed: unknown }).removed, { evicted: 1 });
  const bad = await compact(['--dir', dir, '--max-sessions', '0']);
  t.is(bad.code, 2);
});

test('compact refuses a store of another kind (STORE_KIND_MISMATCH, exit 4) and changes nothing; --kind events compacts it', async (t) => {
  const dir = tempStoreDir(t);
  const events = await JournalEventStore.open({ dir, autoCompact: false, clock: () => NOW });
  const id = await events.storeEvent('stream-1', { jsonrpc: '2.0', method: 'notifications/message', params: { n: 1 } } as never);
  await events.close();
  const before = fs.readdirSync(dir).sort();
  const bytes = fs.readFileSync(path.join(dir, 'journal-00000001.ndjson'));
  const refused = await compact(['--dir', dir]);
  t.is(refused.code, 4);
  t.regex(refused.stderr, /STORE_KIND_MISMATCH/);
  t.deepEqual(fs.readdirSync(dir).sort(), before);
  t.deepEqual(fs.readFileSync(path.join(dir, 'journal-00000001.ndjson')), bytes);
  const compacted = await compact(['--dir', dir, '--kind', 'events', '--json']);
  t.is(compacted.code, 0, compacted.stderr);
  t.is(JSON.parse(compacted.stdout).status, 'compacted');
  const reopened = await JournalEventStore.open({ dir, autoCompact: false, clock: () => NOW });
  t.is(await reopened.getStreamIdForEventId(id), 'stream-1');
  await reopened.close();
});

test('compact --now decides what is expired: an ISO instant or epoch ms', async (t) => {
  const dir = await storeAged(t, { fresh: 1000, twoDays: 2 * DAY });
  const removedAt = async (now: string) => {
    const run = await runBinary(['compact', '--dir', dir, '--json', '--ttl', '36h', '--now', now]);
    t.is(run.code, 0, `--now ${now}: ${run.stderr}`);
    return (JSON.parse(run.stdout) as { removed: Record<string, number> }).removed;
  };
  // A day before NOW, twoDays is one day old: within 36 h.
  t.deepEqual(await removedAt(String(NOW - DAY)), {}, 'epoch ms');
  t.deepEqual(await removedAt(new Date(NOW + 2 * HOUR).toISOString().replace('Z', '+00:00')), { expired: 1 }, 'an ISO instant with an offset');
  const { onWarning } = collectWarnings();
  t.deepEqual((await freshReplay(dir, onWarning)).map((s) => s.id), ['fresh']);
});

test('compact --now with something not a TIME: exit 2, one line naming --now and a hint, store untouched', async (t) => {
  const dir = await storeAged(t, { a: 1000 });
  const before = fingerprintOf(dir);
  for (const bad of ['yesterday', '2026-02-30T00:00:00Z', '2026-02-30', '-5', '1.5', '1e12', '99999999999999999999', '2x']) {
    const run = await runBinary(['compact', '--dir', dir, '--now', bad]);
    t.is(run.code, 2, `--now ${bad}`);
    t.is(run.stdout, '');
    const err = lines(run.stderr);
    t.is(err.length, 2, run.stderr);
    t.regex(err[0]!, /^session-journal compact: --now /);
    t.regex(err[1]!, /^hint: /);
  }
  t.deepEqual(fingerprintOf(dir), before);
});
