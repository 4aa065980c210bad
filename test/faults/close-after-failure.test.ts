/**
 * close() on a real full disk (a loop-mounted ext4 image filled to ENOSPC):
 * the close fails, and so must every later close() and flush() of that
 * store, since its queued turn is not in the journal. Before, the second
 * close() resolved as if everything were durable.
 */
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { SessionStore } from '../../src/index.js';
import { fillDisk, mountSmallExt4 } from '../helpers/small-fs.js';

/** The fixtures' "now" for this family. */
const NOW = Date.UTC(2026, 10, 21, 9, 0, 0);

test('a close that failed on a full disk fails again on every later close() and flush(), with CLOSED', async (t) => {
  const mount = mountSmallExt4(t, 4);
  const dir = path.join(mount, 'store');
  fs.mkdirSync(dir, { mode: 0o700 });
  const store = SessionStore.openSync({ dir, clock: () => NOW, autoCompact: false, onWarning: () => undefined });
  store.ensureSession('s1');
  await store.flush();
  const filler = fillDisk(mount);
  store.addTurn('s1', { prompt: 'p', response: 'r'.repeat(64 * 1024), timestamp: new Date(NOW) });
  const first = await t.throwsAsync(store.close());
  t.is((first as { code?: string }).code, 'IO_ERROR');
  const again = await t.throwsAsync(store.close());
  t.is((again as { code?: string }).code, 'CLOSED', 'the second close does not pretend the turn is durable');
  const flush = await t.throwsAsync(store.flush());
  t.is((flush as { code?: string }).code, 'CLOSED');
  t.throws(() => store.closeSync(), { code: 'CLOSED' });

  fs.unlinkSync(filler);
  const reopened = SessionStore.openSync({ dir, clock: () => NOW, autoCompact: false, onWarning: () => undefined });
  t.deepEqual(reopened.getSession('s1')?.turns, [], 'the turn that was never acknowledged is not there');
  await reopened.close();
});
