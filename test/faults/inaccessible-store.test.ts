/**
 * A store whose files cannot be read, with real faults: a server running as
 * another user than the one who owns the store directory (EACCES; the tests
 * run as root, which no permission stops, so the server is a child process
 * running as root without the capabilities that override file permissions:
 * it can still load this checkout wherever it lies, as its owner, but not
 * enter a directory that belongs to nobody), and a FIFO where the next segment belongs. Reads, as
 * codex-mcp-server's in-memory storage, never throw: they answer from the
 * process's view, with one CATCH_UP_FAILED warning collapsed over repeats.
 * Mutations go on in memory and are committed once the store is usable.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { StoreChild } from '../helpers/child-protocol.js';
import { timeline } from '../helpers/child-clock.js';
import { freshReplay, openStore, waitFor } from '../helpers/compaction-helpers.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { TEST_T0 } from '../helpers/fixture-now.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';
import { Journal } from '../../src/storage/journal.js';

const NOBODY = 65534;

/** root without CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER: bound by file permissions like any user. */
const WITHOUT_PERMISSION_OVERRIDE = ['setpriv', '--bounding-set', '-dac_override,-dac_read_search,-fowner'];

/** A directory for the store, removed after the test. */
function storeParent(t: ExecutionContext): string {
  if (process.getuid?.() !== 0) throw new Error('this test changes file owners and needs root (CI runs as root)');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sj-eacces-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  return root;
}

/**
 * Another writer closes segment 1 with a rotation marker and makes segment 2
 * (as a compaction does). A writer that opened the store made segment 1 at
 * once and reads it through its open descriptor, so only following such a
 * marker makes a read look in the directory again.
 */
async function rotateAsAnotherWriter(dir: string): Promise<void> {
  const journal = Journal.openSync({ dir, consumer: { reset: () => undefined, restore: () => undefined, apply: () => undefined }, flushOnExit: false });
  await journal.rotate();
  await journal.close();
}

function chownTree(dir: string, uid: number, gid: number): void {
  fs.chownSync(dir, uid, gid);
  for (const name of fs.readdirSync(dir)) fs.chownSync(path.join(dir, name), uid, gid);
}

const counts = (warnings: readonly { code: string }[]) => warnings.reduce<Record<string, number>>((m, w) => ({ ...m, [w.code]: (m[w.code] ?? 0) + 1 }), {});

