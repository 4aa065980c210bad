/**
 * Convergence of several writers on every backend, in real processes:
 * seeded rounds of mutations on shared sessions, with scheduling points so
 * commits and catch-ups interleave, end with every view equal to a fresh
 * replay; and 4 writers x 200 mutations lose nothing, duplicate nothing,
 * and number their records 1..K. (Moved from
 * test/multiprocess/read-your-peers.test.ts and concurrent-writers.test.ts.)
 *
 * fsync: the 4-writer run uses fsync: true (the default, durable group
 * commit): the one place where it runs under real cross-process contention.
 * The rounds use fsync: false (speed).
 */
import test from 'ava';
import { killAll, openChildren, seededRandom, serializeSessions, type Op, type PlainSession, type StoreChild } from '../helpers/child-protocol.js';
import { clockOf, timeline } from '../helpers/child-clock.js';
import { backends } from './backends.js';
import { TEST_T0, collectWarnings, named } from './harness.js';

/** Every store of the rounds, in this process and in the children, runs on one time line from TEST_T0. */
const CLOCK = timeline(TEST_T0);
/** Turns as one string each, so a failed comparison shows which turn differs. */
const forDiff = (sessions: readonly PlainSession[]) => sessions.map((s) => ({ ...s, turns: s.turns.map((x) => `${x.prompt} | ${x.response} | ${x.timestamp}`) }));

const IDS = ['c1', 'c1', 'c1', 'c2', 'c3'];

function randomUpdate(rnd: () => number, tag: string): Record<string, unknown> {
  switch (Math.floor(rnd() * 4)) {
    case 0:
      return { codexConversationId: `upd-${tag}` };
    case 1:
      return { note: `note-${tag}` }; // unknown keys are kept, as the original's Object.assign keeps them
    case 2:
      return { createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, Math.floor(rnd() * 1000))).toISOString() };
    default:
      return { turns: [{ prompt: `replaced-${tag}`, response: 'r', timestamp: '2026-02-03T04:05:06.789Z' }] };
  }
}

/** A seeded mix of mutations on a few shared ids, with scheduling points so commits and catch-ups interleave. */
function randomOps(rnd: () => number, who: string, count: number): Op[] {
  const ops: Op[] = [{ k: 'ensure', id: 'c1' }, { k: 'ensure', id: 'c2' }];
  for (let i = 0; i < count; i++) {
    const id = IDS[Math.floor(rnd() * IDS.length)]!;
    const tag = `${who}.${i}`;
    const r = rnd();
    if (r < 0.04) {
      // Replace the turns, add one, and stay busy while peers commit: our queued events get rebased.
      const turns = [{ prompt: `replaced-${tag}`, response: 'r', timestamp: '2026-02-03T04:05:06.789Z' }];
      ops.push({ k: 'update', id, data: { turns } }, { k: 'turn', id, prompt: `after-${tag}` }, { k: 'stall', ms: 3 }, { k: 'turn', id, prompt: `after2-${tag}` });
    } else if (r < 0.1) ops.push({ k: 'ensure', id });
    else if (r < 0.42) ops.push({ k: 'turn', id, prompt: tag });
    else if (r < 0.5) ops.push({ k: 'conv', id, cid: `cid-${tag}` });
    else if (r < 0.6) ops.push({ k: 'update', id, data: randomUpdate(rnd, tag) });
    else if (r < 0.65) ops.push({ k: 'reset', id });
    else if (r < 0.7) ops.push({ k: 'delete', id });
    else if (r < 0.75) ops.push({ k: 'get', id });
    else if (r < 0.78) ops.push({ k: 'list' });
    else if (r < 0.9) ops.push({ k: 'yield' });
    else if (r < 0.95) ops.push({ k: 'stall', ms: 2 });
    else ops.push({ k: 'flush' });
  }
  return ops;
}

const SEEDS = [0x5eed1, 0x5eed2, 0x5eed3, 0x5eed4, 0x5eed5];
const PROCESSES = 3;
const OPS_PER_PROCESS = 150;

