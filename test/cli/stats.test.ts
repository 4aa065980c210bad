/**
 * `session-journal stats`, run as the real binary against the committed
 * clean fixture store (fixtures/stores/verify-clean); --json is compared
 * with test/golden/stats/ (regenerate with UPDATE_GOLDEN=1 after checking).
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { tempStoreDir } from '../helpers/temp-store.js';
import { copyFixtureStore } from '../helpers/fixture-store.js';
import { matchesGoldenJson } from '../helpers/golden.js';
import { fingerprint, runCli } from '../helpers/compaction-helpers.js';
import { makeFreshLock } from '../helpers/held-lock.js';
import { STORES_NOW } from '../helpers/fixture-now.js';
import { SessionStore } from '../../src/index.js';

const GOLDEN = new URL('../../../test/golden/stats/', import.meta.url).pathname;
/** The fixture's snapshot gets this mtime, so "last compaction" is fixed (git does not keep mtimes). */
const COMPACTED_AT = new Date('2026-01-03T17:02:00.000Z');
/** The verify-* stores' documented now (fixtures/README.md). */
const AT_NOW = new Date(STORES_NOW.verify).toISOString();

function copyStore(t: ExecutionContext, name: string): string {
  const dir = copyFixtureStore(t, name, 'stores');
  fs.utimesSync(path.join(dir, 'snapshot-00000003.ndjson'), COMPACTED_AT, COMPACTED_AT);
  return dir;
}

const golden = (t: ExecutionContext, name: string, actual: unknown): void => matchesGoldenJson(t, path.join(GOLDEN, `${name}.json`), actual);

interface Stats {
  sessions: { total: number; live: number; expired: number };
  writers: Array<{ writer: string; records: number; lastSeen: string }>;
  segments: { live: number; archived: number };
  lastCompaction: string | null;
  recordsSinceSnapshot: number;
  head: { seq: number; h: string };
  journalBytes: number;
  archiveBytes: number;
}

test('stats --json on the clean fixture: the golden document, nothing on stderr, nothing changed', async (t) => {
  const dir = copyStore(t, 'verify-clean');
  const before = fingerprint(dir);
  const run = await runCli(['stats', '--dir', dir, '--json', '--now', AT_NOW]);
  t.is(run.code, 0, run.stderr);
  t.is(run.stderr, '');
  const stats = JSON.parse(run.stdout) as Stats;
  t.deepEqual(stats.sessions, { total: 3, live: 3, expired: 0 });
  t.deepEqual(stats.segments, { live: 1, archived: 2 });
  t.is(stats.lastCompaction, COMPACTED_AT.toISOString());
  t.is(stats.recordsSinceSnapshot, 9);
  t.is(stats.head.seq, 31);
  t.is(stats.journalBytes, fs.statSync(path.join(dir, 'journal-00000003.ndjson')).size);
  t.deepEqual(
    stats.writers.map((w) => [w.writer, w.records]),
    [
      ['4102@fixture-host', 6],
      ['4101@fixture-host', 2],
      ['4199@fixture-host', 1],
    ],
    'distinct writers of the live segment, most recently seen first (4199 is the compactor: its retention delete)',
  );
  golden(t, 'verify-clean', stats);
  t.deepEqual(fingerprint(dir), before);
});

test('stats counts sessions older than --ttl as expired', async (t) => {
  const dir = copyStore(t, 'verify-clean');
  const at = async (now: string, ttl?: string) => {
    const run = await runCli(['stats', '--dir', dir, '--json', '--now', now, ...(ttl ? ['--ttl', ttl] : [])]);
    t.is(run.code, 0, run.stderr);
    return (JSON.parse(run.stdout) as Stats).sessions;
  };
  // Last access: alpha 17:11, gamma 17:09, epsilon 17:08 on 2026-01-03.
  t.deepEqual(await at('2026-01-04T17:09:30Z'), { total: 3, live: 1, expired: 2 });
  t.deepEqual(await at('2026-01-03T17:10:30Z', '1m'), { total: 3, live: 1, expired: 2 });
  t.deepEqual(await at(AT_NOW, '10m'), { total: 3, live: 0, expired: 3 });
});

