/**
 * The same clock skew on a real clock: processes run under libfaketime
 * (`faketime -f +3650d`, 10 years ahead), with no `clock` option anywhere.
 * The store here is written on this machine's clock; the test itself never
 * reads it. Skipped, saying why, only when faketime cannot run node.
 */
import { spawnSync } from 'node:child_process';
import test, { type ExecutionContext } from 'ava';
import { SessionStore } from '../../src/index.js';
import { StoreChild, killAll, readJournalLines } from '../helpers/child-protocol.js';
import { fingerprint, freshReplay, runCli } from '../helpers/compaction-helpers.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';

const TEN_YEARS_AHEAD = ['faketime', '-f', '+3650d'];

/** Run in the child under faketime: its (faked) clock's year, which is what the probe checks. */
const PRINT_CHILD_CLOCK_YEAR = 'process.stdout.write(String(new Date().getUTCFullYear()))'; // the child's own clock

/** Why faketime cannot be used here, or undefined when it can. */
function faketimeMissing(): string | undefined {
  const probe = spawnSync(TEN_YEARS_AHEAD[0]!, [...TEN_YEARS_AHEAD.slice(1), process.execPath, '-e', PRINT_CHILD_CLOCK_YEAR], { encoding: 'utf8', timeout: 20_000 });
  if (probe.error) return `faketime is not installed (${(probe.error as NodeJS.ErrnoException).code}); apt-get install faketime`;
  if (probe.status !== 0) return `faketime cannot run node (exit ${probe.status}): ${probe.stderr.trim()}`;
  const child = Number(probe.stdout);
  const here = spawnSync(process.execPath, ['-e', PRINT_CHILD_CLOCK_YEAR], { encoding: 'utf8' });
  if (!(child - Number(here.stdout) >= 9)) return `faketime did not move node's clock (${here.stdout} -> ${probe.stdout})`;
  return undefined;
}

const missing = faketimeMissing();
/** These run on a real skewed clock or fail saying why: a skipped test proves nothing (.ci/run installs faketime). */
const realClockTest = (title: string, body: (t: ExecutionContext) => Promise<void>): void =>
  test(title, async (t) => {
    if (missing) return t.fail(`needs libfaketime (the Debian package faketime): ${missing}`);
    await body(t);
  });

realClockTest('a writer on a real clock 10 years ahead hides the others\' sessions but deletes none of them', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const store = SessionStore.openSync({ dir, fsync: false, autoCompact: false, onWarning });
  t.teardown(() => store.closeSync());
  for (const id of ['a1', 'a2']) {
    store.ensureSession(id);
    store.addTurn(id, { prompt: 'here', response: 'r', timestamp: new Date(0) });
  }
  await store.flush();

  const children: StoreChild[] = [];
  t.teardown(() => killAll(children));
  const fast = new StoreChild('faketime-10y', { wrapper: TEN_YEARS_AHEAD });
  children.push(fast);
  await fast.request({ op: 'open', dir, fsync: false, clock: 'system' }, 'opened'); // its own clock, 10 years ahead for real
  t.deepEqual((await fast.request({ op: 'list' }, 'list')).sessions, [], 'by its clock every session is 10 years idle');
  await fast.request({ op: 'ops', ops: [{ k: 'ensure', id: 'f1' }, { k: 'turn', id: 'f1', prompt: 'later' }, { k: 'list' }, { k: 'get', id: 'a1' }] }, 'flushed');
  await fast.close();
  t.deepEqual(fast.warnings, []);

  t.deepEqual(store.listSessions().map((s) => s.id).sort(), ['a1', 'a2', 'f1']);
  t.deepEqual(readJournalLines(dir).filter((l) => l.record?.t === 'session.delete'), []);
  store.addTurn('a2', { prompt: 'still here', response: 'r', timestamp: new Date(0) });
  await store.close();
  const replay = await freshReplay(dir, onWarning);
  t.deepEqual(
    replay.map((s) => [s.id, s.turns.map((turn) => turn.prompt)]),
    [
      ['a1', ['here']],
      ['a2', ['here', 'still here']],
      ['f1', ['later']],
    ],
  );
  t.deepEqual(warnings, []);
});

realClockTest('compact on a real clock 10 years ahead exits 5 (CLOCK_SKEW) and changes nothing', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const store = SessionStore.openSync({ dir, fsync: false, autoCompact: false, onWarning });
  store.ensureSession('live');
  await store.close();
  const before = fingerprint(dir);
  const run = await runCli(['compact', '--dir', dir], { wrapper: TEN_YEARS_AHEAD });
  t.is(run.code, 5, run.stderr);
  t.is(run.stdout, '');
  t.regex(run.stderr, /CLOCK_SKEW/);
  t.deepEqual(fingerprint(dir), before);
  t.deepEqual((await freshReplay(dir, onWarning)).map((s) => s.id), ['live']);
  t.deepEqual(warnings, []);
});

realClockTest('compact 10 years ahead with --max-clock-skew raised past it: runs, yet expires nothing in use and prunes no young archive file', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const store = SessionStore.openSync({ dir, fsync: false, autoCompact: false, onWarning });
  store.ensureSession('live');
  await store.close();
  t.is((await runCli(['compact', '--dir', dir])).code, 0); // on this machine's clock: archive/ gets a young file
  const writer = SessionStore.openSync({ dir, fsync: false, autoCompact: false, onWarning });
  writer.ensureSession('also-live');
  await writer.close();
  const run = await runCli(['compact', '--dir', dir, '--max-clock-skew', '4000d', '--json'], { wrapper: TEN_YEARS_AHEAD });
  t.is(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout) as { status: string; removed: Record<string, number>; archiveFilesPruned: number };
  t.is(result.status, 'compacted');
  t.deepEqual(result.removed, {});
  t.is(result.archiveFilesPruned, 0);
  t.deepEqual((await freshReplay(dir, onWarning)).map((s) => s.id), ['also-live', 'live']);
  t.deepEqual(warnings, []);
});

test('compact --max-clock-skew takes a duration; anything else is a usage error (exit 2)', async (t) => {
  const dir = tempStoreDir(t);
  const run = await runCli(['compact', '--dir', dir, '--max-clock-skew', 'soon']);
  t.is(run.code, 2);
  t.is(run.stdout, '');
});
