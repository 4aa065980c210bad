/**
 * The storage codex-mcp-server's handlers get (src/integrations/turn-limit.ts):
 * addTurn runs after codex answered, so a turn too large for the store is
 * stored cut to fit instead of failing the tool call.
 */
import test from 'ava';
import { ErrorCodes, SessionStore, WarningCodes } from '../../src/index.js';
import { TurnLimitedStorage, utf8Prefix } from '../../src/integrations/turn-limit.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';
import { TEST_T0 } from '../helpers/fixture-now.js';

const clockTime = (): Date => new Date(TEST_T0);

test('without maxTurnBytes, an answer over the store\'s maxRecordBytes (escaping included) is stored cut to fit, with TURN_TRUNCATED, and the call does not throw', async (t) => {
  const dir = tempStoreDir(t);
  const store = SessionStore.openSync({ dir, maxRecordBytes: 20_000, autoCompact: false, onWarning: () => undefined, clock: () => TEST_T0 });
  const { warnings, onWarning } = collectWarnings();
  const limited = new TurnLimitedStorage(store, undefined, onWarning);
  limited.ensureSession('s');
  // Control characters take 6 bytes each in JSON: the record is far larger than the text.
  const response = 'a\u0001"'.repeat(10_000);
  t.throws(() => store.addTurn('s', { prompt: 'q', response, timestamp: clockTime() }), { code: ErrorCodes.RECORD_TOO_LARGE }, 'the store alone refuses it');
  t.notThrows(() => limited.addTurn('s', { prompt: 'q', response, timestamp: clockTime() }));
  const stored = store.getSession('s')!.turns[0]!.response;
  t.true(stored.length < response.length);
  t.true(response.startsWith(stored.slice(0, stored.indexOf('\n[session-journal: answer cut here'))));
  t.deepEqual(warnings.map((w) => w.code), [WarningCodes.TURN_TRUNCATED]);
  await store.close();
});

test('a turn within the limits is stored as it is, without a warning', async (t) => {
  const dir = tempStoreDir(t);
  const store = SessionStore.openSync({ dir, autoCompact: false, clock: () => TEST_T0 });
  const { warnings, onWarning } = collectWarnings();
  const limited = new TurnLimitedStorage(store, 1000, onWarning);
  limited.ensureSession('s');
  limited.addTurn('s', { prompt: 'q', response: 'é'.repeat(499), timestamp: clockTime() }); // 1 + 998 bytes
  t.is(store.getSession('s')!.turns[0]!.response, 'é'.repeat(499));
  t.true(limited.promptTooLarge('p'.repeat(1001)));
  t.false(limited.promptTooLarge('é'.repeat(500)));
  t.deepEqual(warnings, []);
  await store.close();
});

test('utf8Prefix never cuts a character or a surrogate pair in half', (t) => {
  t.is(utf8Prefix('aé😀b', 1), 'a');
  t.is(utf8Prefix('aé😀b', 2), 'a');
  t.is(utf8Prefix('aé😀b', 3), 'aé');
  t.is(utf8Prefix('aé😀b', 6), 'aé');
  t.is(utf8Prefix('aé😀b', 7), 'aé😀');
  t.is(utf8Prefix('aé😀b', 8), 'aé😀b');
  t.is(utf8Prefix('abc', 0), '');
});
