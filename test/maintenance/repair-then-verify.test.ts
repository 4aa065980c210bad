/**
 * `repair` then `verify` is clean: damage that stood for committed records
 * leaves a gap in the hash chain, which repair journals in a
 * `journal.repair` record, and verify accepts exactly that gap (a note).
 * Commits no reader applies (INCOMPLETE_COMMIT, STALE_COMMIT) are moved
 * aside. Tampering repair did not explain is still reported.
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { compactSessions, WarningCodes } from '../../src/index.js';
import { REPAIR_EVENT } from '../../src/engine/record-codec.js';
import { copyFixtureStore } from '../helpers/fixture-store.js';
import { collectWarnings, fixturePath } from '../helpers/temp-store.js';
import { NO_TTL, freshReplay, runCli } from '../helpers/compaction-helpers.js';

/** The repair-* fixtures' "now": an hour after their first record (fixtures/README.md). */
const FIXTURE_NOW = Date.UTC(2026, 10, 21, 10, 0, 0);

interface Report {
  ok: boolean;
  problems: Array<{ code: string; file: string | null; line: number | null }>;
  notes: Array<{ code: string; file: string | null; line: number | null; message: string }>;
}

async function verify(dir: string): Promise<{ code: number | null; report: Report }> {
  const run = await runCli(['verify', '--dir', dir, '--json']);
  return { code: run.code, report: JSON.parse(run.stdout) as Report };
}

async function repair(t: ExecutionContext, dir: string): Promise<{ gaps: Array<{ missing: [number, number] }>; files: Array<{ items: Array<{ reason: string; line: number }> }> }> {
  const run = await runCli(['repair', '--dir', dir, '--json']);
  t.is(run.code, 0, run.stderr);
  return JSON.parse(run.stdout);
}

const REPAIR_FIXTURES = fs.readdirSync(fixturePath('stores')).filter((n) => n.startsWith('repair-'));

for (const name of REPAIR_FIXTURES) {
  test(`${name}: verify exits 0 after repair`, async (t) => {
    const dir = copyFixtureStore(t, name, 'stores');
    await repair(t, dir);
    const { code, report } = await verify(dir);
    t.is(code, 0, JSON.stringify(report.problems));
  });
}

test('repair-corrupt-record: the two damaged committed records leave gaps that a journal.repair record explains', async (t) => {
  const dir = copyFixtureStore(t, 'repair-corrupt-record', 'stores');
  const before = await verify(dir);
  t.is(before.code, 1);
  t.deepEqual(before.report.problems.map((p) => [p.code, p.line]), [
    [WarningCodes.INVALID_DATE, 4],
    ['RECORD_MISSING', 5],
    [WarningCodes.UNPARSABLE_LINE, 6],
    ['RECORD_MISSING', 7],
  ]);
  const { onWarning, warnings } = collectWarnings();
  const sessions = await freshReplay(dir, () => undefined);

  const doc = await repair(t, dir);
  t.deepEqual(doc.gaps.map((g) => g.missing), [
    [4, 4],
    [6, 6],
  ]);
  const live = fs.readFileSync(path.join(dir, 'journal-00000002.ndjson'), 'utf8').trim().split('\n');
  t.is(live.length, 1);
  t.is((JSON.parse(live[0]!) as { t: string }).t, REPAIR_EVENT);

  const after = await verify(dir);
  t.is(after.code, 0, JSON.stringify(after.report.problems));
  t.deepEqual(after.report.notes.filter((n) => n.code === 'REPAIRED_GAP').map((n) => n.line), [4, 5]);
  // Readers skip the journal.repair record: no warning, the same sessions.
  t.deepEqual(await freshReplay(dir, onWarning), sessions);
  t.deepEqual(warnings, []);
  // It survives compaction like any record: archived, and the history still verifies.
  const compacted = await compactSessions({ dir, ttlMs: NO_TTL, onWarning, now: () => FIXTURE_NOW });
  t.deepEqual(compacted.keptAside, { lines: 0, files: [] });
  t.deepEqual(warnings, []);
  t.is((await verify(dir)).code, 0);
});

test('a deletion repair did not make is still reported after repair', async (t) => {
  const dir = copyFixtureStore(t, 'repair-corrupt-record', 'stores');
  const file = path.join(dir, 'journal-00000001.ndjson');
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  fs.writeFileSync(file, [lines[0], ...lines.slice(2)].join('\n')); // seq 2 deleted by hand
  await repair(t, dir);
  const { code, report } = await verify(dir);
  t.is(code, 1);
  t.deepEqual(report.problems.map((p) => [p.code, p.line]), [['RECORD_MISSING', 2]]);
  t.is(report.notes.filter((n) => n.code === 'REPAIRED_GAP').length, 2);
});

test('a journal.repair record edited to explain more is itself reported, and explains nothing', async (t) => {
  const dir = copyFixtureStore(t, 'repair-corrupt-record', 'stores');
  await repair(t, dir);
  const live = path.join(dir, 'journal-00000002.ndjson');
  fs.writeFileSync(live, fs.readFileSync(live, 'utf8').replace('"missing":[4,4]', '"missing":[3,4]'));
  const { code, report } = await verify(dir);
  t.is(code, 1);
  t.true(report.problems.some((p) => p.code === 'RECORD_MISSING' && p.line === 4), JSON.stringify(report.problems));
  t.true(report.problems.some((p) => p.file === 'journal-00000002.ndjson'), 'the edited record breaks the chain');
});

test('repair-incomplete-commit: INCOMPLETE_COMMIT and STALE_COMMIT are problems; repair moves their records aside; no gap is needed', async (t) => {
  const dir = copyFixtureStore(t, 'repair-incomplete-commit', 'stores');
  const before = await verify(dir);
  t.is(before.code, 1);
  t.deepEqual(before.report.problems.map((p) => [p.code, p.line]), [
    [WarningCodes.INCOMPLETE_COMMIT, 3],
    [WarningCodes.STALE_COMMIT, 9],
  ]);
  const sessions = await freshReplay(dir, () => undefined);
  const doc = await repair(t, dir);
  t.deepEqual(doc.gaps, []);
  t.deepEqual(doc.files[0]!.items.map((i) => [i.reason, i.line]), [
    [WarningCodes.INCOMPLETE_COMMIT, 3],
    [WarningCodes.INCOMPLETE_COMMIT, 4],
    [WarningCodes.STALE_COMMIT, 9],
  ]);
  t.is((await verify(dir)).code, 0);
  const { onWarning, warnings } = collectWarnings();
  t.deepEqual(await freshReplay(dir, onWarning), sessions, 'readers never applied those records');
  t.deepEqual(warnings, []);
});
