/** The key names of docs/FORMAT.md's table, from a validated prefix. */
import test from 'ava';
import { storeKeys, validatePrefix } from '../../src/storage/redis/keys.js';
import { SessionJournalError } from '../../src/errors.js';

test('every key of a store shares the hash tag {P}', (t) => {
  const k = storeKeys('app.sessions:eu-1');
  t.is(k.prefix, 'app.sessions:eu-1');
  t.is(k.meta, '{app.sessions:eu-1}:meta');
  t.is(k.log, '{app.sessions:eu-1}:log');
  t.is(k.head, '{app.sessions:eu-1}:head');
  t.is(k.snap, '{app.sessions:eu-1}:snap');
  t.is(k.fence, '{app.sessions:eu-1}:fence');
  t.is(k.lock, '{app.sessions:eu-1}:lock');
  t.is(k.chunk(7, 0), '{app.sessions:eu-1}:snap:7:0');
  t.is(k.chunk(7, 12), '{app.sessions:eu-1}:snap:7:12');
  t.is(k.chunkPrefix(7), '{app.sessions:eu-1}:snap:7:');
  t.throws(() => k.chunk(0, 0), { instanceOf: RangeError });
  t.throws(() => k.chunk(1, -1), { instanceOf: RangeError });
});

for (const bad of ['', 'a b', 'x{y}', 'a}b', 'é', 'x'.repeat(129), 'tab\t', 'a*b']) {
  test(`prefix ${JSON.stringify(bad.length > 20 ? `${bad.slice(0, 20)}…` : bad)} is INVALID_OPTION`, (t) => {
    const err = t.throws(() => storeKeys(bad), { instanceOf: SessionJournalError });
    t.is(err?.code, 'INVALID_OPTION');
    t.is(err?.details.option, 'redis.prefix');
  });
}

test('a prefix that is not a string is INVALID_OPTION; 128 characters are allowed', (t) => {
  t.is((t.throws(() => validatePrefix(42)) as SessionJournalError).code, 'INVALID_OPTION');
  t.is(validatePrefix('p'.repeat(128)), 'p'.repeat(128));
});
