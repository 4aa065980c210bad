/**
 * A snapshot line holds a whole session. With default options a session may
 * grow past the journal's 1 MiB line limit turn by turn (each turn is under
 * it); its snapshot line must still be read back, or the store would open
 * without the snapshot, and the folded segments are already archived. And a
 * snapshot header that writers would continue from is checked first. A
 * compaction never folds away a record longer than it may read.
 */
import test from 'ava';
import path from 'node:path';
import { ErrorCodes, SessionStore, WarningCodes, compactSessions } from '../../src/index.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';
import { copyFixtureStore } from '../helpers/fixture-store.js';
import { fingerprint, freshReplay, runCli, snapshotsIn, waitFor } from '../helpers/compaction-helpers.js';
import { STORES_NOW } from '../helpers/fixture-now.js';

test('a session of 1.5 MiB (six 250 KiB turns) survives compaction with default options, and so do the others', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const store = SessionStore.openSync({ dir, autoCompact: false, onWarning });
  const big = store.createSession();
  for (let i = 0; i < 6; i++) store.addTurn(big, { prompt: `${i}`.repeat(250 * 1024), response: 'ok', timestamp: new Date() });
  const small = store.createSession();
  store.addTurn(small, { prompt: 'hello', response: 'hi', timestamp: new Date() });
  await store.close();
  const before = await freshReplay(dir, onWarning);

  const result = await compactSessions({ dir, onWarning });
  t.is(result.status, 'compacted');
  t.deepEqual(await freshReplay(dir, onWarning), before);
  // Reading refreshes access times: checked after the comparison.
  const after = SessionStore.openSync({ dir, autoCompact: false, onWarning });
  t.is(after.getSession(big)?.turns.length, 6);
  t.is(after.getSession(big)?.turns[5]?.prompt.length, 250 * 1024);
  t.is(after.getSession(small)?.turns.length, 1);
  after.closeSync();
  t.deepEqual(warnings, []);
});

test('a snapshot header with a fractional seq is refused as SNAPSHOT_UNREADABLE, and records written afterwards stay readable (fixtures/stores/snapshot-fractional-seq)', async (t) => {
  const dir = copyFixtureStore(t, 'snapshot-fractional-seq', 'stores');
  const { warnings, onWarning } = collectWarnings();
  const clock = () => STORES_NOW.snapshotFractionalSeq;
  const store = SessionStore.openSync({ dir, autoCompact: false, onWarning, clock });
  t.deepEqual(
    warnings.map((w) => [w.code, path.basename(w.file ?? ''), /seq 3\.5/.test(w.message)]),
    [
      [WarningCodes.SNAPSHOT_UNREADABLE, 'snapshot-00000002.ndjson', true],
      // Compacted with --no-archive: no older base and no segment 1, so the loud warning that history is missing (FORMAT.md "Reading: when a file is damaged").
      [WarningCodes.SNAPSHOT_UNREADABLE, 'store', false],
    ],
  );
  t.regex(warnings[1]!.message, /EMPTY/);
  store.ensureSession('written-after');
  await store.close();
  const again = collectWarnings();
  const reopened = SessionStore.openSync({ dir, autoCompact: false, onWarning: again.onWarning, clock });
  t.truthy(reopened.getSession('written-after'), 'the record written after the refused snapshot replays');
  reopened.closeSync();
  t.deepEqual(again.warnings.map((w) => w.code), [WarningCodes.SNAPSHOT_UNREADABLE, WarningCodes.SNAPSHOT_UNREADABLE], 'only the snapshot (and the history it hides), never the new record');
});

