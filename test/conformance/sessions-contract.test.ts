/**
 * SessionStore's SessionStorage contract on every backend: reads hand out
 * the live object and refresh its access time, touches are coalesced and
 * deferred, mutators of unknown ids write nothing, flush() resolves once the
 * records are in the store, catchUp() applies what another store
 * acknowledged, close() ends mutation with CLOSED, an undefined
 * update value clears its field. (Moved from test/session-store.test.ts;
 * what is synchronous or directory-only stayed there.)
 */
import test from 'ava';
import { SessionJournalError, type SessionData } from '../../src/index.js';
import { backends } from './backends.js';
import { FakeClock, TEST_T0 as T0, named, ofType, openSessions, track, turn, typesOf } from './harness.js';

for (const backend of backends) {
  test(named(backend, 'getSession returns the live session object and refreshes lastAccessedAt'), async (t) => {
    const at = await backend.fresh(t);
    const clock = new FakeClock(T0);
    const { store } = await openSessions(t, backend, at, clock);
    const id = store.createSession();
    clock.advance(1500);
    const first = store.getSession(id)!;
    t.is(first.lastAccessedAt.getTime(), T0 + 1500);
    t.is(first.createdAt.getTime(), T0);
    clock.advance(700);
    const second = store.getSession(id)!;
    t.is(second, first, 'the same object both times');
    t.is(first.lastAccessedAt.getTime(), T0 + 2200, 'the object held by the caller sees the refresh');
    t.is(store.listSessions()[0], first, 'listSessions hands out the same object');
    store.addTurn(id, turn('p'));
    t.is(first.turns.length, 1, 'later mutations show on the held object');
    t.is(store.getSession('unknown-id'), undefined);
    await store.close();
  });

  test(named(backend, 'touches are coalesced: many getSession calls write at most one session.touch line per flush'), async (t) => {
    const at = await backend.fresh(t);
    const clock = new FakeClock(T0);
    const { store } = await openSessions(t, backend, at, clock);
    const id = store.createSession();
    await store.flush();
    t.is((await ofType(backend, at, 'session.touch')).length, 0);
    for (let i = 0; i < 100; i++) {
      clock.advance(10);
      store.getSession(id);
    }
    await store.flush();
    const touches = await ofType(backend, at, 'session.touch');
    t.is(touches.length, 1, 'one line for 100 reads');
    t.is(touches[0]!.ts, T0 + 1000, 'carrying the time of the last read');
    for (let i = 0; i < 20; i++) {
      clock.advance(1);
      store.getSession(id);
    }
    await store.flush();
    t.is((await ofType(backend, at, 'session.touch')).length, 2, 'one more after the second flush');
    await store.flush();
    t.is((await ofType(backend, at, 'session.touch')).length, 2, 'no reads, no touch');
    await store.close();
    const { store: reopened } = await openSessions(t, backend, at, clock);
    t.is(reopened.listSessions()[0]?.lastAccessedAt.getTime(), T0 + 1020);
    await reopened.close();
  });

  test(named(backend, 'a lone touch does not start a commit; it rides with the next flush'), async (t) => {
    const at = await backend.fresh(t);
    const clock = new FakeClock(T0);
    const { store } = await openSessions(t, backend, at, clock, { touchFlushMs: 600_000 });
    const id = store.createSession();
    await store.flush();
    clock.advance(5);
    store.getSession(id);
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setTimeout(resolve, 50));
    t.is((await ofType(backend, at, 'session.touch')).length, 0, 'deferred');
    await store.flush();
    t.is((await ofType(backend, at, 'session.touch')).length, 1, 'written by flush');
    await store.close();
  });

  test(named(backend, 'a lone touch is written by itself within touchFlushMs'), async (t) => {
    const at = await backend.fresh(t);
    const clock = new FakeClock(T0);
    const { store } = await openSessions(t, backend, at, clock, { touchFlushMs: 50 });
    const id = store.createSession();
    await store.flush();
    clock.advance(5);
    store.getSession(id);
    const deadline = performance.now() + 5000;
    while ((await ofType(backend, at, 'session.touch')).length === 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    t.is((await ofType(backend, at, 'session.touch')).length, 1, 'written by the timer, without flush()');
    await store.close();
  });

  test(named(backend, 'mutators ignore unknown ids and write nothing'), async (t) => {
    const at = await backend.fresh(t);
    const clock = new FakeClock(T0);
    const { store, warnings } = await openSessions(t, backend, at, clock);
    store.updateSession('ghost', { codexConversationId: 'x' });
    store.addTurn('ghost', turn('p'));
    store.resetSession('ghost');
    store.setCodexConversationId('ghost', 'conv');
    t.is(store.getSession('ghost'), undefined);
    t.is(store.getCodexConversationId('ghost'), undefined);
    t.false(store.deleteSession('ghost'));
    // invalid ids are unknown ids too, except for ensureSession
    store.updateSession('bad id!', { codexConversationId: 'x' });
    store.addTurn('', turn('p'));
    t.deepEqual(store.listSessions(), []);
    await store.flush();
    t.deepEqual(await backend.lines(at), [], 'not a line written');
    await store.close();
    t.deepEqual(warnings, []);
  });

  test(named(backend, 'deleteSession returns true for a present session, false otherwise'), async (t) => {
    const at = await backend.fresh(t);
    const clock = new FakeClock(T0);
    const { store } = await openSessions(t, backend, at, clock);
    const id = store.createSession();
    store.ensureSession('named');
    t.true(store.deleteSession(id));
    t.false(store.deleteSession(id), 'already deleted');
    t.false(store.deleteSession('never-there'));
    t.false(store.deleteSession('bad id!'));
    t.true(store.deleteSession('named'));
    await store.flush();
    t.deepEqual(
      (await ofType(backend, at, 'session.delete')).map((l) => l.p),
      [
        { id, reason: 'deleted' },
        { id: 'named', reason: 'deleted' },
      ],
    );
    await store.close();
  });

  test(named(backend, 'flush() resolves only after the records are in the store'), async (t) => {
    for (const fsync of [false, true]) {
      const at = await backend.fresh(t);
      const store = track(t, await backend.openSessions(at, { fsync }));
      const id = store.createSession();
      // Only a store this process reads synchronously can be looked at before the commit could start.
      if (backend.linesSync) t.false(backend.linesSync(at).some((l) => l.record?.p.id === id), `not written synchronously (fsync ${fsync})`);
      const seen = await store.flush().then(async () => (await backend.lines(at)).some((l) => l.record?.p.id === id && l.record.t === 'session.create'));
      t.true(seen, `in the store when flush resolves (fsync ${fsync})`);
      // A second mutation, flushed alongside others: every flush waits for its own entries.
      store.addTurn(id, turn('one'));
      const p1 = store.flush().then(async () => (await ofType(backend, at, 'session.turn')).length);
      store.addTurn(id, turn('two'));
      const p2 = store.flush().then(async () => (await ofType(backend, at, 'session.turn')).length);
      const [n1, n2] = await Promise.all([p1, p2]);
      t.true(n1 >= 1);
      t.is(n2, 2);
      await store.close();
    }
  });

  test(named(backend, 'what flush() acknowledged is read by another store opened after it, before and after close'), async (t) => {
    const at = await backend.fresh(t);
    const clock = new FakeClock(T0);
    const { store: writer } = await openSessions(t, backend, at, clock);
    writer.ensureSession('durable');
    writer.addTurn('durable', turn('acknowledged'));
    writer.setCodexConversationId('durable', 'conv-1');
    await writer.flush();
    const { store: beside } = await openSessions(t, backend, at, clock);
    t.deepEqual(beside.getSession('durable')?.turns.map((x) => x.prompt), ['acknowledged'], 'a store opened beside the writer');
    t.is(beside.getCodexConversationId('durable'), 'conv-1');
    await beside.close();
    await writer.close();
    const { store: after, warnings } = await openSessions(t, backend, at, clock);
    t.deepEqual(after.getSession('durable')?.turns.map((x) => x.prompt), ['acknowledged'], 'a store opened after close');
    await after.close();
    t.deepEqual(warnings, []);
  });

  test(named(backend, 'catchUp() resolves with everything another store acknowledged before the call applied; on a closed store it resolves and does nothing'), async (t) => {
    const at = await backend.fresh(t);
    const clock = new FakeClock(T0);
    const { store: a } = await openSessions(t, backend, at, clock);
    const { store: b } = await openSessions(t, backend, at, clock);
    a.ensureSession('x');
    a.addTurn('x', turn('one'));
    a.setCodexConversationId('x', 'conv-a');
    await a.flush();
    await b.catchUp();
    t.deepEqual(b.getSession('x')?.turns.map((x) => x.prompt), ['one']);
    t.is(b.getCodexConversationId('x'), 'conv-a');
    await b.close();
    a.addTurn('x', turn('two'));
    await a.flush();
    await t.notThrowsAsync(b.catchUp(), 'a closed store: nothing to apply, nothing thrown');
    await a.close();
  });

  test(named(backend, 'close() then a mutation throws CLOSED'), async (t) => {
    const at = await backend.fresh(t);
    const clock = new FakeClock(T0);
    const { store } = await openSessions(t, backend, at, clock);
    const id = store.createSession();
    await store.close();
    await t.notThrowsAsync(store.close(), 'closing twice is harmless');
    const mutations: Array<[string, () => unknown]> = [
      ['createSession', () => store.createSession()],
      ['ensureSession (new)', () => store.ensureSession('new-one')],
      ['ensureSession (existing)', () => store.ensureSession(id)],
      ['updateSession', () => store.updateSession(id, { codexConversationId: 'x' })],
      ['addTurn', () => store.addTurn(id, turn('p'))],
      ['resetSession', () => store.resetSession(id)],
      ['setCodexConversationId', () => store.setCodexConversationId(id, 'c')],
      ['deleteSession', () => store.deleteSession(id)],
    ];
    for (const [name, fn] of mutations) {
      const err = t.throws(fn, { instanceOf: SessionJournalError }, name);
      t.is(err?.code, 'CLOSED', name);
    }
    t.deepEqual(await typesOf(backend, at), ['session.create'], 'nothing after close reached the store');
  });

  test(named(backend, 'updateSession with an undefined value clears the field, live and after a replay (as InMemory does)'), async (t) => {
    const at = await backend.fresh(t);
    const clock = new FakeClock(T0);
    const { store } = await openSessions(t, backend, at, clock);
    store.ensureSession('s');
    store.setCodexConversationId('s', 'conv-1');
    store.updateSession('s', { model: 'm1' } as Partial<SessionData>);
    store.updateSession('s', { codexConversationId: undefined, model: undefined } as Partial<SessionData>);
    t.is(store.getCodexConversationId('s'), undefined, 'live');
    t.is((store.getSession('s') as unknown as { model?: string }).model, undefined, 'live');
    await store.close();
    const { store: reopened } = await openSessions(t, backend, at, clock);
    t.is(reopened.getCodexConversationId('s'), undefined, 'after a fresh replay');
    t.is((reopened.getSession('s') as unknown as { model?: string }).model, undefined, 'after a fresh replay');
    await reopened.close();
  });
}
