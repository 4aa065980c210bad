/**
 * Redundancy is used at open (docs/FORMAT.md, "Reading: when a file is
 * damaged"): a damaged rotation marker leads on to the segment that continues
 * the sequence, a damaged newest snapshot falls back to an older base (from
 * archive/ when needed), and a snapshot header must name its file's segment.
 * A rotation that died after creating its successor still leaves an orphan.
 */
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { SessionStore, WarningCodes, type JournalWarning } from '../../src/index.js';
import { runCli } from '../helpers/compaction-helpers.js';
import { copyFixtureStore } from '../helpers/fixture-store.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';

/** The fixtures' "now" (their clock started at 2026-03-01T10:00Z). */
const NOW = Date.UTC(2026, 2, 2, 0, 0, 0);
const open = (dir: string, onWarning: (w: JournalWarning) => void) =>
  SessionStore.openSync({ dir, fsync: false, autoCompact: false, ttlMs: 1e13, maxSessions: 1000, clock: () => NOW, onWarning });

/** Every turn's prompt, sorted. */
function prompts(dir: string, onWarning: (w: JournalWarning) => void = () => undefined): { prompts: string[]; store: SessionStore } {
  const store = open(dir, onWarning);
  return { prompts: store.listSessions().flatMap((s) => s.turns.map((turn) => turn.prompt)).sort(), store };
}

const range = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
const ALL_AB = [...range('a', 6), ...range('b', 4)].sort();

for (const fixture of ['damaged-rotation-marker', 'rotation-marker-cut']) {
  test(`${fixture}: the later segment is applied (ROTATION_MARKER_DAMAGED at the marker), a writer appends to it, repair is not "clean", verify exits 1`, async (t) => {
    const dir = copyFixtureStore(t, fixture, 'stores');
    const { warnings, onWarning } = collectWarnings();
    const { prompts: seen, store } = prompts(dir, onWarning);
    t.deepEqual(seen, ALL_AB);
    const damaged = warnings.filter((w) => w.code === WarningCodes.ROTATION_MARKER_DAMAGED);
    t.is(damaged.length, 1, JSON.stringify(warnings));
    t.is(path.basename(damaged[0]!.file!), 'journal-00000001.ndjson');
    t.is(damaged[0]!.line, 13);
    t.false(warnings.some((w) => w.code === WarningCodes.ORPHAN_SEGMENT));
    const firstBefore = fs.statSync(path.join(dir, 'journal-00000001.ndjson')).size;
    store.addTurn('s0', { prompt: 'after', response: 'r', timestamp: new Date(NOW) });
    await store.close();
    t.is(fs.statSync(path.join(dir, 'journal-00000001.ndjson')).size, firstBefore, 'nothing appended after the damaged marker');
    t.regex(fs.readFileSync(path.join(dir, 'journal-00000002.ndjson'), 'utf8'), /"prompt":"after"/);
    const again = prompts(dir);
    t.deepEqual(again.prompts, [...ALL_AB, 'after'].sort());
    await again.store.close();
    const verify = await runCli(['verify', '--dir', dir]);
    t.is(verify.code, 1, verify.stdout);
    const repair = await runCli(['repair', '--dir', dir, '--json']);
    t.is(repair.code, 1, repair.stdout + repair.stderr);
    const doc = JSON.parse(repair.stdout) as { status: string; left: Array<{ file: string; reason: string }> };
    t.not(doc.status, 'clean');
    t.true(doc.left.some((l) => l.file === 'journal-00000001.ndjson' && l.reason === WarningCodes.ROTATION_MARKER_DAMAGED), repair.stdout);
    const afterRepair = prompts(dir);
    t.deepEqual(afterRepair.prompts, [...ALL_AB, 'after'].sort(), 'repair lost nothing');
    await afterRepair.store.close();
  });
}

