/**
 * Automatic compaction in short-lived processes (a hook's forks: open, one
 * set, closeSync, exit). closeSync triggers it as a durable commit does; the
 * child outlives the fork, also when the fork's whole process group is
 * SIGKILLed (a hook runner's timeout); and the store's claim
 * (`compact.claim`) is what the next process learns from: one child at a
 * time, a failure backed off and warned about in the processes after it, a
 * claim left by a killed child, from a clock far ahead, or damaged (a
 * directory, garbage) replaced rather than obeyed forever.
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { KeyValueStore, WarningCodes } from '../../src/index.js';
import { AUTO_COMPACT_RETRY_MS } from '../../src/compact/auto-compact.js';
import { readClaim } from '../../src/storage/file/compaction-claim.js';
import { collectWarnings, helperScript, tempStoreDir } from '../helpers/temp-store.js';
import { T0, snapshotsIn, waitFor } from '../helpers/compaction-helpers.js';

const FORK = helperScript('kv-hook-fork.js');
const MIN_BYTES = 8 * 1024;
const VALUE_BYTES = 1000;

interface ForkLine {
  type: 'warning' | 'closed';
  code?: string;
  message?: string;
  claim?: string | null;
}

/** One fork: sets `key` at `clockMs`; resolves with what it said once it exited and its pipes closed. */
function runFork(dir: string, clockMs: number, key: string, mode?: '--no-close'): Promise<{ code: number | null; lines: ForkLine[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FORK, dir, String(clockMs), key, String(VALUE_BYTES), String(MIN_BYTES), ...(mode ? [mode] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.on('error', reject);
    // 'close': the pipes too. A compaction child that kept the fork's stdout would hold this back.
    child.on('close', (code) => resolve({ code, lines: out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as ForkLine) }));
  });
}

/** Forks setting key-0, key-1, ... one after another until the store's claim shows a compaction was started. */
async function forkUntilClaimed(dir: string, clockMs: number, max = 40): Promise<{ forks: number; lines: ForkLine[] }> {
  const lines: ForkLine[] = [];
  for (let i = 0; i < max; i++) {
    const run = await runFork(dir, clockMs, `key-${i}`);
    if (run.code !== 0) throw new Error(`fork ${i} exited ${run.code}`);
    lines.push(...run.lines);
    if (run.lines.some((l) => l.type === 'closed' && l.claim !== null)) return { forks: i + 1, lines };
  }
  throw new Error(`no fork of ${max} started a compaction`);
}

const keysIn = (dir: string, clockMs: number): string[] => {
  const kv = KeyValueStore.openSync({ dir, clock: () => clockMs, autoCompact: false, readOnly: true });
  const keys = [...kv.entries()].map(([k]) => k).sort();
  kv.closeSync();
  return keys;
};
const expectedKeys = (n: number) => Array.from({ length: n }, (_, i) => `key-${i}`).sort();
const claimOf = (dir: string) => readClaim(dir);
const noClaim = (dir: string) => claimOf(dir) === undefined;

test('forks that set one key and exit right after closeSync get their store compacted: the child outlives them, and no fork waits for it', async (t) => {
  const dir = tempStoreDir(t);
  const { forks, lines } = await forkUntilClaimed(dir, T0);
  t.true(forks > 1, 'the first forks stay under minBytes');
  t.deepEqual(lines.filter((l) => l.type === 'warning'), []);
  t.true(await waitFor(() => snapshotsIn(dir).length > 0 && noClaim(dir), 20_000, 25), 'a snapshot appears and the child removes its claim');
  t.true(await waitFor(() => !fs.existsSync(path.join(dir, 'compact.lock')), 10_000));
  t.deepEqual(keysIn(dir, T0), expectedKeys(forks), 'every key of every fork');
});

test('a fork that never closes its store (its exit hook writes the set) starts the compaction from the exit hook', async (t) => {
  const dir = tempStoreDir(t);
  let n = 0;
  const started = () => fs.existsSync(dir) && (snapshotsIn(dir).length > 0 || !noClaim(dir));
  for (; n < 40 && !started(); n++) t.is((await runFork(dir, T0, `key-${n}`, '--no-close')).code, 0);
  t.true(n < 40, 'a compaction was started');
  t.true(await waitFor(() => snapshotsIn(dir).length > 0 && noClaim(dir), 20_000, 25));
  t.deepEqual(keysIn(dir, T0), expectedKeys(n));
});

