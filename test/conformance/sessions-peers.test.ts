/**
 * Read-your-peers on every backend, across real processes: a write another
 * process acknowledged is seen by the next read of an open store (after
 * `await catchUp()` on a backend whose reads do not catch up alone; no
 * reopen), in every direction (child -> test process, test process ->
 * child, child -> child), and every view ends equal to a fresh replay. Then
 * two stores in one process whose queued mutations cross a peer's commit:
 * whichever commits first, both views equal the replay. (Moved from
 * test/multiprocess/read-your-peers.test.ts; its deterministic, flushSync
 * versions of the last two stay in test/session-store.test.ts and there.)
 *
 * fsync: false throughout (speed): visibility and convergence do not depend
 * on it.
 */
import test, { type ExecutionContext } from 'ava';
import type { SessionData } from '../../src/index.js';
import { killAll, openChildren, serializeSessions, type PlainSession, type StoreChild } from '../helpers/child-protocol.js';
import { clockOf, timeline } from '../helpers/child-clock.js';
import type { Backend } from './backends.js';
import { backends } from './every-backend.js';
import { TEST_T0, beforePeerRead, collectWarnings, named, track } from './harness.js';

const turnOf = (prompt: string) => ({ prompt, response: `re ${prompt}`, timestamp: new Date(TEST_T0) });
/** Every store here, in this process and in the children, runs on one time line from TEST_T0. */
const CLOCK = timeline(TEST_T0);
/** Turns as one string each, so a failed comparison shows which turn differs. */
const forDiff = (sessions: readonly PlainSession[]) => sessions.map((s) => ({ ...s, turns: s.turns.map((x) => `${x.prompt} | ${x.response} | ${x.timestamp}`) }));
const lastPrompt = (s: PlainSession | null | undefined) => s?.turns[s.turns.length - 1]?.prompt;
const prompts = (s: SessionData | undefined) => s?.turns.map((x) => x.prompt);

/** Two stores on one fresh location, session `s` made by `a` and read by `b`; `open` opens another (to read the replay). */
async function twoPeersWithSession(t: ExecutionContext, backend: Backend) {
  const at = await backend.fresh(t);
  const { warnings, onWarning } = collectWarnings();
  const open = async () => track(t, await backend.openSessions(at, { fsync: false, onWarning, clock: clockOf(CLOCK) }));
  const [a, b] = [await open(), await open()];
  a.ensureSession('s');
  await a.flush();
  await beforePeerRead(backend, b);
  t.truthy(b.getSession('s'));
  return { warnings, open, a, b };
}