test('stats prints aligned key/value lines on a terminal-less stdout', async (t) => {
  const dir = copyStore(t, 'verify-clean');
  const run = await runCli(['stats', '--dir', dir, '--now', AT_NOW]);
  t.is(run.code, 0);
  const lines = run.stdout.trimEnd().split('\n');
  const column = lines[0]!.search(/ {2}\S/) + 2;
  for (const line of lines) t.regex(line.slice(0, column), /^(\S[\w ]*\S)? +$/, line);
  t.regex(run.stdout, /^sessions +3 live, 0 expired/m);
  t.regex(run.stdout, /^segments +1 live, 2 archived$/m);
  t.regex(run.stdout, /^last compaction +2026-01-03T17:02:00\.000Z$/m);
  t.regex(run.stdout, /^writers +4102@fixture-host {2}6 records, last seen 2026-01-03T17:11:00\.000Z$/m);
  t.regex(run.stdout, /^head +31:[0-9a-f]{64}$/m);
});

test('stats on a store without compaction: no snapshot, last compaction null; writers of this process', async (t) => {
  const dir = tempStoreDir(t);
  const store = SessionStore.openSync({ dir, fsync: false, autoCompact: false });
  store.ensureSession('a');
  store.ensureSession('b');
  await store.close();
  const run = await runCli(['stats', '--dir', dir, '--json']);
  t.is(run.code, 0, run.stderr);
  const stats = JSON.parse(run.stdout) as Stats & { snapshot: string | null };
  t.is(stats.lastCompaction, null);
  t.is(stats.snapshot, null);
  t.deepEqual(stats.sessions, { total: 2, live: 2, expired: 0 });
  t.deepEqual(stats.writers.map((w) => w.records), [2]);
  t.is(stats.archiveBytes, 0);
  t.is(stats.recordsSinceSnapshot, 2);
});

test("stats shows the automatic compaction's claim: a failure with its reason (--json and the table), a damaged claim, none", async (t) => {
  const dir = tempStoreDir(t);
  const store = SessionStore.openSync({ dir, fsync: false, autoCompact: false });
  store.ensureSession('a');
  await store.close();
  const none = await runCli(['stats', '--dir', dir, '--json']);
  t.is((JSON.parse(none.stdout) as { autoCompaction: unknown }).autoCompaction, null);
  t.regex((await runCli(['stats', '--dir', dir])).stdout, /^auto compaction +none running, none failed$/m);

  const at = STORES_NOW.verify;
  const message = 'session-journal compact: NOT_A_DIRECTORY: store file archive is not a directory\nhint: move it out of the store';
  fs.writeFileSync(path.join(dir, 'compact.claim'), JSON.stringify({ state: 'failed', at, by: '77@host-b', message }) + '\n', { mode: 0o600 });
  const failed = await runCli(['stats', '--dir', dir, '--json']);
  t.is(failed.code, 0, failed.stderr);
  t.deepEqual((JSON.parse(failed.stdout) as { autoCompaction: unknown }).autoCompaction, { state: 'failed', at: new Date(at).toISOString(), by: '77@host-b', message });
  const table = await runCli(['stats', '--dir', dir]);
  t.regex(table.stdout, new RegExp(`^auto compaction +failed since ${new Date(at).toISOString().replace(/\./g, '\\.')} \\(77@host-b\\): session-journal compact: NOT_A_DIRECTORY: store file archive is not a directory$`, 'm'));

  fs.writeFileSync(path.join(dir, 'compact.claim'), '{"state":"runn', { mode: 0o600 });
  t.deepEqual((JSON.parse((await runCli(['stats', '--dir', dir, '--json'])).stdout) as { autoCompaction: unknown }).autoCompaction, { state: 'damaged' });
});

test('stats: missing store exit 4, bad --now or --ttl exit 2, a held lock does not matter', async (t) => {
  const missing = await runCli(['stats', '--dir', tempStoreDir(t)]);
  t.is(missing.code, 4);
  t.regex(missing.stderr, /STORE_NOT_FOUND/);
  const dir = copyStore(t, 'verify-clean');
  t.is((await runCli(['stats', '--dir', dir, '--now', 'yesterday'])).code, 2);
  t.is((await runCli(['stats', '--dir', dir, '--ttl', '3x'])).code, 2);
  makeFreshLock(dir, 'journal.lock');
  t.is((await runCli(['stats', '--dir', dir])).code, 0);
  t.true(fs.existsSync(path.join(dir, 'journal.lock')));
});

test('stats on a damaged store reports the replay warnings on stderr and still prints', async (t) => {
  const dir = copyStore(t, 'verify-torn-line');
  const run = await runCli(['stats', '--dir', dir, '--json']);
  t.is(run.code, 0);
  t.regex(run.stderr, /1 replay warning; run session-journal verify/);
  t.is((JSON.parse(run.stdout) as { warnings: number }).warnings, 1);
});