test('a store written with maxLineBytes 4 MiB: compacting with the default limit refuses with LINE_TOO_LONG and changes nothing; with the store limit (as auto-compaction and --max-line-bytes pass it) the 2 MiB turn is kept', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const limits = { maxLineBytes: 4 * 1024 * 1024, maxTurnBytes: 3 * 1024 * 1024 };
  const store = SessionStore.openSync({ dir, autoCompact: false, onWarning, ...limits });
  const id = store.createSession();
  store.addTurn(id, { prompt: 'x'.repeat(2 * 1024 * 1024), response: 'ok', timestamp: new Date() });
  await store.close();
  const before = fingerprint(dir);

  const err = await t.throwsAsync(compactSessions({ dir, onWarning }));
  t.is((err as { code?: string }).code, ErrorCodes.LINE_TOO_LONG);
  t.deepEqual(fingerprint(dir), before, 'nothing changed');
  t.deepEqual(warnings.map((w) => w.code), [WarningCodes.LINE_TOO_LONG], 'the skipped line is reported too');

  // The CLI, as cron runs it: exit 4 without the flag, done with it.
  const refused = await runCli(['compact', '--dir', dir]);
  t.is(refused.code, 4);
  t.regex(refused.stderr, /LINE_TOO_LONG[\s\S]*hint: pass --max-line-bytes/);
  const done = await runCli(['compact', '--dir', dir, '--max-line-bytes', String(limits.maxLineBytes)]);
  t.is(done.code, 0, done.stderr);
  const reopened = SessionStore.openSync({ dir, autoCompact: false, onWarning, ...limits });
  t.is(reopened.getSession(id)?.turns[0]?.prompt.length, 2 * 1024 * 1024);
  reopened.closeSync();
});

test('auto-compaction hands the child the store maxLineBytes: a 2 MiB turn in a 4 MiB store survives it', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const limits = { maxLineBytes: 4 * 1024 * 1024, maxTurnBytes: 3 * 1024 * 1024 };
  const store = SessionStore.openSync({ dir, fsync: false, onWarning, autoCompact: { minBytes: 1024 * 1024, growthPercent: 100 }, ...limits });
  const id = store.createSession();
  store.addTurn(id, { prompt: 'x'.repeat(2 * 1024 * 1024), response: 'ok', timestamp: new Date() });
  await store.flush();
  const running = () => (store as unknown as { autoCompactor?: { running?: Promise<number> } }).autoCompactor?.running;
  t.true(await waitFor(() => running() !== undefined, 5000), 'a compaction child was started');
  t.is(await running(), 0);
  await store.close();
  t.true(snapshotsIn(dir).length > 0);
  const reopened = SessionStore.openSync({ dir, autoCompact: false, onWarning, ...limits });
  t.is(reopened.getSession(id)?.turns[0]?.prompt.length, 2 * 1024 * 1024);
  reopened.closeSync();
  t.deepEqual(warnings, []);
});

test('a record longer than the compaction may read, appended between its replay and its rotation, also stops it (LINE_TOO_LONG) before anything is folded', async (t) => {
  const dir = tempStoreDir(t);
  const { onWarning } = collectWarnings();
  const limits = { maxLineBytes: 4 * 1024 * 1024, maxTurnBytes: 3 * 1024 * 1024 };
  const store = SessionStore.openSync({ dir, autoCompact: false, onWarning, ...limits });
  const id = store.createSession();
  store.addTurn(id, { prompt: 'small', response: 'ok', timestamp: new Date() });
  await store.flush();
  const err = await t.throwsAsync(
    compactSessions({
      dir,
      onWarning,
      onStep: async (step) => {
        if (step !== 'replayed') return;
        store.addTurn(id, { prompt: 'x'.repeat(2 * 1024 * 1024), response: 'late', timestamp: new Date() });
        await store.flush();
      },
    }),
  );
  t.is((err as { code?: string }).code, ErrorCodes.LINE_TOO_LONG);
  await store.close();
  t.deepEqual(snapshotsIn(dir), [], 'no snapshot was written');
  const reopened = SessionStore.openSync({ dir, autoCompact: false, onWarning, ...limits });
  t.deepEqual(reopened.getSession(id)?.turns.map((x) => x.response), ['ok', 'late']);
  reopened.closeSync();
});