test('a store directory taken over by another user (EACCES): reads answer from the view and never throw, CATCH_UP_FAILED collapsed; mutations apply in memory and are committed once it is accessible again, RECOVERED once each', async (t) => {
  const dir = path.join(storeParent(t), 'store');
  const child = new StoreChild('server-without-override', { wrapper: WITHOUT_PERMISSION_OVERRIDE });
  t.teardown(() => child.kill());
  await child.request({ op: 'open', dir, fsync: true, clock: timeline(TEST_T0) }, 'opened');
  t.is(fs.statSync(dir).uid, 0, 'the server created its store');

  fs.chownSync(dir, NOBODY, NOBODY); // an operator chowned it to another account: 0700, nobody's
  t.is((await child.request({ op: 'get', id: 'ghost' }, 'session')).session, null, 'segment 1 is read through its open descriptor');
  t.deepEqual(child.warnings, [], 'so nothing failed yet');
  await rotateAsAnotherWriter(dir); // the operator's writer moves the store on to segment 2, which the server must open
  for (let i = 0; i < 20; i++) t.is((await child.request({ op: 'get', id: 'ghost' }, 'session')).session, null, 'getSession: undefined, no throw');
  for (let i = 0; i < 5; i++) t.deepEqual((await child.request({ op: 'list' }, 'list')).sessions, [], 'listSessions: [], no throw');
  const failed = child.warnings.filter((w) => w.code === 'CATCH_UP_FAILED');
  t.is(failed.length, 5, '25 failing reads, warned at the 1st, 2nd, 4th, 8th and 16th');
  t.regex(failed[0]!.message, /^reading other processes' commits failed; reads answer from this process's view: IO_ERROR: .*EACCES/);
  t.regex(failed[4]!.message, /failed again: 16 times in a row since \S+Z/);

  await child.request({ op: 'ops', ops: [{ k: 'ensure', id: 'kept' }, { k: 'turn', id: 'kept', prompt: 'p1' }], flush: false }, 'applied');
  const kept = (await child.request({ op: 'get', id: 'kept' }, 'session')).session;
  t.deepEqual(kept?.turns.map((x) => x.prompt), ['p1'], 'the mutation is in the view at once, as in the original');
  t.true(await waitFor(() => child.warnings.some((w) => w.code === 'COMMIT_FAILED'), 30_000), 'its background commit fails, and says so');
  t.regex(child.warnings.find((w) => w.code === 'COMMIT_FAILED')!.message, /^background commit failed; retrying in \d\.\d s: .*EACCES/);

  chownTree(dir, 0, 0);
  await child.request({ op: 'list' }, 'list');
  t.true(await waitFor(() => child.warnings.filter((w) => w.code === 'RECOVERED').length === 2, 30_000), `both recover: ${JSON.stringify(child.warnings)}`);
  const recovered = child.warnings.filter((w) => w.code === 'RECOVERED').map((w) => w.message);
  t.true(recovered.some((m) => /^reading other processes' commits works again after 28 failures in a row since \S+Z$/.test(m)), `25 reads, then ensureSession, addTurn and getSession failed: ${recovered.join(' | ')}`);
  t.true(recovered.some((m) => /^background commit works again after \d+ failures? in a row since \S+Z$/.test(m)));
  await child.request({ op: 'ops', ops: [] }, 'flushed');
  await child.close();
  const { warnings, onWarning } = collectWarnings();
  const sessions = await freshReplay(dir, onWarning);
  t.deepEqual(sessions.map((s) => [s.id, s.turns.map((x) => x.prompt)]), [['kept', ['p1']]], 'what was done meanwhile is durable');
  t.deepEqual(warnings, []);
  t.like(counts(child.warnings), { CATCH_UP_FAILED: 5, RECOVERED: 2 }, 'CATCH_UP_FAILED 5 times for 28 failures; COMMIT_FAILED once, or twice if a retry ran before the directory came back');
});

test('SessionStore.openSync of a store directory the process may not read (EACCES) throws IO_ERROR at once: the misconfiguration shows at startup', async (t) => {
  const dir = path.join(storeParent(t), 'store');
  fs.mkdirSync(dir, { mode: 0o700 });
  fs.chownSync(dir, NOBODY, NOBODY);
  const child = new StoreChild('opener-without-override', { wrapper: WITHOUT_PERMISSION_OVERRIDE });
  t.teardown(() => child.kill());
  const error = await t.throwsAsync(child.request({ op: 'open', dir, fsync: true, clock: timeline(TEST_T0) }, 'opened'));
  t.regex(error!.message, /SessionJournalError: readdir failed for \S+\/store: EACCES/, 'ioError: code IO_ERROR, cause EACCES');
});

test('a FIFO where the next segment belongs: reads answer from the view (CATCH_UP_FAILED, NOT_A_FILE), flush() rejects with NOT_A_FILE; with the FIFO gone the same store commits', async (t) => {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(TEST_T0);
  const { warnings, onWarning } = collectWarnings();
  const store = openStore(dir, onWarning, { clock: clock.read });
  t.teardown(() => store.close().catch(() => undefined));
  await rotateAsAnotherWriter(dir);
  fs.unlinkSync(path.join(dir, 'journal-00000002.ndjson'));
  execFileSync('mkfifo', ['-m', '600', path.join(dir, 'journal-00000002.ndjson')]); // an operator's log pipe, made in the wrong directory
  t.is(store.getSession('x'), undefined);
  t.deepEqual(store.listSessions(), []);
  t.is(store.getCodexConversationId('x'), undefined);
  t.deepEqual(counts(warnings), { CATCH_UP_FAILED: 2 }, 'three reads: warned at the 1st and 2nd');
  t.regex(warnings[0]!.message, /NOT_A_FILE: store file .*journal-00000002\.ndjson is not a regular file \(a FIFO\)/);

  store.ensureSession('a');
  store.addTurn('a', { prompt: 'p', response: 'r', timestamp: new Date(clock.now) });
  t.is(store.getSession('a')?.turns.length, 1);
  const flushed = await t.throwsAsync(store.flush());
  t.is((flushed as { code?: string }).code, 'NOT_A_FILE', 'a waiting flush() gets the error (no warning then)');

  fs.unlinkSync(path.join(dir, 'journal-00000002.ndjson'));
  await store.flush();
  t.is(store.listSessions().length, 1);
  t.deepEqual(counts(warnings), { CATCH_UP_FAILED: 3, RECOVERED: 1 }, 'the failing read at 4 was warned; reads recovered; no commit failure was warned, so none is said to be over');
  await store.close();
  t.deepEqual((await freshReplay(dir, () => undefined)).map((s) => s.id), ['a']);
});
