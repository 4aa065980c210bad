/**
 * `session-journal import` and `export`, run as the real binary against the
 * committed files in fixtures/imports/: both formats, idempotence (also when
 * two imports race), invalid entries skipped with a warning and counted,
 * malformed files refused with nothing imported, export's v1 document
 * (golden files), and import(export(store)) reproducing the sessions.
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { exportSessions, importSessions, importedSessionId } from '../../src/index.js';
import { seededRandom, readJournalLines } from '../helpers/child-protocol.js';
import { collectWarnings, fixturePath, tempStoreDir } from '../helpers/temp-store.js';
import { copyFixtureStore } from '../helpers/fixture-store.js';
import { matchesGoldenJson } from '../helpers/golden.js';
import { FakeClock, T0, freshReplay, openStore, randomHistory, runCli as runCliWithin, withoutStoreEnv } from '../helpers/compaction-helpers.js';
import { spawn } from 'node:child_process';
import { CLI_MAIN } from '../helpers/compaction-helpers.js';

/** The binary, with a generous kill timeout: these tests spawn many processes on a possibly busy machine. */
const runCli = (args: string[], options: Parameters<typeof runCliWithin>[1] = {}) => runCliWithin(args, { timeoutMs: 120_000, ...options });

const REPO = new URL('../../../', import.meta.url).pathname;
const GOLDEN = path.join(REPO, 'test/golden/export');
const IMPORTS = fixturePath('imports');
const FLAT_MTIME = new Date('2026-11-21T06:30:00.000Z');

interface ImportDoc {
  file: string;
  format: string;
  total: number;
  imported: number;
  alreadyPresent: number;
  skipped: number;
  skippedItems: { index: number; key?: string; id?: string; code: string; reason: string }[];
  partsSkipped: number;
  skippedParts: { index: number; id: string; turn?: number; field?: string; code: string; reason: string }[];
  idsMapped: number;
  mappedIds: { index: number; from: string; to: string }[];
  refused: boolean;
}

const golden = (t: ExecutionContext, name: string, actual: unknown): void => matchesGoldenJson(t, path.join(GOLDEN, name), actual);

/** The import fixture's path with the repository's location replaced, for golden files. */
const normalizeFile = (doc: ImportDoc): ImportDoc => ({ ...doc, file: doc.file.replace(IMPORTS, '<fixtures/imports>') });

/** A copy of the flat cache fixture with a fixed modification time (a checkout sets it to now). */
function flatCopy(t: ExecutionContext): string {
  const dir = path.dirname(tempStoreDir(t));
  const file = path.join(dir, 'flat-cache.json');
  fs.copyFileSync(path.join(IMPORTS, 'flat-cache.json'), file);
  fs.utimesSync(file, FLAT_MTIME, FLAT_MTIME);
  return file;
}

const importRecords = (dir: string) => readJournalLines(dir).filter((l) => l.record?.t === 'session.import');

test('import a v1 file: every session imported; a second import adds nothing (not even bytes)', async (t) => {
  const dir = tempStoreDir(t);
  const file = path.join(IMPORTS, 'v1-sessions.json');
  const first = await runCli(['import', '--dir', dir, file, '--json']);
  t.is(first.code, 0, first.stderr);
  t.is(first.stderr, '');
  const doc = JSON.parse(first.stdout) as ImportDoc;
  t.like(doc, { format: 'v1', total: 3, imported: 3, alreadyPresent: 0, skipped: 0 });
  golden(t, 'import-json-v1-sessions.json', normalizeFile(doc));
  t.is((fs.statSync(dir).mode & 0o777).toString(8), '700', 'the store is created 0700');

  const bytes = fs.readFileSync(path.join(dir, 'journal-00000001.ndjson'));
  const again = await runCli(['import', '--dir', dir, file]);
  t.is(again.code, 0, again.stderr);
  t.is(again.stdout, `imported 0 sessions from ${file} (v1): 3 already present, 0 skipped, 3 in the file\n`);
  t.deepEqual(fs.readFileSync(path.join(dir, 'journal-00000001.ndjson')), bytes, 'nothing written');
  t.is(importRecords(dir).length, 3);

  const { warnings, onWarning } = collectWarnings();
  const sessions = await freshReplay(dir, onWarning);
  t.deepEqual(warnings, []);
  t.deepEqual(
    sessions.map((s) => s.id),
    ['empty-session', 'fix-tests_2', 'review-7f3a'],
  );
  const review = sessions.find((s) => s.id === 'review-7f3a')!;
  t.is(review.codexConversationId, '0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b');
  t.is(review.turns.length, 2);
  t.is(sessions.find((s) => s.id === 'fix-tests_2')!.createdAt, '2026-11-20T08:00:00.000Z', 'an offset date is the same instant');
});

