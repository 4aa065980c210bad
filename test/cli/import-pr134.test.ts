/**
 * Migration from PR #134's FileSessionStorage file ({"version":1,"sessions":
 * [...]}, pretty-printed, ISO dates), damaged the ways real files are: turn
 * timestamps a hand edit or another tool broke, ids PR #134 accepted and
 * codex-mcp-server's rule refuses, values of the wrong type, a copy cut
 * short. Run as the real binary against the committed files in
 * fixtures/imports/pr134-*.json (fixtures/README.md).
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { importedSessionId } from '../../src/index.js';
import { collectWarnings, fixturePath, tempStoreDir } from '../helpers/temp-store.js';
import { freshReplay, openStore, runCli as runCliWithin } from '../helpers/compaction-helpers.js';
import { IMPORTS_NOW } from '../helpers/fixture-now.js';

const runCli = (args: string[]) => runCliWithin(args, { timeoutMs: 120_000 });
const IMPORTS = fixturePath('imports');

interface ImportDoc {
  total: number;
  imported: number;
  alreadyPresent: number;
  skipped: number;
  skippedItems: { index: number; id?: string; code: string; reason: string }[];
  partsSkipped: number;
  skippedParts: { index: number; id: string; turn?: number; field?: string; code: string; reason: string }[];
  idsMapped: number;
  mappedIds: { index: number; from: string; to: string }[];
  refused: boolean;
}

const stderrLines = (stderr: string, file: string): string[] =>
  stderr
    .split('\n')
    .filter(Boolean)
    .map((l) => l.replace(file, 'FILE'));

test('an import of a damaged PR #134 file: a turn with an invalid timestamp is dropped and reported (session, turn, INVALID_DATE), its session imported with the other turns; exit 1', async (t) => {
  const dir = tempStoreDir(t);
  const file = path.join(IMPORTS, 'pr134-bad-turns.json');
  const run = await runCli(['import', '--dir', dir, file, '--json']);
  t.is(run.code, 1, run.stderr);
  const doc = JSON.parse(run.stdout) as ImportDoc;
  t.like(doc, { total: 5, imported: 4, alreadyPresent: 0, skipped: 1, partsSkipped: 5, idsMapped: 0, refused: false });
  t.deepEqual(
    doc.skippedParts.map((p) => [p.index, p.id, p.turn, p.code]),
    [
      [0, 'review-api', 1, 'INVALID_DATE'],
      [1, 'migrate-db', 0, 'INVALID_DATE'],
      [1, 'migrate-db', 2, 'INVALID_DATE'],
      [2, 'docs-pass', 0, 'INVALID_DATE'],
      [2, 'docs-pass', 1, 'INVALID_DATE'],
    ],
  );
  t.deepEqual(doc.skippedItems, [{ index: 3, id: 'stale-dates', code: 'INVALID_DATE', reason: 'invalid lastAccessedAt "yesterday"' }], 'a session without valid dates is still skipped, as PR #134 skips it');
  t.deepEqual(stderrLines(run.stderr, file), [
    'session-journal import: warning: FILE: sessions[0] (id "review-api"): turns[1]: INVALID_DATE: invalid turn timestamp "2026-11-20T09:61:00.000Z"; turn dropped, the session is imported',
    'session-journal import: warning: FILE: sessions[1] (id "migrate-db"): turns[0]: INVALID_DATE: invalid turn timestamp "2026-11-20 10:15"; turn dropped, the session is imported',
    'session-journal import: warning: FILE: sessions[1] (id "migrate-db"): turns[2]: INVALID_DATE: invalid turn timestamp "2026-02-30T10:55:00.000Z"; turn dropped, the session is imported',
    'session-journal import: warning: FILE: sessions[2] (id "docs-pass"): turns[0]: INVALID_DATE: invalid turn timestamp undefined; turn dropped, the session is imported',
    'session-journal import: warning: FILE: sessions[2] (id "docs-pass"): turns[1]: INVALID_DATE: invalid turn timestamp null; turn dropped, the session is imported',
    'session-journal import: warning: FILE: sessions[3] (id "stale-dates"): INVALID_DATE: invalid lastAccessedAt "yesterday"; skipped',
  ]);

  const { warnings, onWarning } = collectWarnings();
  const sessions = await freshReplay(dir, onWarning);
  t.deepEqual(warnings, [], 'what import wrote replays cleanly');
  const byId = new Map(sessions.map((s) => [s.id, s]));
  t.deepEqual([...byId.keys()].sort(), ['clean', 'docs-pass', 'migrate-db', 'review-api']);
  t.deepEqual(
    byId.get('review-api')!.turns.map((x) => x.timestamp),
    ['2026-11-20T08:05:00.000Z', '2026-11-20T09:20:00.000Z'],
  );
  t.is(byId.get('review-api')!.codexConversationId, '0199a1b2-7a10-7e5f-8a9b-0c1d2e3f4a01', 'the session keeps its conversation id');
  t.deepEqual(
    byId.get('migrate-db')!.turns.map((x) => x.prompt),
    ['Write the backfill script'],
  );
  t.deepEqual(byId.get('docs-pass')!.turns, [], 'every turn dropped, the session kept');
  t.is(byId.get('clean')!.turns.length, 1);

  const again = await runCli(['import', '--dir', dir, file]);
  t.is(again.code, 1, 'the file still has what it had: exit 1 again');
  t.is(again.stdout, `imported 0 sessions from ${file} (v1): 4 already present, 1 skipped, 5 in the file; 5 turns dropped\n`);
});

test('ids PR #134 accepted (dots, colons, spaces, slashes, accents, CJK, emoji) are mapped to the documented slug-and-hash ids, noted old -> new; re-import finds them present; a store serves them', async (t) => {
  const dir = tempStoreDir(t);
  const file = path.join(IMPORTS, 'pr134-ids.json');
  const run = await runCli(['import', '--dir', dir, file, '--json']);
  t.is(run.code, 1, 'an empty and a numeric id, and a duplicate, are skipped');
  const doc = JSON.parse(run.stdout) as ImportDoc;
  t.like(doc, { total: 11, imported: 8, skipped: 3, partsSkipped: 0, idsMapped: 7 });
  // Literal values: the mapping is part of the format of an import, the same in every version.
  t.deepEqual(
    doc.mappedIds.map((m) => [m.index, m.from, m.to]),
    [
      [0, 'refactor.auth', 'refactor_auth-576b67c66f88'],
      [1, 'team:frontend', 'team_frontend-c96c097cd96e'],
      [2, 'bug fix 42', 'bug_fix_42-e14340b8ff2d'],
      [3, 'résumé-writer', 'resume-writer-19114251247e'],
      [4, '日本語セッション', 'session-95c68f37024b'],
      [5, '🚀 launch', 'launch-774e9f9c8d7a'],
      [6, 'repo/path/main', 'repo_path_main-68b72a278524'],
    ],
  );
  for (const m of doc.mappedIds) t.is(importedSessionId(m.from), m.to, 'importedSessionId is the same rule');
  t.deepEqual(
    doc.skippedItems.map((s) => [s.index, s.code]),
    [
      [8, 'INVALID_SESSION_ID'],
      [9, 'INVALID_SESSION_ID'],
      [10, 'DUPLICATE_ID'],
    ],
  );
  const lines = stderrLines(run.stderr, file);
  t.true(lines.includes('session-journal import: note: FILE: sessions[3] (id "résumé-writer"): imported as "resume-writer-19114251247e" (ids are 1-256 of [A-Za-z0-9_-]; see "Ids" in docs/OPERATIONS.md)'), run.stderr);
  t.is(lines.filter((l) => l.includes(': note: ')).length, 7, 'one note per mapped id');
  t.true(lines.includes('session-journal import: warning: FILE: sessions[10] (id "refactor.auth"): DUPLICATE_ID: the same id as sessions[0] (once mapped to "refactor_auth-576b67c66f88"), which is imported instead; skipped'));

  const again = JSON.parse((await runCli(['import', '--dir', dir, file, '--json'])).stdout) as ImportDoc;
  t.like(again, { imported: 0, alreadyPresent: 8, idsMapped: 7 }, 'the mapping is deterministic: importing again adds nothing');

  const { warnings, onWarning } = collectWarnings();
  const store = openStore(dir, onWarning, { clock: () => IMPORTS_NOW });
  try {
    t.deepEqual(
      store.listSessions().map((s) => s.id).sort(),
      [...doc.mappedIds.map((m) => m.to), 'valid_id-1'].sort(),
    );
    store.ensureSession('team_frontend-c96c097cd96e'); // a mapped id is valid for codex-mcp-server's rule
    t.is(store.getSession('team_frontend-c96c097cd96e')!.turns[0]!.prompt, 'work in team:frontend');
  } finally {
    await store.close();
  }
  t.deepEqual(warnings, []);
});

test('values of the wrong type: a non-object entry or a non-string id skips the session; a bad turn, turns that is not an array, or a non-string codexConversationId costs only itself', async (t) => {
  const dir = tempStoreDir(t);
  const file = path.join(IMPORTS, 'pr134-wrong-types.json');
  const run = await runCli(['import', '--dir', dir, file, '--json']);
  t.is(run.code, 1, run.stderr);
  const doc = JSON.parse(run.stdout) as ImportDoc;
  t.like(doc, { total: 10, imported: 6, skipped: 4, partsSkipped: 6, idsMapped: 0 });
  t.deepEqual(
    doc.skippedItems.map((s) => [s.index, s.code]),
    [
      [0, 'INVALID_PAYLOAD'],
      [1, 'INVALID_PAYLOAD'],
      [2, 'INVALID_SESSION_ID'],
      [8, 'INVALID_DATE'],
    ],
  );
  t.deepEqual(
    doc.skippedParts.map((p) => [p.index, p.turn ?? p.field, p.code]),
    [
      [3, 'turns', 'INVALID_PAYLOAD'],
      [4, 'turns', 'INVALID_PAYLOAD'],
      [5, 0, 'INVALID_PAYLOAD'],
      [5, 1, 'INVALID_PAYLOAD'],
      [5, 2, 'INVALID_PAYLOAD'],
      [6, 'codexConversationId', 'INVALID_PAYLOAD'],
    ],
  );
  t.regex(run.stderr, /sessions\[3\] \(id "turns-object"\): turns: INVALID_PAYLOAD: turns is an object, not an array; field dropped, the session is imported\n/);

  const { warnings, onWarning } = collectWarnings();
  const byId = new Map((await freshReplay(dir, onWarning)).map((s) => [s.id, s as unknown as Record<string, unknown>]));
  t.deepEqual(warnings, []);
  t.deepEqual(byId.get('turns-object')!.turns, []);
  t.deepEqual(byId.get('turns-null')!.turns, []);
  t.deepEqual((byId.get('bad-turn-shapes')!.turns as { prompt: string }[]).map((x) => x.prompt), ['fine']);
  t.false('codexConversationId' in byId.get('conversation-number')!, 'a number is no conversation id codex could resume');
  t.false('codexConversationId' in byId.get('conversation-null')!, 'null carries nothing: dropped without a report');
  t.like(byId.get('extra-fields'), { title: 'kept as updateSession would keep it', pinned: true });
});

test('a PR #134 file cut short (a copy that stopped): exit 4, the error says it ends inside the document, nothing imported, no store created', async (t) => {
  const dir = tempStoreDir(t);
  const run = await runCli(['import', '--dir', dir, path.join(IMPORTS, 'pr134-truncated.json')]);
  t.is(run.code, 4);
  t.is(run.stdout, '');
  t.regex(run.stderr, /^session-journal import: INVALID_IMPORT_FILE: .*pr134-truncated\.json is not valid JSON: .* \(the file ends inside the document: cut short by a copy that stopped or a full disk\?\)\nhint: .*nothing was imported\n$/);
  t.false(fs.existsSync(dir));
});

test('--strict: nothing imported when a session or turn would be skipped, checked before the store is touched; the same report, exit 1; mapped ids alone do not refuse', async (t) => {
  const dir = tempStoreDir(t);
  const file = path.join(IMPORTS, 'pr134-bad-turns.json');
  const loose = await runCli(['import', '--dir', tempStoreDir(t), file]);
  const run = await runCli(['import', '--dir', dir, '--strict', file]);
  t.is(run.code, 1);
  t.is(run.stdout, `nothing imported from ${file} (v1, --strict): 1 skipped, 5 turns dropped if imported, 5 in the file\n`);
  t.is(run.stderr, loose.stderr, 'the same warnings as without --strict');
  t.false(fs.existsSync(dir), 'the store was not even created');
  const json = JSON.parse((await runCli(['import', '--dir', dir, '--strict', '--json', file])).stdout) as ImportDoc;
  t.like(json, { imported: 0, alreadyPresent: 0, skipped: 1, partsSkipped: 5, refused: true });

  const mappedOnly = path.join(path.dirname(dir), 'mapped-only.json');
  fs.writeFileSync(mappedOnly, JSON.stringify({ version: 1, sessions: [{ id: 'a.b', createdAt: '2026-11-20T08:00:00.000Z', lastAccessedAt: '2026-11-20T08:00:00.000Z', turns: [] }] }));
  const mapped = await runCli(['import', '--dir', dir, '--strict', mappedOnly]);
  t.is(mapped.code, 0, mapped.stderr);
  t.is(mapped.stdout, `imported 1 session from ${mappedOnly} (v1): 0 already present, 0 skipped, 1 in the file; 1 id mapped\n`);
  t.regex(mapped.stderr, /^session-journal import: note: .*sessions\[0\] \(id "a\.b"\): imported as "a_b-[0-9a-f]{12}" /);
});