test("a compaction started by a fork survives a SIGKILL of the fork's whole process group (a hook runner's timeout)", async (t) => {
  const dir = tempStoreDir(t);
  // Fill to just under minBytes with forks that exit, then one that stays until killed.
  let n = 0;
  while (fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.startsWith('journal-')).reduce((s, f) => s + fs.statSync(path.join(dir, f)).size, 0) < MIN_BYTES - 2 * VALUE_BYTES : true) {
    const run = await runFork(dir, T0, `key-${n++}`);
    t.is(run.code, 0);
  }
  const child = spawn(process.execPath, [FORK, dir, String(T0), `key-${n++}`, String(VALUE_BYTES * 3), String(MIN_BYTES), '--wait'], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  const closed = await new Promise<ForkLine>((resolve) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      const line = out.split('\n').find((l) => l.includes('"closed"'));
      if (line) resolve(JSON.parse(line) as ForkLine);
    });
  });
  t.is(closed.claim, 'running', 'its closeSync started a compaction');
  // The kill comes milliseconds after the spawn, long before a Node child can have compacted anything.
  t.deepEqual(snapshotsIn(dir), [], 'not compacted yet when the group is killed');
  const exited = new Promise((resolve) => child.on('exit', resolve));
  process.kill(-child.pid!, 'SIGKILL');
  t.is(await exited, null);
  t.true(await waitFor(() => snapshotsIn(dir).length > 0 && noClaim(dir), 20_000, 25), 'the compaction finished after its starter was killed');
  t.deepEqual(keysIn(dir, T0), expectedKeys(n));
});

test('a failed compaction is recorded in the claim: the next process warns with its reason and starts none until the back-off has passed, then tries again', async (t) => {
  const dir = tempStoreDir(t);
  KeyValueStore.openSync({ dir, autoCompact: false }).closeSync();
  // A file in place of archive/ (once the store exists): every compaction fails fast (NOT_A_DIRECTORY) without changing the store.
  fs.writeFileSync(path.join(dir, 'archive'), 'not a directory\n', { mode: 0o600 });
  const { forks } = await forkUntilClaimed(dir, T0);
  t.true(await waitFor(() => (claimOf(dir) as { state?: string } | undefined)?.state === 'failed', 20_000, 25), 'the child records its failure');
  const failed = claimOf(dir) as { state: string; at: number; message: string };
  t.is(failed.at, T0, "on the store's clock");
  t.regex(failed.message, /NOT_A_DIRECTORY/);

  const next = await runFork(dir, T0 + AUTO_COMPACT_RETRY_MS / 2, 'after-failure');
  t.deepEqual(
    next.lines.filter((l) => l.type === 'warning').map((l) => l.code),
    [WarningCodes.AUTO_COMPACT_FAILED],
    'the next process says so, once',
  );
  t.regex(next.lines.find((l) => l.type === 'warning')!.message!, /NOT_A_DIRECTORY/);
  t.deepEqual(claimOf(dir), failed, 'and starts no child: the claim is as the failure left it');

  const later = await runFork(dir, T0 + AUTO_COMPACT_RETRY_MS + 1, 'after-back-off');
  t.is(later.lines.find((l) => l.type === 'closed')!.claim, 'running', 'once the back-off has passed, a process tries again');
  t.true(await waitFor(() => (claimOf(dir) as { at?: number } | undefined)?.at === T0 + AUTO_COMPACT_RETRY_MS + 1 && (claimOf(dir) as { state: string }).state === 'failed', 20_000, 25));
  t.deepEqual(keysIn(dir, T0 + AUTO_COMPACT_RETRY_MS + 1), [...expectedKeys(forks), 'after-back-off', 'after-failure'].sort(), 'nothing written was lost meanwhile');
  t.deepEqual(snapshotsIn(dir), []);
});

/** A store past minBytes, written in-process with auto-compaction off; then the claim is set by `plant`. */
function storePastMinBytes(t: ExecutionContext, plant: (claimFile: string) => void): string {
  const dir = tempStoreDir(t);
  const kv = KeyValueStore.openSync({ dir, clock: () => T0, fsync: false, autoCompact: false });
  for (let i = 0; i < 12; i++) kv.set(`key-${i}`, 'v'.repeat(VALUE_BYTES));
  kv.closeSync();
  plant(path.join(dir, 'compact.claim'));
  return dir;
}
const claimJson = (state: string, at: number) => JSON.stringify({ state, at, by: '1@elsewhere' }) + '\n';