test('snapshot-header-ahead: a header naming another segment than its file is SNAPSHOT_UNREADABLE, and the archived history gives every turn', async (t) => {
  const dir = copyFixtureStore(t, 'snapshot-header-ahead', 'stores');
  const { warnings, onWarning } = collectWarnings();
  const { prompts: seen, store } = prompts(dir, onWarning);
  await store.close();
  t.deepEqual(seen, ALL_AB);
  const unreadable = warnings.filter((w) => w.code === WarningCodes.SNAPSHOT_UNREADABLE);
  t.is(unreadable.length, 1, JSON.stringify(warnings));
  t.regex(unreadable[0]!.message, /segment 9 is not the 2 of the file name/);
});

test('damaged-snapshot-archive-fallback: a damaged byte that still parses fails the footer sha256; the archived snapshot and segments give every turn once', async (t) => {
  const dir = copyFixtureStore(t, 'damaged-snapshot-archive-fallback', 'stores');
  const { warnings, onWarning } = collectWarnings();
  const { prompts: seen, store } = prompts(dir, onWarning);
  t.deepEqual(seen, [...ALL_AB, ...range('c', 4)].sort());
  t.deepEqual(
    warnings.map((w) => [w.code, path.relative(dir, w.file!)]),
    [
      [WarningCodes.SNAPSHOT_UNREADABLE, 'snapshot-00000003.ndjson'],
      [WarningCodes.SNAPSHOT_UNREADABLE, path.join('archive', 'snapshot-00000002.ndjson.gz')],
    ],
  );
  t.regex(warnings[0]!.message, /sha256/);
  // A writer continues the chain from the fallback: the next open agrees.
  store.addTurn('s1', { prompt: 'after', response: 'r', timestamp: new Date(NOW) });
  await store.close();
  const again = prompts(dir);
  t.deepEqual(again.prompts, [...ALL_AB, ...range('c', 4), 'after'].sort());
  await again.store.close();
});

test('a rotation that died after creating its successor: the empty segment is not followed, nothing is warned, writers stay in the live segment', async (t) => {
  const dir = tempStoreDir(t);
  const first = open(dir, () => undefined);
  first.ensureSession('s0');
  first.addTurn('s0', { prompt: 'one', response: 'r', timestamp: new Date(NOW) });
  await first.close();
  fs.writeFileSync(path.join(dir, 'journal-00000002.ndjson'), '', { mode: 0o600 });
  const { warnings, onWarning } = collectWarnings();
  const { prompts: seen, store } = prompts(dir, onWarning);
  t.deepEqual(seen, ['one']);
  t.deepEqual(warnings, []);
  store.addTurn('s0', { prompt: 'two', response: 'r', timestamp: new Date(NOW) });
  await store.close();
  t.is(fs.statSync(path.join(dir, 'journal-00000002.ndjson')).size, 0);
  t.regex(fs.readFileSync(path.join(dir, 'journal-00000001.ndjson'), 'utf8'), /"prompt":"two"/);
});

test('a non-empty segment whose first record does not continue the sequence is still an orphan (ORPHAN_SEGMENT), not applied', async (t) => {
  const dir = tempStoreDir(t);
  const first = open(dir, () => undefined);
  first.ensureSession('s0');
  for (const p of ['one', 'two', 'three']) first.addTurn('s0', { prompt: p, response: 'r', timestamp: new Date(NOW) });
  await first.close();
  // Its records repeat seq 2..: a copy of older lines (a restore from an old backup), not a continuation.
  const lines = fs.readFileSync(path.join(dir, 'journal-00000001.ndjson'), 'utf8').split('\n').filter(Boolean);
  fs.writeFileSync(path.join(dir, 'journal-00000002.ndjson'), lines.slice(1).join('\n') + '\n', { mode: 0o600 });
  const { warnings, onWarning } = collectWarnings();
  const { prompts: seen, store } = prompts(dir, onWarning);
  await store.close();
  t.deepEqual(seen, ['one', 'three', 'two']);
  t.deepEqual(warnings.map((w) => w.code), [WarningCodes.ORPHAN_SEGMENT]);
});