test('import: sessions with invalid dates are skipped, a turn without a timestamp is dropped from its session, an id with spaces is mapped; each reported (file, index, reason), exit 1', async (t) => {
  const dir = tempStoreDir(t);
  const file = path.join(IMPORTS, 'v1-invalid-dates.json');
  const run = await runCli(['import', '--dir', dir, file, '--json']);
  t.is(run.code, 1, run.stderr);
  const doc = JSON.parse(run.stdout) as ImportDoc;
  t.like(doc, { format: 'v1', total: 8, imported: 4, alreadyPresent: 0, skipped: 4, partsSkipped: 1, idsMapped: 1, refused: false });
  golden(t, 'import-json-v1-invalid-dates.json', normalizeFile(doc));
  const warnings = run.stderr.split('\n').filter(Boolean);
  t.deepEqual(
    warnings.map((w) => w.replace(file, 'FILE')),
    [
      'session-journal import: warning: FILE: sessions[1] (id "feb-30"): INVALID_DATE: invalid createdAt "2026-02-30T08:00:00.000Z"; skipped',
      'session-journal import: warning: FILE: sessions[2] (id "yesterday"): INVALID_DATE: invalid lastAccessedAt "yesterday"; skipped',
      'session-journal import: warning: FILE: sessions[3] (id "epoch-number"): INVALID_DATE: invalid createdAt 1763625600000; skipped',
      'session-journal import: warning: FILE: sessions[4] (id "bad-turn"): turns[0]: INVALID_DATE: invalid turn timestamp undefined; turn dropped, the session is imported',
      `session-journal import: note: FILE: sessions[6] (id "no spaces allowed"): imported as "${importedSessionId('no spaces allowed')}" (ids are 1-256 of [A-Za-z0-9_-]; see "Ids" in docs/OPERATIONS.md)`,
      'session-journal import: warning: FILE: sessions[7] (id "good-1"): DUPLICATE_ID: the same id as sessions[0], which is imported instead; skipped',
    ],
  );
  const { warnings: replayWarnings, onWarning } = collectWarnings();
  const sessions = await freshReplay(dir, onWarning);
  t.deepEqual(replayWarnings, []);
  t.deepEqual(
    sessions.map((s) => [s.id, s.createdAt, s.turns.length]),
    [
      ['bad-turn', '2026-11-20T08:00:00.000Z', 0],
      ['good-1', '2026-11-20T08:00:00.000Z', 0],
      ['good-2', '2026-11-20T09:00:00.000Z', 1],
      ['no_spaces_allowed-c72de7a3be8c', '2026-11-20T08:00:00.000Z', 0],
    ],
  );
  const human = await runCli(['import', '--dir', dir, file]);
  t.is(human.code, 1, 'a second import skips the same entries: exit 1 again');
  t.is(human.stdout, `imported 0 sessions from ${file} (v1): 4 already present, 4 skipped, 8 in the file; 1 turn dropped, 1 id mapped\n`);
});

