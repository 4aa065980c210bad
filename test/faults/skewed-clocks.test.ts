/**
 * Writers whose real clocks disagree (libfaketime: +2 days, +10 years, and
 * one on time) contend for the lock of one store. The lock's stale check
 * must not let a clock that runs ahead take a lock that is in use, and
 * whatever the lock does, the commit fence must keep every acknowledged turn
 * exactly once. The stores' record clocks are explicit; only the processes'
 * own clocks (Date.now, file mtimes they set) are skewed.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import test from 'ava';
import { expectedPrompts, replayPrompts, spawnFaultChild } from '../helpers/fault-children.js';
import { tempStoreDir } from '../helpers/temp-store.js';

/** The fixtures' "now" for this family: the writers' record clocks start here. */
const NOW = Date.UTC(2026, 10, 21, 9, 0, 0);
const COUNT = 250;
const SKEWS: Array<{ name: string; wrapper: string[] }> = [
  { name: 'ontime', wrapper: [] },
  { name: 'ahead2d', wrapper: ['faketime', '-f', '+2d'] },
  { name: 'ahead10y', wrapper: ['faketime', '-f', '+3650d'] },
  { name: 'behind2d', wrapper: ['faketime', '-f', '-2d'] },
];

test('writers on real clocks from 2 days behind to 10 years ahead share one lock: every acknowledged turn once, in order', async (t) => {
  const probe = spawnSync('faketime', ['-f', '+3650d', process.execPath, '-e', 'process.stdout.write(String(new Date().getUTCFullYear()))'], { encoding: 'utf8' });
  t.is(probe.status, 0, `faketime must run node here (.ci/run installs it): ${probe.error?.message ?? probe.stderr}`);
  t.true(Number(probe.stdout) >= new Date(NOW).getUTCFullYear() + 9, `faketime moved the child's clock (${probe.stdout})`);

  const dir = tempStoreDir(t);
  fs.mkdirSync(dir, { mode: 0o700 });
  const writers = SKEWS.map(({ name, wrapper }, i) => spawnFaultChild({ dir, name, mode: 'write', count: COUNT, payloadBytes: 200, flushEvery: 1, clockStart: NOW + i * 1_000_000, lockStaleMs: 2000 }, wrapper));
  t.teardown(() => writers.forEach((w) => w.kill()));
  await Promise.all(writers.map((w) => w.next('done', 180_000)));

  const fresh = await replayPrompts(dir, NOW);
  for (const w of writers) {
    t.deepEqual(fresh[`${w.name}-session`], expectedPrompts(w.name, COUNT), `${w.name}: every acknowledged turn once, in order`);
  }
  const compromised = writers.map((w) => `${w.name}: ${w.messages.filter((m) => m.type === 'warning' && m.code === 'LOCK_COMPROMISED').length}`);
  t.log(`LOCK_COMPROMISED warnings per writer: ${compromised.join(', ')}`);
});
