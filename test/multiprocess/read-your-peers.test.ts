/**
 * The rebase race made deterministic with the synchronous API of a store
 * directory. The cross-process read-your-peers and convergence tests moved
 * to the conformance suite (test/conformance/sessions-peers.test.ts,
 * sessions-convergence.test.ts), which runs them on every backend; so did an
 * order-agnostic version of this one.
 */
import test from 'ava';
import { SessionStore } from '../../src/index.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';
import { clockOf, timeline } from '../helpers/child-clock.js';
import { TEST_T0 } from '../helpers/fixture-now.js';

const turnOf = (prompt: string) => ({ prompt, response: `re ${prompt}`, timestamp: new Date(TEST_T0) });
/** Every store here runs on one time line from TEST_T0. */
const CLOCK = timeline(TEST_T0);

/**
 * The same race, made deterministic: two stores on one directory in this
 * process (two writers as far as the journal is concerned). A's update that
 * replaces `turns`, then A's addTurn, are still queued when B's record for the
 * same session arrives, so A rebases the session by applying its queued
 * events again.
 */
test('a queued updateSession({turns}) followed by addTurn survives a rebase on a peer record', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const a = SessionStore.openSync({ dir, fsync: false, onWarning, clock: clockOf(CLOCK) });
  const b = SessionStore.openSync({ dir, fsync: false, onWarning, clock: clockOf(CLOCK) });
  a.ensureSession('s');
  a.flushSync();
  b.listSessions();

  a.updateSession('s', { turns: [turnOf('a-replaced')] });
  a.addTurn('s', turnOf('a-after'));
  b.addTurn('s', turnOf('b-between'));
  b.flushSync(); // in the file: b's turn, then (later) a's update and a's turn
  const beforeCommit = a.getSession('s')!.turns.map((x) => x.prompt);
  a.flushSync();
  const afterCommit = a.listSessions()[0]!.turns.map((x) => x.prompt);
  b.closeSync();
  a.closeSync();

  const fresh = SessionStore.openSync({ dir, fsync: false, onWarning, clock: clockOf(CLOCK) });
  const replay = fresh.getSession('s')!.turns.map((x) => x.prompt);
  fresh.closeSync();
  t.deepEqual(replay, ['a-replaced', 'a-after'], 'the file: the update replaced b-between, then a-after');
  t.deepEqual(beforeCommit, replay, "a's view while its entries are queued");
  t.deepEqual(afterCommit, replay, "a's view after its commit");
  t.deepEqual(warnings, []);
});
