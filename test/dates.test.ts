import test from 'ava';
import { parseIsoInstant } from '../src/engine/dates.js';

const valid: Array<[string, string]> = [
  ['2026-11-22T10:00:00.000Z', '2026-11-22T10:00:00.000Z'],
  ['2024-02-29T23:59:59.999Z', '2024-02-29T23:59:59.999Z'], // leap year
  ['2000-02-29T00:00:00.000Z', '2000-02-29T00:00:00.000Z'], // divisible by 400
  ['2026-11-22T10:00:00Z', '2026-11-22T10:00:00.000Z'], // no milliseconds
  ['2026-11-22T10:00Z', '2026-11-22T10:00:00.000Z'], // no seconds
  ['2026-11-22T10:00:00.000+01:00', '2026-11-22T09:00:00.000Z'], // offset
  ['0000-06-01T00:00:00.000Z', '0000-06-01T00:00:00.000Z'], // years 0-99 are not 1900-1999 (Date.UTC's two-digit years)
  ['0099-12-31T23:59:59.999Z', '0099-12-31T23:59:59.999Z'],
  ['0000-02-29T12:00:00.000Z', '0000-02-29T12:00:00.000Z'], // year 0 is a leap year
  ['0050-03-01T00:00:00Z', '0050-03-01T00:00:00.000Z'], // the general path
  ['9999-12-31T23:59:59.999Z', '9999-12-31T23:59:59.999Z'],
];
const invalid = [
  '2026-02-30T00:00:00.000Z',
  '2023-02-29T00:00:00.000Z',
  '1900-02-29T00:00:00.000Z', // divisible by 100, not 400
  '2026-04-31T00:00:00.000Z',
  '2026-13-01T00:00:00.000Z',
  '2026-00-10T00:00:00.000Z',
  '2026-11-22T24:00:00.000Z',
  '2026-11-22T10:60:00.000Z',
  '2026-02-30T12:00:00+02:00',
  '2026-11-22',
  '2026-11-22T10:00:00.000',
  'yesterday',
  '',
];

for (const [text, iso] of valid) {
  test(`accepts ${text}`, (t) => {
    t.is(new Date(parseIsoInstant(text)!).toISOString(), iso);
  });
}
for (const text of invalid) {
  test(`rejects ${JSON.stringify(text)}`, (t) => {
    t.is(parseIsoInstant(text), undefined);
  });
}
test('rejects non-strings', (t) => {
  for (const value of [null, undefined, 0, Date.now(), {}, new Date()]) t.is(parseIsoInstant(value), undefined);
});
