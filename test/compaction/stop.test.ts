/**
 * A compaction asked to stop (the `signal` option, which the CLI aborts on
 * SIGINT/SIGTERM/SIGHUP): it rejects with the signal's reason, removes its
 * temporary files, releases its locks, and leaves what a crash at that point
 * leaves. The stop is requested from onStep, so each case stops at a known
 * point; the CLI's signal handling is in test/cli/signals.test.ts.
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { compactSessions, type CompactionStep } from '../../src/index.js';
import { tempFileOwner } from '../../src/storage/file/store-layout.js';
import { writeSnapshot } from '../../src/storage/file/snapshot-writer.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';
import { FakeClock, NO_TTL, T0, fingerprint, freshReplay, openStore, snapshotsIn, writeAgedSessions } from '../helpers/compaction-helpers.js';

async function store(t: ExecutionContext): Promise<string> {
  const dir = tempStoreDir(t);
  const { onWarning } = collectWarnings();
  const clock = new FakeClock(T0 - 60_000);
  const s = openStore(dir, onWarning, { clock: clock.read });
  await writeAgedSessions(s, clock, ['a', 'b', 'c'], 1000);
  await s.close();
  return dir;
}

const leftovers = (dir: string) =>
  [...fs.readdirSync(dir), ...(fs.existsSync(path.join(dir, 'archive')) ? fs.readdirSync(path.join(dir, 'archive')) : [])].filter((n) => tempFileOwner(n) !== undefined || n.endsWith('.lock'));

/** Compacts `dir`, aborting when `at` is reached. */
function compactStoppedAt(dir: string, at: CompactionStep) {
  const controller = new AbortController();
  const reason = new Error('stop requested');
  return {
    reason,
    done: compactSessions({
      dir,
      ttlMs: NO_TTL,
      now: () => T0,
      signal: controller.signal,
      onStep: (step) => {
        if (step === at) controller.abort(reason);
      },
    }),
  };
}

test('stopped after its replay: rejects with the reason, the store exactly as it was', async (t) => {
  const dir = await store(t);
  const before = fingerprint(dir);
  const { reason, done } = compactStoppedAt(dir, 'replayed');
  t.is(await t.throwsAsync(done), reason);
  t.deepEqual(fingerprint(dir), before);
});

test('stopped after the rotation or the snapshot: consistent, no temporary file or lock, the same sessions; the next compaction finishes', async (t) => {
  for (const at of ['rotated', 'retained', 'snapshot-written'] as const) {
    const dir = await store(t);
    const { onWarning, warnings } = collectWarnings();
    const sessions = await freshReplay(dir, onWarning);
    const { reason, done } = compactStoppedAt(dir, at);
    t.is(await t.throwsAsync(done), reason, at);
    t.deepEqual(leftovers(dir), [], at);
    t.deepEqual(await freshReplay(dir, onWarning), sessions, at);
    t.deepEqual(snapshotsIn(dir), at === 'snapshot-written' ? ['snapshot-00000002.ndjson'] : [], at);
    const next = await compactSessions({ dir, ttlMs: NO_TTL, now: () => T0 });
    t.is(next.status, 'compacted', at);
    t.deepEqual(await freshReplay(dir, onWarning), sessions, at);
    t.deepEqual(fs.readdirSync(dir).filter((n) => n.startsWith('journal-') || n.startsWith('snapshot-')).length, 2, `${at}: one live segment and one snapshot once done`);
    t.deepEqual(warnings, [], at);
  }
});

test('a snapshot being written stops between its chunks: the temporary file is removed, nothing is published', async (t) => {
  const dir = tempStoreDir(t);
  fs.mkdirSync(dir, { mode: 0o700 });
  const controller = new AbortController();
  const reason = new Error('stop requested');
  // About 8 MiB of entries: several 1 MiB chunks; the stop is requested while the third is built.
  let produced = 0;
  function* entries() {
    for (let i = 0; i < 8192; i++) {
      if (++produced === 3000) controller.abort(reason);
      yield { id: `s${i}`, text: 'x'.repeat(1000) };
    }
  }
  t.is(await t.throwsAsync(writeSnapshot(dir, 2, 5, '', entries(), controller.signal)), reason);
  t.true(produced < 8192, 'it did not write the rest');
  t.deepEqual(fs.readdirSync(dir), []);
  const whole = await writeSnapshot(dir, 2, 5, '', [{ id: 'a' }]);
  t.is(whole.entries, 1);
  t.deepEqual(fs.readdirSync(dir), ['snapshot-00000002.ndjson']);
});
