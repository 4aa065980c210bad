/**
 * SessionView keeps, beside the live sessions, the committed state of each
 * session with local mutations queued (its shadow), and rebuilds the live
 * session from it when another process's record arrives first. The shadow
 * shares the live turns array instead of copying it per commit (issue 11):
 * these tests prove that a commit reads none of a session's earlier turns,
 * and that the sharing never changes what the view shows.
 */
import test from 'ava';
import type { QueuedEntry } from '../../src/engine/commit-queue.js';
import { applySessionEvent, type SessionEvent } from '../../src/sessions/session-events.js';
import { SessionStore } from '../../src/sessions/session-store.js';
import type { ConversationTurn, SessionData } from '../../src/sessions/session-types.js';
import { SessionView } from '../../src/sessions/session-view.js';
import { seededRandom } from '../helpers/child-protocol.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { tempStoreDir } from '../helpers/temp-store.js';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const turn = (prompt: string, at = T0): ConversationTurn => ({ prompt, response: `re: ${prompt}`, timestamp: new Date(at) });

/** Wraps an array so that every read of an element is counted: copying an array reads each element, whatever the copy method. */
function countingReads<T>(array: T[]): { array: T[]; reads: () => number } {
  let reads = 0;
  const proxy = new Proxy(array, {
    get(target, key, receiver) {
      if (typeof key === 'string' && /^\d+$/.test(key)) reads++;
      return Reflect.get(target, key, receiver) as unknown;
    },
  });
  return { array: proxy, reads: () => reads };
}

for (const [name, perFlush] of [
  ['one addTurn per flush', 1],
  ['several addTurns per flush (a commit with more of them still queued)', 5],
] as const) {
  test(`${name}: committing reads none of the session's earlier turns`, async (t) => {
    const dir = tempStoreDir(t);
    const clock = new FakeClock(T0);
    const store = SessionStore.openSync({ dir, fsync: false, autoCompact: false, clock: clock.read });
    t.teardown(() => store.closeSync());
    const EARLIER = 5000;
    store.ensureSession('big');
    for (let i = 0; i < EARLIER; i++) store.addTurn('big', turn(`old ${i}`));
    const live = store.getSession('big')!;
    await store.flush(); // the getSession touch too: nothing is queued now
    // Instrumentation only: the same turns, in an array that counts reads of its elements.
    const counted = countingReads(live.turns);
    live.turns = counted.array;

    const ROUNDS = 20;
    for (let round = 0; round < ROUNDS; round++) {
      clock.advance(1);
      for (let i = 0; i < perFlush; i++) store.addTurn('big', turn(`new ${round}.${i}`, clock.now));
      await store.flush();
    }
    // At most one read per committed turn (the check that it is the next one in the shared array); a copy would read 5000 each round.
    t.true(counted.reads() <= ROUNDS * perFlush, `${counted.reads()} element reads for ${ROUNDS * perFlush} turns`);
    t.is(live.turns.length, EARLIER + ROUNDS * perFlush);

    store.closeSync();
    const fresh = SessionStore.openSync({ dir, fsync: false, autoCompact: false, clock: clock.read });
    t.teardown(() => fresh.closeSync());
    t.deepEqual(
      fresh.getSession('big')!.turns.map((x) => x.prompt),
      [...live.turns].map((x) => x.prompt),
      'the live turns equal a fresh replay',
    );
  });
}

// ---- differential: the view against a replay of the file it models ----------------

interface Queued {
  event: SessionEvent;
  entry: QueuedEntry;
}

/** The view's model: records in file order (others' as they arrive, ours as they commit) and our queued events. */
class Model {
  readonly file: SessionEvent[] = [];
  readonly queued: Queued[] = [];
  private ticket = 0;

  entry(time: number): QueuedEntry {
    return { type: 'x', payloadJson: '{}', payloadBytes: 2, time, seq: 0, ticket: ++this.ticket, deferred: false };
  }

  /** Committed state, then our queued events on top: what a fresh replay shows once they are written. */
  expected(): Map<string, SessionData> {
    const sessions = new Map<string, SessionData>();
    for (const event of this.file) applySessionEvent(sessions, event);
    for (const { event } of this.queued) applySessionEvent(sessions, event);
    return sessions;
  }

  committedOnly(): Map<string, SessionData> {
    const sessions = new Map<string, SessionData>();
    for (const event of this.file) applySessionEvent(sessions, event);
    return sessions;
  }
}

/** Sessions by id, in id order (a reload may change the map's order, which nothing reads here). */
const plain = (sessions: Map<string, SessionData>) =>
  Object.fromEntries([...sessions].sort(([x], [y]) => (x < y ? -1 : 1)).map(([id, s]) => [id, { ...s, turns: Array.isArray(s.turns) ? [...s.turns] : s.turns }]));

const IDS = ['a', 'b'];
const SEEDS = [1, 2, 3, 42, 1337, 20_260_101];