test('import a flat {"key":"value"} cache: each key a session with that conversation id, dated by the file; a key outside the id rule is mapped', async (t) => {
  const dir = tempStoreDir(t);
  const file = flatCopy(t);
  const run = await runCli(['import', '--dir', dir, file, '--json']);
  t.is(run.code, 1, run.stderr);
  const doc = JSON.parse(run.stdout) as ImportDoc;
  t.like(doc, { format: 'flat', total: 5, imported: 4, alreadyPresent: 0, skipped: 1, idsMapped: 1 });
  golden(t, 'import-json-flat-cache.json', { ...doc, file: '<flat-cache.json>' });
  t.regex(run.stderr, /note: .*: key "\.\.\/etc\/passwd": imported as "etc_passwd-[0-9a-f]{12}" /);
  t.regex(run.stderr, /key "sess-empty": INVALID_PAYLOAD: empty conversation id; skipped\n/);
  const { onWarning } = collectWarnings();
  const sessions = await freshReplay(dir, onWarning);
  t.deepEqual(sessions, [
    { id: importedSessionId('../etc/passwd')!, createdAt: FLAT_MTIME.toISOString(), lastAccessedAt: FLAT_MTIME.toISOString(), turns: [], codexConversationId: '0199a1b2-0000-7000-8000-000000000003' },
    { id: 'hook_session_2', createdAt: FLAT_MTIME.toISOString(), lastAccessedAt: FLAT_MTIME.toISOString(), turns: [], codexConversationId: '0199a1b2-0000-7000-8000-000000000002' },
    { id: 'sess-4c1d9e', createdAt: FLAT_MTIME.toISOString(), lastAccessedAt: FLAT_MTIME.toISOString(), turns: [], codexConversationId: '0199a1b2-0000-7000-8000-000000000001' },
    { id: 'sess-7b2f', createdAt: FLAT_MTIME.toISOString(), lastAccessedAt: FLAT_MTIME.toISOString(), turns: [], codexConversationId: '0199a1b2-0000-7000-8000-000000000004' },
  ]);
  const again = JSON.parse((await runCli(['import', '--dir', dir, file, '--json'])).stdout) as ImportDoc;
  t.like(again, { imported: 0, alreadyPresent: 4, skipped: 1 });
});

