/**
 * fixtures/journals/kv-bad-payloads: kv.* records that break the reducer's
 * rules, written between valid ones (fixtures/README.md). Opening never
 * throws, each bad line is reported once with its file, line and offset,
 * and every valid record is applied.
 */
import test from 'ava';
import path from 'node:path';
import { KeyValueStore, WarningCodes, compactKeyValueStore } from '../../src/index.js';
import { copyFixtureStore, lineStart } from '../helpers/fixture-store.js';
import { JOURNALS_NOW } from '../helpers/fixture-now.js';
import { collectWarnings } from '../helpers/temp-store.js';

const SEGMENT = 'journal-00000001.ndjson';
const BAD_LINES: Array<[number, string]> = [
  [2, WarningCodes.INVALID_PAYLOAD], // empty key
  [3, WarningCodes.INVALID_PAYLOAD], // kv.set without value
  [5, WarningCodes.INVALID_PAYLOAD], // numeric key
  [6, WarningCodes.UNKNOWN_EVENT_TYPE], // kv.rename
  [7, WarningCodes.INVALID_PAYLOAD], // array payload
  [9, WarningCodes.INVALID_PAYLOAD], // key with a newline
];

test('bad kv payloads are skipped with a warning at their file and line; every valid record is kept', (t) => {
  const dir = copyFixtureStore(t, 'kv-bad-payloads');
  const { warnings, onWarning } = collectWarnings();
  const kv = KeyValueStore.openSync({ dir, onWarning, clock: () => JOURNALS_NOW, autoCompact: false });
  const file = path.join(dir, SEGMENT);
  t.deepEqual(
    warnings.map((w) => ({ code: w.code, file: w.file, line: w.line, offset: w.offset })),
    BAD_LINES.map(([line, code]) => ({ code, file, line, offset: lineStart(file, line) })),
  );
  t.deepEqual([...kv.entries()], [
    ['exec-5', [1, 2, 3]],
    ['exec-4', null],
    ['exec-1', 'sess-1'],
  ]);
  t.is(kv.get('exec-3'), undefined, 'deleted at line 11');
  kv.closeSync();
});

test('compaction folds the valid records and keeps the bad lines aside; a reopened store holds the same entries', async (t) => {
  const dir = copyFixtureStore(t, 'kv-bad-payloads');
  const { warnings, onWarning } = collectWarnings();
  const result = await compactKeyValueStore({ dir, now: () => JOURNALS_NOW, onWarning });
  t.is(result.status, 'compacted');
  t.is(result.kept, 3);
  t.is(result.keptAside.lines, BAD_LINES.length);
  t.true(warnings.some((w) => w.code === WarningCodes.KEPT_ASIDE));
  const kv = KeyValueStore.openSync({ dir, onWarning: (w) => t.fail(w.message), clock: () => JOURNALS_NOW, autoCompact: false });
  t.deepEqual([...kv.entries()].map(([k]) => k), ['exec-5', 'exec-4', 'exec-1']);
  kv.closeSync();
});
