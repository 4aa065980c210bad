/**
 * `session-journal compact --kind kv` folds a KeyValueStore directory with
 * --ttl and --max-entries, and refuses a store of another kind, as `--kind
 * sessions` refuses a kv store. (Retention itself, TTL then LRU journaled as
 * kv.delete records, runs on every backend in
 * test/conformance/kv-retention.test.ts.)
 */
import test from 'ava';
import { ErrorCodes, KeyValueStore, SessionStore } from '../../src/index.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { TEST_T0 } from '../helpers/fixture-now.js';
import { tempStoreDir } from '../helpers/temp-store.js';
import { fingerprint, runCli } from '../helpers/compaction-helpers.js';

const MINUTE = 60_000;

/** A store with keys last used the given number of minutes before `now`, set in that order (oldest first). */
async function storeWithAges(dir: string, now: number, ages: Record<string, number>): Promise<void> {
  const clock = new FakeClock(0);
  const kv = KeyValueStore.openSync({ dir, clock: clock.read, fsync: false, autoCompact: false });
  for (const [key, age] of Object.entries(ages).sort((a, b) => b[1] - a[1])) {
    clock.now = now - age * MINUTE;
    kv.set(key, `value-${key}`);
  }
  await kv.close();
}

const keysOf = (kv: KeyValueStore) => [...kv.entries()].map(([k]) => k);

test('session-journal compact --kind kv folds a KeyValueStore with --ttl and --max-entries', async (t) => {
  const dir = tempStoreDir(t);
  await storeWithAges(dir, TEST_T0, { a: 90, b: 30, c: 20, d: 10 });
  const run = await runCli(['compact', '--dir', dir, '--kind', 'kv', '--ttl', '1h', '--max-entries', '2', '--now', new Date(TEST_T0).toISOString(), '--json'], { timeoutMs: 60_000 });
  t.is(run.code, 0, run.stderr);
  t.is(run.stderr, '');
  const result = JSON.parse(run.stdout) as { status: string; removed: Record<string, number>; kept: number };
  t.deepEqual([result.status, result.removed, result.kept], ['compacted', { expired: 1, evicted: 1 }, 2]);
  const kv = KeyValueStore.openSync({ dir, clock: () => TEST_T0, autoCompact: false });
  t.deepEqual(keysOf(kv), ['d', 'c']);
  kv.closeSync();
});

test('compact refuses a kv store with --kind sessions and a session store with --kind kv (exit 4, STORE_KIND_MISMATCH, with the right hint); nothing changed', async (t) => {
  const now = new Date(TEST_T0).toISOString();
  const kvDir = tempStoreDir(t);
  await storeWithAges(kvDir, TEST_T0, { a: 1, b: 2 });
  const sessionsDir = tempStoreDir(t);
  const sessions = SessionStore.openSync({ dir: sessionsDir, clock: () => TEST_T0, autoCompact: false, fsync: false });
  sessions.createSession();
  await sessions.close();

  for (const [dir, kind, found, hint] of [
    [kvDir, 'sessions', '2 kv.* records', 'a KeyValueStore is compacted with --kind kv'],
    [sessionsDir, 'kv', '1 session.* records', 'a session store is compacted with --kind sessions (the default)'],
    [kvDir, 'events', '2 kv.* records', 'a KeyValueStore is compacted with --kind kv'],
  ] as const) {
    const before = fingerprint(dir);
    const run = await runCli(['compact', '--dir', dir, '--kind', kind, '--now', now], { timeoutMs: 60_000 });
    t.is(run.code, 4, `${kind}: ${run.stderr}`);
    t.deepEqual(run.stderr.split('\n').filter((l) => l !== ''), [
      `session-journal compact: STORE_KIND_MISMATCH: ${dir} holds ${found} and no ${kind === 'sessions' ? 'session' : kind === 'events' ? 'event' : 'kv'}.* record; this compaction folds ${kind === 'sessions' ? 'session' : kind === 'events' ? 'event' : 'kv'}.* records, so nothing was changed`,
      `hint: ${hint}`,
    ]);
    t.deepEqual(fingerprint(dir), before);
  }

  // Once compacted, a kv store holds only snapshot entries: still refused by the session compactor.
  t.is((await runCli(['compact', '--dir', kvDir, '--kind', 'kv', '--now', now], { timeoutMs: 60_000 })).code, 0);
  const err = await t.throwsAsync(import('../../src/index.js').then((api) => api.compactSessions({ dir: kvDir, now: () => TEST_T0 })));
  t.is((err as { code?: string }).code, ErrorCodes.STORE_KIND_MISMATCH);
});

test('compact: --max-entries is for --kind kv only and --max-sessions for sessions only (exit 2)', async (t) => {
  const dir = tempStoreDir(t);
  await storeWithAges(dir, TEST_T0, { a: 1 });
  for (const args of [['--kind', 'kv', '--max-sessions', '5'], ['--max-entries', '5'], ['--kind', 'events', '--max-entries', '5'], ['--kind', 'cache']]) {
    const run = await runCli(['compact', '--dir', dir, ...args], { timeoutMs: 60_000 });
    t.is(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
  }
});