const WRITERS = 4;
const MUTATIONS = 200;
const SHARED = ['shared-1', 'shared-2'];
/** Acknowledgement granularity per writer: every mutation, small and large group commits. */
const FLUSH_EVERY = [1, 3, 7, 25];

for (const backend of backends) {
  test(named(backend, 'processes mutating the same sessions at once converge on the fresh replay (seeded rounds)'), async (t) => {
    let children: StoreChild[] = [];
    t.teardown(() => killAll(children));
    for (const seed of SEEDS) {
      const at = await backend.fresh(t);
      const rnd = seededRandom(seed);
      children = await openChildren(PROCESSES, `conv-${seed.toString(16)}-`, { ...backend.child(at), fsync: false, clock: CLOCK });
      const scripts = children.map((c) => randomOps(rnd, c.name, OPS_PER_PROCESS));
      // All start together; each flushes at the end.
      await Promise.all(children.map((c, i) => c.request({ op: 'ops', ops: scripts[i]! }, 'flushed')));
      // Everybody has flushed: one more read each, then compare.
      const views = await Promise.all(children.map((c) => c.request({ op: 'list' }, 'list')));
      const { warnings, onWarning } = collectWarnings();
      const fresh = await backend.openSessions(at, { fsync: false, onWarning, clock: clockOf(CLOCK) });
      const replay = serializeSessions(fresh.listSessions());
      await fresh.close();
      children.forEach((c, i) => t.deepEqual(forDiff(views[i]!.sessions), forDiff(replay), `seed 0x${seed.toString(16)}: ${c.name}'s view equals a fresh replay`));
      t.deepEqual([...warnings, ...children.flatMap((c) => c.warnings)], [], `seed 0x${seed.toString(16)}: no warnings`);
      await Promise.all(children.map((c) => c.close()));
    }
  });

  test(named(backend, '4 processes x 200 mutations on shared and private sessions: nothing lost, nothing duplicated, seq gapless'), async (t) => {
    const at = await backend.fresh(t);
    let children: StoreChild[] = [];
    t.teardown(() => killAll(children));
    children = await openChildren(WRITERS, 'writer-', { ...backend.child(at), fsync: true, clock: timeline(TEST_T0) });
    const started = performance.now();

    // All children are open and idle ('opened' is their ready message); the 'go' is the write command itself.
    const done = children.map((c, w) => c.request({ op: 'write', writer: `w${w}`, sessions: [...SHARED, `own-${w}`], count: MUTATIONS, flushEvery: FLUSH_EVERY[w]! }, 'done', 45_000));
    await Promise.all(done);
    const elapsed = Math.round(performance.now() - started);
    for (const c of children) t.is(c.acked, MUTATIONS - 1, `${c.name} acknowledged every mutation`);
    await Promise.all(children.map((c) => c.close()));
    t.deepEqual(
      children.flatMap((c) => c.warnings),
      [],
      'no child reported a warning',
    );

    const { warnings, onWarning } = collectWarnings();
    const store = await backend.openSessions(at, { fsync: false, onWarning, clock: () => TEST_T0 });
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
    const lines = await backend.lines(at);
    const seqs = lines.flatMap((l) => (l.record ? [l.record.seq] : []));
    t.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), 'seq numbers are 1..K in store order');
    t.is(seqs.length, lines.length, 'every line a record');
    t.true(seqs.length >= WRITERS * MUTATIONS + WRITERS, `K = ${seqs.length}`);
    // The writers really ran at the same time: their commits alternate in the store.
    // Told apart by each commit's tag (`c`, one per process in format 2): a line names its writer (`w`) only where the tag does not.
    const writersInOrder = lines.map((l) => l.record?.c).filter((tag) => tag !== undefined);
    const switches = writersInOrder.filter((w, i) => i > 0 && w !== writersInOrder[i - 1]).length;
    t.true(switches >= 2 * WRITERS, `commits of different processes interleave (${switches} switches)`);
    t.log(`${WRITERS} writers x ${MUTATIONS} mutations (fsync on) in ${elapsed} ms; ${seqs.length} records, ${switches} writer switches`);
  });
}
