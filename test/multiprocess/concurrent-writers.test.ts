/**
 * N real processes append at once, on shared and private sessions. A fresh
 * replay must hold every turn exactly once, each writer's turns on a shared
 * session in its own order, and the journal's seq numbers must be 1..K.
 *
 * fsync: this test runs with fsync: true (the default, durable group commit):
 * it is the one place where the fsync path runs under real cross-process
 * contention. 800 mutations with batched flushes stay well under 10 s.
 */
import test from 'ava';
import { SessionStore } from '../../src/index.js';
import { journalSeqs, killAll, readJournalLines, openChildren, type StoreChild } from '../helpers/child-protocol.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';
import { TEST_T0 } from '../helpers/fixture-now.js';
import { timeline } from '../helpers/child-clock.js';

const WRITERS = 4;
const MUTATIONS = 200;
const SHARED = ['shared-1', 'shared-2'];
/** Acknowledgement granularity per writer: every mutation, small and large group commits. */
const FLUSH_EVERY = [1, 3, 7, 25];

test('4 processes x 200 mutations on shared and private sessions: nothing lost, nothing duplicated, seq gapless', async (t) => {
  const dir = tempStoreDir(t);
  let children: StoreChild[] = [];
  t.teardown(() => killAll(children));
  children = await openChildren(WRITERS, 'writer-', { dir, fsync: true, clock: timeline(TEST_T0) });
  const started = Date.now();

  // All children are open and idle ('opened' is their ready message); the 'go' is the write command itself.
  const done = children.map((c, w) => c.request({ op: 'write', writer: `w${w}`, sessions: [...SHARED, `own-${w}`], count: MUTATIONS, flushEvery: FLUSH_EVERY[w]! }, 'done', 45_000));
  await Promise.all(done);
  const elapsed = Date.now() - started;
  for (const c of children) t.is(c.acked, MUTATIONS - 1, `${c.name} acknowledged every mutation`);
  await Promise.all(children.map((c) => c.close()));
  t.deepEqual(
    children.flatMap((c) => c.warnings),
    [],
    'no child reported a warning',
  );

  const { warnings, onWarning } = collectWarnings();
  const store = SessionStore.openSync({ dir, fsync: false, onWarning, clock: () => TEST_T0 });
  const sessions = store.listSessions();
  await store.close();
  t.deepEqual(warnings, [], 'a clean replay');

  const ids = sessions.map((s) => s.id).sort();
  t.deepEqual(ids, [...SHARED, ...Array.from({ length: WRITERS }, (_, w) => `own-${w}`)].sort());

  // Every prompt exactly once.
  const prompts = sessions.flatMap((s) => s.turns.map((turn) => turn.prompt));
  t.is(prompts.length, WRITERS * MUTATIONS, 'turn count');
  const expected = new Set<string>();
  for (let w = 0; w < WRITERS; w++) for (let i = 0; i < MUTATIONS; i++) expected.add(`w${w}:${i}`);
  t.is(new Set(prompts).size, prompts.length, 'no duplicated turn');
  t.deepEqual([...prompts].sort(), [...expected].sort(), 'exactly the prompts written');

  // Each turn is on the session it was written to, and each writer's turns keep their order.
  for (const session of sessions) {
    const perWriter = new Map<number, number[]>();
    for (const turn of session.turns) {
      const [writer, index] = turn.prompt.split(':') as [string, string];
      const w = Number(writer.slice(1));
      const i = Number(index);
      const cycle = [...SHARED, `own-${w}`];
      t.is(cycle[i % cycle.length], session.id, `${turn.prompt} is on the right session`);
      perWriter.set(w, [...(perWriter.get(w) ?? []), i]);
    }
    for (const [w, order] of perWriter) {
      t.deepEqual(order, [...order].sort((a, b) => a - b), `w${w}'s turns on ${session.id} are in its order`);
    }
    if (SHARED.includes(session.id)) t.is(perWriter.size, WRITERS, `every writer reached ${session.id}`);
  }

  // Store-wide seq: gapless 1..K in file order (K = turns + the ensureSession creates).
  const seqs = journalSeqs(dir);
  t.deepEqual(
    seqs,
    Array.from({ length: seqs.length }, (_, i) => i + 1),
    'seq numbers are 1..K in file order',
  );
  t.true(seqs.length >= WRITERS * MUTATIONS + WRITERS, `K = ${seqs.length}`);
  // The writers really ran at the same time: their commits alternate in the file.
  // Told apart by each commit's tag (`c`, one per process in format 2): a line names its writer (`w`) only where the tag does not.
  const writersInOrder = readJournalLines(dir).map((l) => (l.record as { c?: string }).c).filter((tag) => tag !== undefined);
  const switches = writersInOrder.filter((w, i) => i > 0 && w !== writersInOrder[i - 1]).length;
  t.true(switches >= 2 * WRITERS, `commits of different processes interleave (${switches} switches)`);
  t.log(`${WRITERS} writers x ${MUTATIONS} mutations (fsync on) in ${elapsed} ms; ${seqs.length} records, ${switches} writer switches`);
});