for (const backend of backends) {
  test(named(backend, 'a flushed write of another process is seen by the next read (after catchUp() where reads do not catch up alone), every direction, no reopen'), async (t) => {
    const at = await backend.fresh(t);
    const { warnings, onWarning } = collectWarnings();
    const parent = track(t, await backend.openSessions(at, { fsync: false, onWarning, clock: clockOf(CLOCK) }));
    let children: StoreChild[] = [];
    t.teardown(() => killAll(children));
    children = await openChildren(2, 'peer-', { ...backend.child(at), fsync: false, clock: CLOCK });
    const [a, b] = children as [StoreChild, StoreChild];

    parent.ensureSession('peer');
    await parent.flush();

    for (let round = 0; round < 5; round++) {
      // b -> parent and a
      await b.request({ op: 'ops', ops: [{ k: 'turn', id: 'peer', prompt: `b:${round}` }, { k: 'conv', id: 'peer', cid: `cid-b-${round}` }] }, 'flushed');
      await beforePeerRead(backend, parent);
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
      await beforePeerRead(backend, parent);
      t.is(parent.getSession(`a-own-${round}`)?.turns[0]?.prompt, `a:${round}`, `round ${round}: the parent sees a's new session`);
      t.deepEqual(parent.getSession('peer')?.turns, [], `round ${round}: the parent sees a's reset`);
      t.is(parent.getCodexConversationId('peer'), undefined);
      const seenByB = (await b.request({ op: 'get', id: `a-own-${round}` }, 'session')).session;
      t.is(lastPrompt(seenByB), `a:${round}`, `round ${round}: b sees a's new session`);
    }

    // A delete is seen too.
    await b.request({ op: 'ops', ops: [{ k: 'delete', id: 'peer' }] }, 'flushed');
    await beforePeerRead(backend, parent);
    t.is(parent.getSession('peer'), undefined, 'the parent sees b delete the session');
    t.is((await a.request({ op: 'get', id: 'peer' }, 'session')).session, null, 'a sees b delete the session');

    // Everyone ends where a fresh replay is.
    const [viewA, viewB] = await Promise.all([a.request({ op: 'list' }, 'list'), b.request({ op: 'list' }, 'list')]);
    await beforePeerRead(backend, parent);
    const parentView = serializeSessions(parent.listSessions());
    await parent.close();
    await Promise.all(children.map((c) => c.close()));
    const fresh = await backend.openSessions(at, { fsync: false, onWarning, clock: clockOf(CLOCK) });
    const replay = serializeSessions(fresh.listSessions());
    await fresh.close();
    t.deepEqual(forDiff(parentView), forDiff(replay), "the parent's view equals a fresh replay");
    t.deepEqual(forDiff(viewA.sessions), forDiff(replay), "a's view equals a fresh replay");
    t.deepEqual(forDiff(viewB.sessions), forDiff(replay), "b's view equals a fresh replay");
    t.deepEqual([...warnings, ...a.warnings, ...b.warnings], []);
  });

  test(named(backend, 'a queued updateSession({turns}) and addTurn crossing a peer commit: whichever commits first, both views equal the replay'), async (t) => {
    const { warnings, open, a, b } = await twoPeersWithSession(t, backend);

    a.updateSession('s', { turns: [turnOf('a-replaced')] });
    a.addTurn('s', turnOf('a-after'));
    b.addTurn('s', turnOf('b-between'));
    t.deepEqual(prompts(a.getSession('s')), ['a-replaced', 'a-after'], "a's view while its entries are queued");
    await Promise.all([a.flush(), b.flush()]);
    await beforePeerRead(backend, a, b);
    const [viewA, viewB] = [prompts(a.getSession('s')), prompts(b.getSession('s'))];
    await Promise.all([a.close(), b.close()]);

    const fresh = await open();
    const replay = prompts(fresh.getSession('s'));
    await fresh.close();
    const orders = [['a-replaced', 'a-after'], ['a-replaced', 'a-after', 'b-between']]; // b's turn first (replaced), or a's records first
    t.true(orders.some((o) => JSON.stringify(o) === JSON.stringify(replay)), `the replay is one of the two orders: ${JSON.stringify(replay)}`);
    t.deepEqual(viewA, replay, "a's view after both commits");
    t.deepEqual(viewB, replay, "b's view after both commits");
    t.deepEqual(warnings, []);
  });

  test(named(backend, 'changes the caller makes to its update object after updateSession reach neither the store nor a view, whichever commits first'), async (t) => {
    const { warnings, open, a, b } = await twoPeersWithSession(t, backend);
    const data = { turns: [turnOf('p0')], model: 'm1' };
    a.updateSession('s', data as Partial<SessionData>);
    // The caller reuses its object (InMemory would not care: it never re-applies anything).
    data.turns.push(turnOf('late'));
    data.model = 'changed';
    b.setCodexConversationId('s', 'from-b');
    await Promise.all([a.flush(), b.flush()]);
    await beforePeerRead(backend, a, b);
    const views = [a, b].map((s) => s.getSession('s') as SessionData & { model?: string });
    const live = views.map((v) => ({ model: v.model, conv: v.codexConversationId, turns: prompts(v) }));
    await Promise.all([a.close(), b.close()]);
    const fresh = await open();
    const replayed = fresh.getSession('s') as SessionData & { model?: string };
    const replay = { model: replayed.model, conv: replayed.codexConversationId, turns: prompts(replayed) };
    await fresh.close();
    t.deepEqual(replay, { model: 'm1', conv: 'from-b', turns: ['p0'] }, 'the store holds the value at the time of the call');
    t.deepEqual(live, [replay, replay], 'both live views equal the replay');
    t.deepEqual(warnings, []);
  });
}