test('import from stdin with -', async (t) => {
  const dir = tempStoreDir(t);
  const child = spawn(process.execPath, [CLI_MAIN, 'import', '--dir', dir, '-'], { env: withoutStoreEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stdin.end(fs.readFileSync(path.join(IMPORTS, 'v1-sessions.json')));
  const code = await new Promise((resolve) => child.on('close', resolve));
  t.is(code, 0);
  t.is(stdout, 'imported 3 sessions from <stdin> (v1): 0 already present, 0 skipped, 3 in the file\n');
});

test('import of a malformed file or an unknown version: exit 4, one error line and a hint, nothing imported, no store created', async (t) => {
  for (const [name, pattern] of [
    ['malformed.json', /^session-journal import: INVALID_IMPORT_FILE: .*malformed\.json is not valid JSON: /],
    ['unsupported-version.json', /^session-journal import: INVALID_IMPORT_FILE: .*unsupported-version\.json has "version": 2; this session-journal reads version 1$/],
  ] as const) {
    const dir = tempStoreDir(t);
    const run = await runCli(['import', '--dir', dir, path.join(IMPORTS, name)]);
    t.is(run.code, 4, name);
    t.is(run.stdout, '');
    const lines = run.stderr.split('\n').filter(Boolean);
    t.is(lines.length, 2, run.stderr);
    t.regex(lines[0]!, pattern);
    t.regex(lines[1]!, /^hint: .*nothing was imported$/);
    t.false(fs.existsSync(dir), 'no store created');
  }
  const dir = tempStoreDir(t);
  const other = path.join(path.dirname(dir), 'list.json');
  fs.writeFileSync(other, '{"a":"x","b":{"nested":true}}');
  const run = await runCli(['import', '--dir', dir, other]);
  t.is(run.code, 4, run.stderr);
  t.regex(run.stderr, /neither a v1 sessions file .* nor a flat \{"key":"value"\} cache: key "b" has an object value/);
  const missing = await runCli(['import', '--dir', dir, path.join(IMPORTS, 'no-such-file.json')]);
  t.is(missing.code, 4);
  t.regex(missing.stderr, /IO_ERROR: .*ENOENT/);
});

test('import: usage errors exit 2; --help exits 0', async (t) => {
  const dir = tempStoreDir(t);
  t.is((await runCli(['import', '--dir', dir])).code, 2);
  t.is((await runCli(['import', '--dir', dir, 'a.json', 'b.json'])).code, 2);
  t.is((await runCli(['import', path.join(IMPORTS, 'v1-sessions.json')])).code, 2, 'no store');
  const help = await runCli(['import', '--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /^Usage: session-journal import --dir DIR \[options\] FILE/);
});

test('two imports of the same file racing: each session imported exactly once', async (t) => {
  const dir = tempStoreDir(t);
  await runCli(['import', '--dir', dir, path.join(IMPORTS, 'v1-invalid-dates.json')]); // the store exists before the race
  const file = path.join(IMPORTS, 'v1-sessions.json');
  const runs = await Promise.all([0, 1, 2].map(() => runCli(['import', '--dir', dir, file, '--json'])));
  const docs = runs.map((r) => JSON.parse(r.stdout) as ImportDoc);
  t.is(
    docs.reduce((n, d) => n + d.imported, 0),
    3,
  );
  t.is(
    docs.reduce((n, d) => n + d.alreadyPresent, 0),
    6,
  );
  t.is(importRecords(dir).length, 4 + 3);
});

test('export prints the v1 document, sessions by id (golden), read-only', async (t) => {
  const dir = tempStoreDir(t);
  await runCli(['import', '--dir', dir, path.join(IMPORTS, 'v1-sessions.json')]);
  await runCli(['import', '--dir', dir, path.join(IMPORTS, 'v1-invalid-dates.json')]);
  await runCli(['import', '--dir', dir, flatCopy(t)]);
  const before = fs.readdirSync(dir).sort();
  const run = await runCli(['export', '--dir', dir]);
  t.is(run.code, 0, run.stderr);
  t.is(run.stderr, '');
  const doc = JSON.parse(run.stdout) as { version: number; sessions: { id: string }[] };
  t.is(doc.version, 1);
  golden(t, 'export-imports.json', doc);
  t.deepEqual(
    doc.sessions.map((s) => s.id),
    doc.sessions.map((s) => s.id).sort(),
  );
  t.deepEqual(fs.readdirSync(dir).sort(), before, 'nothing written');
  const json = await runCli(['export', '--dir', dir, '--json']);
  t.is(json.code, 0, json.stderr);
  t.is(json.stdout, run.stdout, '--json changes nothing');
});

test('export of a committed store (fixtures/stores/repair-torn-mid-file): golden, damaged line warned on stderr', async (t) => {
  const dir = copyFixtureStore(t, 'repair-torn-mid-file', 'stores');
  const run = await runCli(['export', '--dir', dir]);
  t.is(run.code, 0);
  t.regex(run.stderr, /^session-journal: warning UNPARSABLE_LINE .*journal-00000001\.ndjson:4 /);
  golden(t, 'export-repair-torn-mid-file.json', JSON.parse(run.stdout));
});

test('import(export(store)) into an empty store reproduces the same sessions', async (t) => {
  const source = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const clock = new FakeClock(T0);
  const store = openStore(source, onWarning, { clock: clock.read });
  await randomHistory(store, clock, seededRandom(4242), 600);
  store.updateSession('s01', { note: 'kept as is', count: 3 } as Record<string, unknown>);
  await store.close();
  const expected = await freshReplay(source, onWarning);
  t.true(expected.length > 5);

  const exported = await runCli(['export', '--dir', source]);
  t.is(exported.code, 0, exported.stderr);
  const file = path.join(path.dirname(source), 'backup.json');
  fs.writeFileSync(file, exported.stdout);
  const target = path.join(path.dirname(source), 'target');
  const importRun = await runCli(['import', '--dir', target, file, '--json']);
  t.is(importRun.code, 0, importRun.stderr);
  const imported = JSON.parse(importRun.stdout) as ImportDoc;
  t.like(imported, { imported: expected.length, skipped: 0, alreadyPresent: 0 });
  t.deepEqual(await freshReplay(target, onWarning), expected);
  const back = await runCli(['export', '--dir', target]);
  t.is(back.code, 0, back.stderr);
  t.is(back.stdout, exported.stdout, 'the same document');
  t.deepEqual(warnings, []);
});

test('export: a missing store exits 4 (STORE_NOT_FOUND); --help exits 0', async (t) => {
  const dir = tempStoreDir(t);
  const run = await runCli(['export', '--dir', dir]);
  t.is(run.code, 4);
  t.is(run.stdout, '');
  t.regex(run.stderr, /^session-journal export: STORE_NOT_FOUND: /);
  t.false(fs.existsSync(dir));
  t.regex((await runCli(['export', '--help'])).stdout, /^Usage: session-journal export --dir DIR/);
});

test('the library functions: importSessions and exportSessions', async (t) => {
  const dir = tempStoreDir(t);
  const skips: unknown[] = [];
  const mapped: unknown[] = [];
  const result = await importSessions({ dir, file: 'inline.json', text: '{"a-1":"conv-a","":"x","a.1":"conv-b"}', mtimeMs: T0, onSkip: (s) => skips.push(s), onIdMapped: (m) => mapped.push(m), fsync: false });
  t.like(result, { format: 'flat', imported: 2, skipped: 1, alreadyPresent: 0, idsMapped: 1 });
  t.deepEqual(skips, [{ file: 'inline.json', index: 1, key: '', code: 'INVALID_SESSION_ID', reason: 'an empty key is no session id (1-256 letters, digits, "-" or "_")' }]);
  t.deepEqual(mapped, [{ file: 'inline.json', format: 'flat', index: 2, from: 'a.1', to: importedSessionId('a.1') }]);
  t.deepEqual(exportSessions({ dir }).sessions.map((s) => s.id), ['a-1', importedSessionId('a.1')]);
  const dir2 = tempStoreDir(t);
  await importSessions({ dir: dir2, file: 'inline.json', text: '{"a-1":"conv-a"}', mtimeMs: T0, fsync: false });
  const doc = exportSessions({ dir: dir2 });
  t.deepEqual(doc, { version: 1, sessions: [{ id: 'a-1', createdAt: new Date(T0).toISOString(), lastAccessedAt: new Date(T0).toISOString(), turns: [], codexConversationId: 'conv-a' }] });
  const again = await importSessions({ dir, file: 'export.json', text: JSON.stringify(doc), fsync: false });
  t.like(again, { format: 'v1', imported: 0, alreadyPresent: 1 });
});

test('import: a session of 3 MiB is imported, spread over several journal lines; --max-session-bytes below it refuses the file before anything is done (exit 4, no store created)', async (t) => {
  const dir = tempStoreDir(t);
  const file = path.join(path.dirname(dir), 'big.json');
  const at = new Date(T0).toISOString(); // the fixed clock of these tests
  const turn = (i: number) => ({ prompt: `question ${i}`, response: `${i}:${'a'.repeat(512 * 1024)}`, timestamp: at });
  const sessions = [
    { id: 'small', createdAt: at, lastAccessedAt: at, turns: [turn(0)] },
    { id: 'huge', createdAt: at, lastAccessedAt: at, turns: [1, 2, 3, 4, 5, 6].map(turn) },
  ];
  fs.writeFileSync(file, JSON.stringify({ version: 1, sessions }));

  const refused = await runCli(['import', '--dir', dir, file, '--max-session-bytes', String(2 * 1024 * 1024)]);
  t.is(refused.code, 4, refused.stderr);
  t.is(refused.stdout, '');
  t.regex(refused.stderr, /RECORD_TOO_LARGE: .*sessions\[1\] \(id "huge"\) is \d+ bytes as a journal record, over maxSessionBytes \(2097152\); nothing was imported\nhint: raise --max-session-bytes/);
  t.false(fs.existsSync(dir), 'the store was not even created');

  const run = await runCli(['import', '--dir', dir, file, '--json']);
  t.is(run.code, 0, run.stderr);
  t.like(JSON.parse(run.stdout) as ImportDoc, { imported: 2, skipped: 0, total: 2 });
  t.true(readJournalLines(dir).filter((l) => l.record?.t === 'journal.part').length >= 4, 'the huge session is spread over lines');
  const replayed = await freshReplay(dir, () => undefined);
  t.deepEqual(replayed.map((s) => [s.id, s.turns.length]), [['huge', 6], ['small', 1]]);
  t.is(replayed[0]!.turns[5]!.response, turn(6).response);
});
