/**
 * A background commit that keeps failing on a real full disk (a loop-mounted
 * ext4 image filled to ENOSPC): the retries back off (1 s, 2 s, 4 s, ... up
 * to 60 s, each shortened by at most 20 %), the same error is warned only at
 * the 1st, 2nd, 4th, 8th ... failure, a success says RECOVERED once, and the
 * next failure starts again at 1 s. The retry timers run on fake timers
 * (@sinonjs/fake-timers, setTimeout only), so the delays are read exactly
 * off the fake clock, with no waiting for them; the disk and the commits are
 * real.
 */
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import FakeTimers from '@sinonjs/fake-timers';
import { Journal, type JournalWarning } from '../../src/index.js';
import { fillDisk, mountSmallExt4 } from '../helpers/small-fs.js';
import { TEST_T0 } from '../helpers/fixture-now.js';

/** When the first failure happened: the fake clock's start (nothing advances it before). */
const SINCE = new Date(TEST_T0).toISOString(); // fake clock start

/** Real timers, for waiting on the real commits while setTimeout is fake. */
const realSetTimeout = globalThis.setTimeout;

/** Waits (on real time) until `check`, polling every 5 ms; fails after 30 s. */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !check(); waited += 5) {
    if (waited > 30_000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => realSetTimeout(resolve, 5));
  }
}

test.serial('a background commit failing on a full disk is retried after 1 s, 2 s, 4 s, ... up to 60 s, warned at failures 1, 2, 4, 8; RECOVERED once; the next failure starts again at 1 s', async (t) => {
  const mount = mountSmallExt4(t, 4);
  const dir = path.join(mount, 'store');
  fs.mkdirSync(dir, { mode: 0o700 });
  const clock = FakeTimers.install({ now: TEST_T0, toFake: ['setTimeout', 'clearTimeout'] });
  t.teardown(() => clock.uninstall());
  const warnings: (JournalWarning & { at: number })[] = [];
  const journal = Journal.openSync({
    dir,
    consumer: { reset: () => undefined, restore: () => undefined, apply: () => undefined },
    clock: () => clock.now,
    onWarning: (w) => warnings.push({ ...w, at: clock.now }),
    flushOnExit: false,
  });
  journal.append('test.entry', { n: 0 });
  await journal.flush();

  /** Fires the one pending retry as soon as the failed attempt has armed it; returns its delay, read off the fake clock. */
  const nextRetry = async (): Promise<number> => {
    await until(() => clock.countTimers() === 1, 'the retry timer');
    const armedAt = clock.now;
    await clock.nextAsync();
    return clock.now - armedAt;
  };

  let filler = fillDisk(mount);
  journal.append('test.entry', { n: 1 });
  const delays: number[] = [];
  for (let i = 0; i < 9; i++) delays.push(await nextRetry());
  const nominal = [1, 2, 4, 8, 16, 32, 60, 60, 60].map((s) => s * 1000);
  delays.forEach((d, i) => t.true(d >= nominal[i]! * 0.8 && d <= nominal[i]!, `retry ${i + 1} after ${d} ms, nominal ${nominal[i]} ms`));
  await until(() => clock.countTimers() === 1, 'the 10th failure');

  const failed = warnings.filter((w) => w.code === 'COMMIT_FAILED');
  t.deepEqual(
    failed.map((w) => w.message.replace(/retrying in [\d.]+ s: .*$/, 'retrying in N s')),
    [
      'background commit failed; retrying in N s',
      `background commit failed again: 2 times in a row since ${SINCE} (each error is warned its 1st, 2nd, 4th, 8th, ... time); retrying in N s`,
      `background commit failed again: 4 times in a row since ${SINCE} (each error is warned its 1st, 2nd, 4th, 8th, ... time); retrying in N s`,
      `background commit failed again: 8 times in a row since ${SINCE} (each error is warned its 1st, 2nd, 4th, 8th, ... time); retrying in N s`,
    ],
    '10 failures, 4 warnings',
  );
  t.regex(failed[0]!.message, /ENOSPC/);

  fs.unlinkSync(filler);
  const lastDelay = await nextRetry();
  t.true(lastDelay >= 48_000 && lastDelay <= 60_000);
  await until(() => warnings.some((w) => w.code === 'RECOVERED'), 'the commit after the disk was freed');
  t.deepEqual(warnings.filter((w) => w.code === 'RECOVERED').map((w) => w.message), [`background commit works again after 10 failures in a row since ${SINCE}`]);
  t.is(clock.countTimers(), 0, 'nothing left to retry');
  await journal.flush();

  filler = fillDisk(mount);
  journal.append('test.entry', { n: 2 });
  const afterSuccess = await nextRetry();
  t.true(afterSuccess >= 800 && afterSuccess <= 1000, `after a success the backoff starts again at 1 s (${afterSuccess} ms)`);
  await until(() => clock.countTimers() === 1, 'the retry armed by the 2nd failure'); // the retried commit yields to the loop (real I/O) before it fails
  const fresh = warnings.filter((w) => w.code === 'COMMIT_FAILED').slice(4);
  t.is(fresh.length, 2, 'a new episode: warned at its 1st and 2nd failure');
  t.regex(fresh[0]!.message, /^background commit failed; retrying in/);
  fs.unlinkSync(filler);
  await until(() => clock.countTimers() === 1, 'the retry timer');
  await clock.nextAsync();
  await until(() => warnings.filter((w) => w.code === 'RECOVERED').length === 2, 'the second recovery');
  await journal.close();
  const lines = fs.readFileSync(path.join(dir, 'journal-00000001.ndjson'), 'utf8').split('\n').filter(Boolean);
  t.deepEqual(
    lines.map((l) => (JSON.parse(l) as { p: { n: number } }).p.n),
    [0, 1, 2],
    'each entry written once',
  );
});
