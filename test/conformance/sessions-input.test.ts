/**
 * SessionStore's input rules on every backend: refused updates, dates, ids
 * and sizes throw their code and change nothing, in the view or in the
 * store; large turns are spread over several lines and read back whole.
 * (Moved from test/session-store.test.ts.)
 */
import test from 'ava';
import { SessionJournalError, type SessionData } from '../../src/index.js';
import { backends } from './backends.js';
import { FakeClock, TEST_T0 as T0, codeOf, named, ofType, openSessions, turn, typesOf } from './harness.js';

for (const backend of backends) {
  test(named(backend, 'updateSession refuses a different id with INVALID_UPDATE (nothing journaled); its own id is accepted; the session survives compaction'), async (t) => {
    const at = await backend.fresh(t);
    const clock = new FakeClock(T0);
    const { store } = await openSessions(t, backend, at, clock);
    store.ensureSession('s');
    await store.flush();
    const before = await backend.lines(at);
    for (const id of ['other', 'bad id!']) {
      const err = t.throws(() => store.updateSession('s', { id }));
      t.is(codeOf(err), 'INVALID_UPDATE');
    }
    await store.flush();
    t.deepEqual(await backend.lines(at), before, 'nothing was journaled');
    store.updateSession('s', { id: 's', codexConversationId: 'c1' });
    await store.close();
    await backend.compact('sessions', at, { ttlMs: 1e12, now: () => clock.now });
    const { store: reopened } = await openSessions(t, backend, at, clock, { autoCompact: false });
    t.deepEqual(reopened.listSessions().map((x) => [x.id, x.codexConversationId]), [['s', 'c1']]);
    await reopened.close();
  });

  test(named(backend, 'updateSession refuses __proto__, constructor and prototype keys with INVALID_UPDATE; Object.prototype stays clean'), async (t) => {
    const at = await backend.fresh(t);
    const clock = new FakeClock(T0);
    const { store } = await openSessions(t, backend, at, clock);
    store.ensureSession('s');
    await store.flush();
    const before = await backend.lines(at);
    const evil: Array<Record<string, unknown>> = [
      JSON.parse('{"__proto__": {"polluted": "yes"}}') as Record<string, unknown>,
      JSON.parse('{"codexConversationId": "ok", "__proto__": {"polluted": "yes"}}') as Record<string, unknown>,
      JSON.parse('{"constructor": {"prototype": {"polluted": "yes"}}}') as Record<string, unknown>,
      JSON.parse('{"prototype": {"polluted": "yes"}}') as Record<string, unknown>,
    ];
    const defined: Record<string, unknown> = {};
    Object.defineProperty(defined, '__proto__', { value: { polluted: 'yes' }, enumerable: true, configurable: true, writable: true });
    evil.push(defined);
    for (const data of evil) {
      t.true(Object.keys(data).some((k) => ['__proto__', 'constructor', 'prototype'].includes(k)), 'the key is an own property');
      const err = t.throws(() => store.updateSession('s', data as Partial<SessionData>));
      t.is(codeOf(err), 'INVALID_UPDATE');
    }
    t.is(({} as Record<string, unknown>).polluted, undefined);
    t.is((Object.prototype as unknown as Record<string, unknown>).polluted, undefined);
    const session = store.getSession('s')!;
    t.is(Object.getPrototypeOf(session), Object.prototype, 'the session prototype is untouched');
    t.false(Object.hasOwn(session, 'polluted'));
    t.is(session.codexConversationId, undefined, 'a refused update applies none of its keys');
    await store.flush();
    t.false((await ofType(backend, at, 'session.update')).length > 0, 'nothing journaled');
    t.true((await backend.lines(at)).length >= before.length);
    await store.close();
  });

  test(named(backend, 'updateSession and addTurn refuse invalid dates with INVALID_DATE'), async (t) => {
    const at = await backend.fresh(t);
    const clock = new FakeClock(T0);
    const { store } = await openSessions(t, backend, at, clock);
    store.ensureSession('s');
    const bad: Array<[string, () => unknown]> = [
      ['createdAt NaN', () => store.updateSession('s', { createdAt: new Date(Number.NaN) })],
      ['lastAccessedAt string', () => store.updateSession('s', { lastAccessedAt: '2026-01-01T00:00:00Z' as unknown as Date })],
      ['createdAt number', () => store.updateSession('s', { createdAt: T0 as unknown as Date })],
      ['turns with a bad timestamp', () => store.updateSession('s', { turns: [{ prompt: 'p', response: 'r', timestamp: new Date('nope') }] })],
      ['turns with a string timestamp', () => store.updateSession('s', { turns: [{ prompt: 'p', response: 'r', timestamp: 'x' as unknown as Date }] })],
      ['addTurn NaN timestamp', () => store.addTurn('s', { prompt: 'p', response: 'r', timestamp: new Date(Number.NaN) })],
    ];
    for (const [name, fn] of bad) t.is(codeOf(t.throws(fn, undefined, name)), 'INVALID_DATE', name);
    const s = store.listSessions()[0]!;
    t.is(s.createdAt.getTime(), T0);
    t.deepEqual(s.turns, []);
    await store.flush();
    t.deepEqual(await typesOf(backend, at), ['session.create']);
    await store.close();
  });

  test(named(backend, 'turns of 300 KiB and 2 MiB are stored with the default options (no maxTurnBytes), spread over several journal lines, and survive reopening'), async (t) => {
    const at = await backend.fresh(t);
    const clock = new FakeClock(T0);
    const { store, warnings } = await openSessions(t, backend, at, clock);
    store.ensureSession('s');
    const answers = [300 * 1024, 2 * 1024 * 1024].map((n, i) => `${i}:${'é'.repeat(n / 2 - 1)}`);
    for (const response of answers) store.addTurn('s', { prompt: 'q', response, timestamp: new Date(clock.now) });
    await store.close();
    t.true((await ofType(backend, at, 'journal.part')).length >= 2, 'the 2 MiB turn is spread (the 300 KiB one fits a line)');
    const { store: reopened } = await openSessions(t, backend, at, clock);
    t.deepEqual(reopened.getSession('s')!.turns.map((x) => x.response), answers);
    await reopened.close();
    t.deepEqual(warnings, []);
  });

  test(named(backend, 'an oversize turn throws TURN_TOO_LARGE (UTF-8 bytes) and changes nothing'), async (t) => {
    const at = await backend.fresh(t);
    const clock = new FakeClock(T0);
    const { store } = await openSessions(t, backend, at, clock, { maxTurnBytes: 16 });
    store.ensureSession('s');
    store.addTurn('s', { prompt: 'x'.repeat(8), response: 'y'.repeat(8), timestamp: new Date(T0) }); // exactly 16
    const err = t.throws(() => store.addTurn('s', { prompt: 'é'.repeat(5), response: 'abcdefg', timestamp: new Date(T0) })); // 10 + 7 bytes, 12 chars
    t.is(codeOf(err), 'TURN_TOO_LARGE');
    t.is(store.getSession('s')!.turns.length, 1);
    await store.flush();
    t.is((await ofType(backend, at, 'session.turn')).length, 1);
    await store.close();
  });

  test(named(backend, 'an update over maxRecordBytes throws RECORD_TOO_LARGE and changes nothing; so does a turn (maxTurnBytes sets no limit by default)'), async (t) => {
    const at = await backend.fresh(t);
    const clock = new FakeClock(T0);
    const { store, warnings } = await openSessions(t, backend, at, clock, { maxRecordBytes: 512 });
    store.ensureSession('s');
    const err = t.throws(() => store.updateSession('s', { model: 'x'.repeat(1000) } as Partial<SessionData>));
    t.is(codeOf(err), 'RECORD_TOO_LARGE');
    t.false('model' in store.listSessions()[0]!);
    const turnErr = t.throws(() => store.addTurn('s', turn('y'.repeat(600))));
    t.is(codeOf(turnErr), 'RECORD_TOO_LARGE', 'without maxTurnBytes a turn is bounded by maxRecordBytes only');
    t.deepEqual(store.listSessions()[0]!.turns, []);
    store.updateSession('s', { model: 'small' } as Partial<SessionData>);
    await store.close();
    t.deepEqual(await typesOf(backend, at), ['session.create', 'session.update']);
    const { store: reopened } = await openSessions(t, backend, at, clock, { maxRecordBytes: 512 });
    t.is((reopened.getSession('s') as unknown as { model?: string }).model, 'small');
    await reopened.close();
    t.deepEqual(warnings, []);
  });

  test(named(backend, 'ensureSession refuses invalid ids with INVALID_SESSION_ID and creates nothing'), async (t) => {
    const at = await backend.fresh(t);
    const clock = new FakeClock(T0);
    const { store } = await openSessions(t, backend, at, clock);
    for (const id of ['bad id!', '', 'x'.repeat(257), '../up', 'a/b', 'é', 'tab\t', 42 as unknown as string, undefined as unknown as string]) {
      const err = t.throws(() => store.ensureSession(id));
      t.true(err instanceof SessionJournalError);
      t.is(codeOf(err), 'INVALID_SESSION_ID', JSON.stringify(id));
    }
    store.ensureSession('x'.repeat(256)); // the longest valid id
    t.deepEqual(
      store.listSessions().map((s) => s.id.length),
      [256],
    );
    await store.flush();
    t.is((await backend.lines(at)).length, 1);
    await store.close();
  });
}