for (const [what, plant] of [
  ['left running by a child that was killed (older than the back-off)', (f: string) => fs.writeFileSync(f, claimJson('running', T0 - AUTO_COMPACT_RETRY_MS - 1), { mode: 0o600 })],
  ["from a clock far ahead of this store's", (f: string) => fs.writeFileSync(f, claimJson('failed', T0 + 10 * AUTO_COMPACT_RETRY_MS), { mode: 0o600 })],
  ['of torn bytes', (f: string) => fs.writeFileSync(f, '{"state":"runn', { mode: 0o600 })],
  ['that is a symbolic link (to a file outside the store, left alone)', (f: string) => {
    const outside = path.join(path.dirname(path.dirname(f)), 'outside.json');
    fs.writeFileSync(outside, claimJson('running', T0), { mode: 0o600 });
    fs.symlinkSync(outside, f);
  }],
] as const) {
  test(`a claim ${what} is replaced, and the store is compacted`, async (t) => {
    const dir = storePastMinBytes(t, plant);
    const outside = path.join(path.dirname(dir), 'outside.json');
    const before = fs.existsSync(outside) ? fs.readFileSync(outside, 'utf8') : undefined;
    const run = await runFork(dir, T0, 'trigger');
    t.deepEqual(run.lines.filter((l) => l.type === 'warning'), []);
    t.is(run.lines.find((l) => l.type === 'closed')!.claim, 'running');
    t.true(await waitFor(() => snapshotsIn(dir).length > 0 && noClaim(dir), 20_000, 25));
    if (before !== undefined) t.is(fs.readFileSync(outside, 'utf8'), before, 'the link was removed, not followed');
    t.is(keysIn(dir, T0).length, 13);
  });
}

test("a fresh claim of another process's running compaction: this one starts none", async (t) => {
  const dir = storePastMinBytes(t, (f) => fs.writeFileSync(f, claimJson('running', T0 - 1000), { mode: 0o600 }));
  const run = await runFork(dir, T0, 'trigger');
  t.deepEqual(run.lines.filter((l) => l.type === 'warning'), [], 'running is no failure');
  t.deepEqual(claimOf(dir), { state: 'running', at: T0 - 1000, by: '1@elsewhere' }, 'left as it was');
  t.deepEqual(snapshotsIn(dir), []);
});

test('a directory where the claim belongs: a warning that says what to move, no child, and nothing written is lost', async (t) => {
  const dir = storePastMinBytes(t, (f) => fs.mkdirSync(f, { mode: 0o700 }));
  const run = await runFork(dir, T0, 'trigger');
  const warnings = run.lines.filter((l) => l.type === 'warning');
  t.deepEqual(warnings.map((l) => l.code), [WarningCodes.AUTO_COMPACT_FAILED]);
  t.regex(warnings[0]!.message!, /compact\.claim/);
  t.deepEqual(snapshotsIn(dir), []);
  t.is(keysIn(dir, T0).length, 13);
});

test('two stores of one directory (two processes, as far as their compactors know) due at once: the one that claims starts the only child', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const open = () => KeyValueStore.openSync({ dir, clock: () => T0, fsync: false, onWarning, autoCompact: { minBytes: MIN_BYTES, growthPercent: 100 } });
  const a = open();
  const b = open();
  const running = (kv: KeyValueStore) => (kv as unknown as { autoCompactor: { running?: Promise<number> } }).autoCompactor.running;
  for (let i = 0; i < 12; i++) b.set(`b-${i}`, 'v'.repeat(VALUE_BYTES));
  b.flushSync();
  t.truthy(running(b), 'b claimed and started a child');
  a.set('a-0', 'v'.repeat(VALUE_BYTES));
  a.flushSync();
  t.is(running(a), undefined, "a found b's claim");
  t.true(await waitFor(() => running(b) === undefined, 20_000, 25));
  a.closeSync();
  b.closeSync();
  t.true(noClaim(dir));
  t.is(snapshotsIn(dir).length, 1);
  t.deepEqual(warnings, []);
});
