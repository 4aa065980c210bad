/**
 * A store holds instants of years 0000 to 9999: the range its ISO text and
 * its epoch-ms envelope can say (docs/FORMAT.md). A mutation whose dates, or
 * whose clock reading, fall outside it would be acknowledged and then
 * refused by every replay, so it is refused when made (INVALID_DATE), and
 * changes nothing. Inside the range every instant reads back exactly, the
 * first century included.
 */
import test from 'ava';
import { ErrorCodes, SessionJournalError, SessionStore } from '../../src/index.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';

const T0 = Date.parse('2026-05-01T10:00:00.000Z');
const YEAR = 365 * 24 * 3600 * 1000;
const options = { maxSessions: 100, ttlMs: 20_000 * YEAR, clock: () => T0, autoCompact: false as const, fsync: false };
const codeOf = (err: unknown) => (err instanceof SessionJournalError ? err.code : String(err));

const OUTSIDE = [new Date('+010000-01-01T00:00:00.000Z'), new Date('-000001-12-31T23:59:59.999Z'), new Date(8.64e15)];
const EDGES = [new Date('0000-01-01T00:00:00.000Z'), new Date('0012-06-15T08:30:00.250Z'), new Date('9999-12-31T23:59:59.999Z')];

test('turns and session dates outside years 0000-9999 are refused with INVALID_DATE; the edges and the first century read back exactly', async (t) => {
  const dir = tempStoreDir(t);
  const store = SessionStore.openSync({ dir, ...options });
  store.ensureSession('s');
  for (const date of OUTSIDE) {
    t.is(codeOf(t.throws(() => store.addTurn('s', { prompt: 'p', response: 'r', timestamp: date }))), ErrorCodes.INVALID_DATE, date.toISOString());
    t.is(codeOf(t.throws(() => store.updateSession('s', { createdAt: date }))), ErrorCodes.INVALID_DATE);
    t.is(codeOf(t.throws(() => store.updateSession('s', { turns: [{ prompt: 'p', response: 'r', timestamp: date }] }))), ErrorCodes.INVALID_DATE);
  }
  t.deepEqual(store.getSession('s')?.turns, []);
  for (const date of EDGES) store.addTurn('s', { prompt: date.toISOString(), response: 'r', timestamp: date });
  store.updateSession('s', { createdAt: EDGES[1] });
  await store.close();
  const { warnings, onWarning } = collectWarnings();
  const back = SessionStore.openSync({ dir, readOnly: true, onWarning, ...options });
  t.deepEqual(warnings, []);
  t.deepEqual(back.getSession('s')?.turns.map((turn) => turn.timestamp.getTime()), EDGES.map((d) => d.getTime()));
  t.is(back.getSession('s')?.createdAt.getTime(), EDGES[1]!.getTime());
  back.closeSync();
});

test("a clock reading outside years 0000-9999 is refused when a mutation is made (INVALID_DATE), not written as a record every replay skips", (t) => {
  for (const reading of [3e14, -7e13]) {
    const dir = tempStoreDir(t);
    let now = T0;
    const store = SessionStore.openSync({ dir, ...options, clock: () => now });
    store.ensureSession('kept');
    store.flushSync();
    now = reading;
    t.is(codeOf(t.throws(() => store.ensureSession('lost'))), ErrorCodes.INVALID_DATE, String(reading));
    t.is(store.getSession('lost'), undefined);
    now = T0;
    store.closeSync();
    const { warnings, onWarning } = collectWarnings();
    const back = SessionStore.openSync({ dir, readOnly: true, onWarning, ...options });
    t.deepEqual(warnings, []);
    t.truthy(back.getSession('kept'));
    back.closeSync();
  }
});