for (const seed of SEEDS) {
  test(`seed ${seed}: local mutations, others' records, commits (also out of order) and reloads keep the view equal to a replay`, (t) => {
    const random = seededRandom(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const view = new SessionView();
    const model = new Model();
    let time = T0;
    const foreign = (event: SessionEvent) => {
      model.file.push(event);
      view.applyCommitted(event);
    };
    for (const id of IDS) {
      foreign({ kind: 'create', id, time });
      for (let i = 0; i < 30; i++) foreign({ kind: 'turn', id, time: ++time, turn: turn(`${id} seed ${i}`, time) });
    }
    const reused = turn('the same object, twice');

    for (let step = 0; step < 600; step++) {
      time += 1 + Math.floor(random() * 3);
      const id = pick(IDS);
      const roll = random();
      const local = (event: SessionEvent) => {
        const entry = model.entry(event.time);
        model.queued.push({ event, entry });
        view.applyLocal(event, entry);
      };
      let label: string;
      if (roll < 0.3) {
        label = 'local turn';
        local({ kind: 'turn', id, time, turn: random() < 0.1 ? reused : turn(`${id} local ${step}`, time) });
      } else if (roll < 0.34) {
        label = 'local reset';
        local({ kind: 'reset', id, time });
      } else if (roll < 0.37) {
        label = 'local update of turns';
        local({ kind: 'update', id, time, data: { turns: [turn(`${id} replaced ${step}`, time)] } });
      } else if (roll < 0.4) {
        label = 'local update of a field';
        local({ kind: 'update', id, time, data: { model: `m${step}` } as Partial<SessionData> });
      } else if (roll < 0.44) {
        label = 'local conversation';
        local({ kind: 'conversation', id, time, conversationId: `c${step}` });
      } else if (roll < 0.48) {
        label = 'local read (a coalesced touch)';
        if (!view.extendQueuedTouch(id, time)) local({ kind: 'touch', id, time });
      } else if (roll < 0.5) {
        label = 'local delete and create';
        local({ kind: 'delete', id, time, reason: 'deleted' });
        local({ kind: 'create', id, time });
      } else if (roll < 0.6) {
        label = "another process's turn";
        foreign({ kind: 'turn', id, time, turn: turn(`${id} other ${step}`, time) });
      } else if (roll < 0.63) {
        label = "another process's reset or conversation";
        foreign(random() < 0.5 ? { kind: 'reset', id, time } : { kind: 'conversation', id, time, conversationId: `o${step}` });
      } else if (roll < 0.88) {
        label = 'a commit of the oldest queued';
        const n = Math.min(model.queued.length, 1 + Math.floor(random() * 4));
        const batch = model.queued.splice(0, n);
        model.file.push(...batch.map((q) => q.event));
        view.committed(batch.map((q) => q.entry));
      } else if (roll < 0.92) {
        label = 'a commit out of order (a doubt that landed in part), then a record of another process';
        const mine = model.queued.filter((q) => q.event.id === id);
        if (mine.length >= 2) {
          const later = mine[1]!;
          model.queued.splice(model.queued.indexOf(later), 1);
          model.file.push(later.event);
          view.committed([later.entry]);
          // The view rebases only on another's record: one makes the live session follow the file again.
          foreign({ kind: 'touch', id, time });
        }
      } else if (roll < 0.95) {
        label = 'a reload from a snapshot of the committed state';
        view.reset();
        for (const session of model.committedOnly().values()) view.restoreSession(session);
      } else {
        label = 'a commit of everything';
        model.file.push(...model.queued.map((q) => q.event));
        view.committed(model.queued.splice(0).map((q) => q.entry));
      }
      if (!t.deepEqual(plain(view.sessions), plain(model.expected()), `seed ${seed}, step ${step}: after ${label}`)) return;
    }
    view.committed(model.queued.map((q) => q.entry));
    model.file.push(...model.queued.splice(0).map((q) => q.event));
    t.deepEqual(plain(view.sessions), plain(model.expected()), 'everything committed: the view equals a replay');
  });
}

test('a session held by a caller keeps its identity through a rebase that rebuilds its turns', (t) => {
  const view = new SessionView();
  view.applyCommitted({ kind: 'create', id: 's', time: T0 });
  for (let i = 0; i < 3; i++) view.applyCommitted({ kind: 'turn', id: 's', time: T0 + i, turn: turn(`p${i}`) });
  const held = view.sessions.get('s')!;
  const mine = turn('mine');
  view.applyLocal({ kind: 'turn', id: 's', time: T0 + 10, turn: mine }, { type: 'x', payloadJson: '{}', payloadBytes: 2, time: T0 + 10, seq: 0, ticket: 1, deferred: false });
  view.applyCommitted({ kind: 'turn', id: 's', time: T0 + 11, turn: turn('theirs') });
  t.is(view.sessions.get('s'), held);
  t.deepEqual(
    held.turns.map((x) => x.prompt),
    ['p0', 'p1', 'p2', 'theirs', 'mine'],
  );
});

test('a session with a local delete queued is not vacant: an import committed meanwhile leaves its committed state, which a withdrawn delete shows again', (t) => {
  const view = new SessionView();
  view.applyCommitted({ kind: 'create', id: 's', time: T0 });
  view.applyCommitted({ kind: 'turn', id: 's', time: T0 + 1, turn: turn('committed') });
  t.false(view.isVacant('s'));
  t.true(view.isVacant('other'));
  const entry: QueuedEntry = { type: 'session.delete', payloadJson: '{}', payloadBytes: 2, time: T0 + 2, seq: 0, ticket: 1, deferred: false };
  view.applyLocal({ kind: 'delete', id: 's', time: T0 + 2, reason: 'deleted' }, entry);
  t.is(view.sessions.get('s'), undefined);
  t.false(view.isVacant('s'), 'the key is empty, but its committed state is not');
  // What SessionStore does with an import for a key that is not vacant: apply it at once (a no-op: s exists in the committed state).
  const imported = { id: 's', createdAt: new Date(T0), lastAccessedAt: new Date(T0), turns: [turn('imported')] };
  view.applyCommitted({ kind: 'import', id: 's', time: T0 + 3, session: imported });
  view.withdraw([entry]);
  t.deepEqual(view.sessions.get('s')?.turns.map((x) => x.prompt), ['committed']);
});
