/**
 * `verify` beside a running compaction: real `compact` processes in a loop
 * move segments into archive/ and publish snapshots while a writer process
 * appends, and `verify` runs over and over in the meantime. Every run must
 * be clean (exit 0): never a false problem (exit 1), an ENOENT (exit 4) or an
 * internal error (70). Exit 3 is allowed: verify gave up after the store kept
 * changing under it (it then says so).
 */
import test from 'ava';
import { killAll, openChildren } from '../helpers/child-protocol.js';
import { timeline } from '../helpers/child-clock.js';
import { TEST_T0 } from '../helpers/fixture-now.js';
import { tempStoreDir } from '../helpers/temp-store.js';
import { runCli, type CliRun } from '../helpers/compaction-helpers.js';

const COMPACTIONS = 8;

test('verify in a loop while compact runs in a loop and a writer appends: every run exits 0 (or 3), never 1, 4 or 70', async (t) => {
  const dir = tempStoreDir(t);
  const [writer] = await openChildren(1, 'verify-writer', { dir, fsync: false, clock: timeline(TEST_T0) });
  t.teardown(() => killAll([writer!]));
  writer!.send({ op: 'write', writer: 'w', sessions: ['a', 'b', 'c'], count: 1_000_000, flushEvery: 1, pauseMs: 1 });
  while (writer!.acked < 20) await new Promise((resolve) => setTimeout(resolve, 10));

  let compactions = 0;
  let stop = false;
  const compacting = (async () => {
    try {
      while (compactions < COMPACTIONS) {
        const run = await runCli(['compact', '--dir', dir, '--ttl', '100000d']);
        t.is(run.code, 0, run.stderr);
        compactions++;
      }
    } finally {
      stop = true;
    }
  })();
  const runs: CliRun[] = [];
  while (!stop) runs.push(await runCli(['verify', '--dir', dir, '--json']));
  await compacting;
  runs.push(await runCli(['verify', '--dir', dir, '--json']));

  const bad = runs.filter((r) => r.code !== 0 && r.code !== 3);
  t.deepEqual(
    bad.map((r) => ({ code: r.code, stderr: r.stderr.slice(0, 400), problems: r.code === 1 ? (JSON.parse(r.stdout) as { problems: unknown[] }).problems.slice(0, 3) : undefined })),
    [],
  );
  t.true(runs.length >= 3, `verify ran ${runs.length} times beside ${compactions} compactions`);
  t.true(runs.filter((r) => r.code === 0).length >= 1, 'most runs verify clean');
});
