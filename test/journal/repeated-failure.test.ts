/**
 * RepeatedFailure, the collapsing of COMMIT_FAILED and CATCH_UP_FAILED
 * warnings: each message at its 1st, 2nd, 4th, 8th, ... occurrence in a run
 * of failures, RECOVERED once after a success, on an explicit clock.
 */
import test from 'ava';
import { RepeatedFailure, type JournalWarning } from '../../src/engine/warnings.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { TEST_T0 } from '../helpers/fixture-now.js';

/** When the first failure happens: the fake clock's start. */
const FIRST = new Date(TEST_T0).toISOString(); // fake clock start

function reporter() {
  const clock = new FakeClock(TEST_T0);
  const warnings: JournalWarning[] = [];
  const failure = new RepeatedFailure('COMMIT_FAILED', 'background commit', '/store', (w) => warnings.push(w), clock.read);
  return { clock, warnings, failure };
}

test('100 failures of one error: 7 warnings (1, 2, 4, ..., 64), each with the count and the time of the first; one RECOVERED', (t) => {
  const { clock, warnings, failure } = reporter();
  for (let i = 0; i < 100; i++) {
    failure.failed('ENOSPC', 'retrying');
    clock.advance(60_000);
  }
  t.is(warnings.length, 7);
  t.is(warnings[0]!.message, 'background commit failed; retrying: ENOSPC');
  t.is(warnings[6]!.message, `background commit failed again: 64 times in a row since ${FIRST} (each error is warned its 1st, 2nd, 4th, 8th, ... time); retrying: ENOSPC`);
  failure.succeeded();
  failure.succeeded();
  t.deepEqual(warnings.slice(7), [{ code: 'RECOVERED', message: `background commit works again after 100 failures in a row since ${FIRST}`, file: '/store' }]);
});

test('two errors taking turns are collapsed each on its own; a new error is warned at once; after a success the count starts over', (t) => {
  const { warnings, failure } = reporter();
  for (let i = 0; i < 16; i++) failure.failed(i % 2 === 0 ? 'lock: ENOSPC' : 'write: ENOSPC', 'retrying');
  t.is(warnings.length, 8, 'each of the two at its 1st, 2nd, 4th and 8th time');
  failure.failed('EIO', 'retrying');
  t.is(warnings.length, 9);
  t.regex(warnings[8]!.message, /failed again: 17 times in a row .*: EIO$/);
  failure.succeeded();
  failure.failed('EIO', 'retrying');
  t.is(warnings[10]!.message, 'background commit failed; retrying: EIO', 'a new run of failures');
});

test('a success after failures no one was warned of says nothing', (t) => {
  const { warnings, failure } = reporter();
  failure.succeeded();
  t.deepEqual(warnings, []);
});
