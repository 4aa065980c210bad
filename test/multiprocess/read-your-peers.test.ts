/**
 * Read-your-peers and convergence across real processes.
 *
 * - A write another process flushed is visible to the next read of an open
 *   store (no reopen), in every direction: child -> test process, test
 *   process -> child, child -> child.
 * - Processes that mutate the same sessions at once end with views equal to a
 *   fresh replay of the file (seeded random rounds; a failure names its seed).
 *
 * fsync: false throughout (speed): visibility and convergence do not depend
 * on fdatasync, only on the O_APPEND write made under the lock.
 */
import test from 'ava';
import { SessionStore } from '../../src/index.js';
import { killAll, openChildren, seededRandom, serializeSessions, type Op, type PlainSession, type StoreChild } from '../helpers/child-protocol.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';
import { clockOf, timeline } from '../helpers/child-clock.js';
import { TEST_T0 } from '../helpers/fixture-now.js';

const turnOf = (prompt: string) => ({ prompt, response: `re ${prompt}`, timestamp: new Date(TEST_T0) });
/** Every store here, in this process and in the children, runs on one time line from TEST_T0. */
const CLOCK = timeline(TEST_T0);
/** Turns as one string each, so a failed comparison shows which turn differs. */
const forDiff = (sessions: readonly PlainSession[]) =>
  sessions.map((s) => ({ ...s, turns: s.turns.map((turn) => `${turn.prompt} | ${turn.response} | ${turn.timestamp}`) }));
const lastPrompt = (s: PlainSession | null | undefined) => s?.turns[s.turns.length - 1]?.prompt;

test('a flushed write of another process is seen by the next read, every direction, no reopen', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const parent = SessionStore.openSync({ dir, fsync: false, onWarning, clock: clockOf(CLOCK) });
  let children: StoreChild[] = [];
  t.teardown(() => killAll(children));
  children = await openChildren(2, 'peer-', { dir, fsync: false, clock: CLOCK });
  const [a, b] = children as [StoreChild, StoreChild];

  parent.ensureSession('peer');
  await parent.flush();

  for (let round = 0; round < 5; round++) {
    // b -> parent and a
    await b.request({ op: 'ops', ops: [{ k: 'turn', id: 'peer', prompt: `b:${round}` }, { k: 'conv', id: 'peer', cid: `cid-b-${round}` }] }, 'flushed');
    t.is(parent.getSession('peer')?.turns.at(-1)?.prompt, `b:${round}`, `round ${round}: the parent sees b's turn`);
    t.is(parent.getCodexConversationId('peer'), `cid-b-${round}`, `round ${round}: the parent sees b's conversation id`);
    const seenByA = (await a.request({ op: 'get', id: 'peer' }, 'session')).session;
    t.is(lastPrompt(seenByA), `b:${round}`, `round ${round}: a sees b's turn`);
    t.is(seenByA?.codexConversationId, `cid-b-${round}`);

    // parent -> a and b
    parent.addTurn('peer', turnOf(`parent:${round}`));
    parent.updateSession('peer', { codexConversationId: `cid-parent-${round}` });
    await parent.flush();
    for (const child of [a, b]) {
      const seen = (await child.request({ op: 'get', id: 'peer' }, 'session')).session;
      t.is(lastPrompt(seen), `parent:${round}`, `round ${round}: ${child.name} sees the parent's turn`);
      t.is(seen?.codexConversationId, `cid-parent-${round}`);
    }

    // a -> b and parent, including a session created and one reset
    await a.request({ op: 'ops', ops: [{ k: 'ensure', id: `a-own-${round}` }, { k: 'turn', id: `a-own-${round}`, prompt: `a:${round}` }, { k: 'reset', id: 'peer' }] }, 'flushed');
    t.is(parent.getSession(`a-own-${round}`)?.turns[0]?.prompt, `a:${round}`, `round ${round}: the parent sees a's new session`);
    t.deepEqual(parent.getSession('peer')?.turns, [], `round ${round}: the parent sees a's reset`);
    t.is(parent.getCodexConversationId('peer'), undefined);
    const seenByB = (await b.request({ op: 'get', id: `a-own-${round}` }, 'session')).session;
    t.is(lastPrompt(seenByB), `a:${round}`, `round ${round}: b sees a's new session`);
  }

  // A delete is seen too.
  await b.request({ op: 'ops', ops: [{ k: 'delete', id: 'peer' }] }, 'flushed');
  t.is(parent.getSession('peer'), undefined, 'the parent sees b delete the session');
  t.is((await a.request({ op: 'get', id: 'peer' }, 'session')).session, null, 'a sees b delete the session');

  // Everyone ends where a fresh replay is.
  const [viewA, viewB] = await Promise.all([a.request({ op: 'list' }, 'list'), b.request({ op: 'list' }, 'list')]);
  const parentView = serializeSessions(parent.listSessions());
  await parent.close();
  await Promise.all(children.map((c) => c.close()));
  const fresh = SessionStore.openSync({ dir, fsync: false, onWarning, clock: clockOf(CLOCK) });
  const replay = serializeSessions(fresh.listSessions());
  await fresh.close();
  t.deepEqual(forDiff(parentView), forDiff(replay), "the parent's view equals a fresh replay");
  t.deepEqual(forDiff(viewA.sessions), forDiff(replay), "a's view equals a fresh replay");
  t.deepEqual(forDiff(viewB.sessions), forDiff(replay), "b's view equals a fresh replay");
  t.deepEqual([...warnings, ...a.warnings, ...b.warnings], []);
});

// ---- convergence -----------------------------------------------------------

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

test('processes mutating the same sessions at once converge on the fresh replay (seeded rounds)', async (t) => {
  let children: StoreChild[] = [];
  t.teardown(() => killAll(children));
  for (const seed of SEEDS) {
    const dir = tempStoreDir(t);
    const rnd = seededRandom(seed);
    children = await openChildren(PROCESSES, `conv-${seed.toString(16)}-`, { dir, fsync: false, clock: CLOCK });
    const scripts = children.map((c) => randomOps(rnd, c.name, OPS_PER_PROCESS));
    // All start together; each flushes at the end.
    await Promise.all(children.map((c, i) => c.request({ op: 'ops', ops: scripts[i]! }, 'flushed')));
    // Everybody has flushed: one more read each, then compare.
    const views = await Promise.all(children.map((c) => c.request({ op: 'list' }, 'list')));
    const { warnings, onWarning } = collectWarnings();
    const fresh = SessionStore.openSync({ dir, fsync: false, onWarning, clock: clockOf(CLOCK) });
    const replay = serializeSessions(fresh.listSessions());
    await fresh.close();
    children.forEach((c, i) => t.deepEqual(forDiff(views[i]!.sessions), forDiff(replay), `seed 0x${seed.toString(16)}: ${c.name}'s view equals a fresh replay`));
    t.deepEqual([...warnings, ...children.flatMap((c) => c.warnings)], [], `seed 0x${seed.toString(16)}: no warnings`);
    await Promise.all(children.map((c) => c.close()));
  }
});

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
