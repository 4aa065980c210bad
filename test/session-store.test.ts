import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { SessionJournalError, SessionStore, compactSessions, type SessionData, type SessionStoreOptions } from '../src/index.js';
import { FakeClock } from './helpers/fake-clock.js';
import { collectWarnings, helperScript, tempStoreDir } from './helpers/temp-store.js';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const BUILT_INDEX = new URL('../src/index.js', import.meta.url).href;

interface JournalLine {
  seq: number;
  /** Epoch ms: the format (2) new writes use. */
  ts: number;
  t: string;
  p: Record<string, unknown>;
}

/** Every journal line of the store, segments in order. */
function journalLines(dir: string): JournalLine[] {
  if (!fs.existsSync(dir)) return [];
  const segments = fs
    .readdirSync(dir)
    .filter((n) => /^journal-\d{8,}\.ndjson$/.test(n))
    .sort();
  const lines: JournalLine[] = [];
  for (const name of segments) {
    for (const line of fs.readFileSync(path.join(dir, name), 'utf8').split('\n')) {
      if (line !== '') lines.push(JSON.parse(line) as JournalLine);
    }
  }
  return lines;
}

function journalBytes(dir: string): number {
  if (!fs.existsSync(dir)) return 0;
  return fs
    .readdirSync(dir)
    .filter((n) => n.startsWith('journal-'))
    .reduce((sum, n) => sum + fs.statSync(path.join(dir, n)).size, 0);
}

const ofType = (dir: string, type: string) => journalLines(dir).filter((l) => l.t === type);

/** Closes the store when the test ends, even a failed one (before its directory is removed). */
function track(t: ExecutionContext, store: SessionStore): SessionStore {
  t.teardown(() => {
    try {
      store.closeSync();
    } catch {
      // already reported by the test
    }
  });
  return store;
}

function open(t: ExecutionContext, dir: string, clock: FakeClock, extra: Partial<SessionStoreOptions> = {}) {
  const { warnings, onWarning } = collectWarnings();
  const store = track(t, SessionStore.openSync({ dir, fsync: false, clock: clock.read, onWarning, ...extra }));
  return { store, warnings };
}

function codeOf(err: unknown): string | undefined {
  return err instanceof SessionJournalError ? err.code : `not a SessionJournalError: ${String(err)}`;
}

interface ChildResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  elapsedMs: number;
}

/** Runs node with `args` without blocking this worker; kills it (SIGKILL) after `timeoutMs`. */
function runNode(args: string[], timeoutMs = 30_000): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d.length + stdout.length > 1e6 ? '' : d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d.length + stderr.length > 1e6 ? '' : d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr, elapsedMs: Date.now() - started });
    });
  });
}

const turn = (prompt: string, at = T0) => ({ prompt, response: `re: ${prompt}`, timestamp: new Date(at) });

// ---- reads ----------------------------------------------------------------------

test('getSession returns the live session object and refreshes lastAccessedAt', async (t) => {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(T0);
  const { store } = open(t, dir, clock);
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

test('touches are coalesced: many getSession calls write at most one session.touch line per flush', async (t) => {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(T0);
  const { store } = open(t, dir, clock);
  const id = store.createSession();
  await store.flush();
  t.is(ofType(dir, 'session.touch').length, 0);
  for (let i = 0; i < 100; i++) {
    clock.advance(10);
    store.getSession(id);
  }
  await store.flush();
  const touches = ofType(dir, 'session.touch');
  t.is(touches.length, 1, 'one line for 100 reads');
  t.is(touches[0]!.ts, T0 + 1000, 'carrying the time of the last read');
  for (let i = 0; i < 20; i++) {
    clock.advance(1);
    store.getSession(id);
  }
  await store.flush();
  t.is(ofType(dir, 'session.touch').length, 2, 'one more after the second flush');
  await store.flush();
  t.is(ofType(dir, 'session.touch').length, 2, 'no reads, no touch');
  await store.close();
  const { store: reopened } = open(t, dir, clock);
  t.is(reopened.listSessions()[0]?.lastAccessedAt.getTime(), T0 + 1020);
  await reopened.close();
});

test('a lone touch does not start a commit; it rides with the next flush', async (t) => {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(T0);
  const { store } = open(t, dir, clock, { touchFlushMs: 600_000 });
  const id = store.createSession();
  await store.flush();
  clock.advance(5);
  store.getSession(id);
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.is(ofType(dir, 'session.touch').length, 0, 'deferred');
  await store.flush();
  t.is(ofType(dir, 'session.touch').length, 1, 'written by flush');
  await store.close();
});

test('a lone touch is written by itself within touchFlushMs', async (t) => {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(T0);
  const { store } = open(t, dir, clock, { touchFlushMs: 50 });
  const id = store.createSession();
  await store.flush();
  clock.advance(5);
  store.getSession(id);
  const deadline = Date.now() + 5000;
  while (ofType(dir, 'session.touch').length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  t.is(ofType(dir, 'session.touch').length, 1, 'written by the timer, without flush()');
  await store.close();
});

// ---- mutators ---------------------------------------------------------------------

test('mutators ignore unknown ids and write nothing', async (t) => {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(T0);
  const { store, warnings } = open(t, dir, clock);
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
  t.is(journalBytes(dir), 0, 'not a byte written');
  await store.close();
  t.deepEqual(warnings, []);
});

test('deleteSession returns true for a present session, false otherwise', async (t) => {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(T0);
  const { store } = open(t, dir, clock);
  const id = store.createSession();
  store.ensureSession('named');
  t.true(store.deleteSession(id));
  t.false(store.deleteSession(id), 'already deleted');
  t.false(store.deleteSession('never-there'));
  t.false(store.deleteSession('bad id!'));
  t.true(store.deleteSession('named'));
  await store.flush();
  t.deepEqual(
    ofType(dir, 'session.delete').map((l) => l.p),
    [
      { id, reason: 'deleted' },
      { id: 'named', reason: 'deleted' },
    ],
  );
  await store.close();
});

test('TTL: listSessions hides an expired session but journals nothing; expireNow() journals the expiry, which survives reopen', async (t) => {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(T0);
  const { store } = open(t, dir, clock, { ttlMs: 10_000 });
  store.ensureSession('old');
  clock.advance(5_000);
  store.ensureSession('young');
  clock.advance(5_001); // 'old' is 10 001 ms idle, 'young' 5 001
  t.deepEqual(
    store.listSessions().map((s) => s.id),
    ['young'],
  );
  store.createSession();
  await store.flush();
  t.deepEqual(ofType(dir, 'session.delete'), [], 'a reader decides nothing for the others: no delete is journaled');
  await store.close();

  // Another process whose clock is back at the start still sees 'old'.
  const { store: behind } = open(t, dir, new FakeClock(T0 + 5_000), { ttlMs: 10_000 });
  t.true(behind.listSessions().some((s) => s.id === 'old'));
  await behind.close();

  // The explicit call journals what this clock finds expired.
  const { store: owner } = open(t, dir, clock, { ttlMs: 10_000 });
  t.deepEqual(await owner.expireNow(), { expired: 1, evicted: 0 });
  t.is(owner.getSession('old'), undefined);
  const deletes = ofType(dir, 'session.delete');
  t.deepEqual(
    deletes.map((l) => l.p),
    [{ id: 'old', reason: 'expired' }],
  );
  t.is(deletes[0]!.ts, T0 + 10_001);
  await owner.close();
  // Reopened with the clock back at the start, the session would not be expired by
  // computation: it is gone because the expiry is in the journal.
  const { store: reopened, warnings } = open(t, dir, new FakeClock(T0), { ttlMs: 10_000 });
  t.is(reopened.getSession('old'), undefined);
  t.true(reopened.listSessions().every((s) => s.id !== 'old'));
  await reopened.close();
  t.deepEqual(warnings, []);
});

test('a hidden (expired by this clock, not yet compacted) session comes back, turns and all, when named again', async (t) => {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(T0);
  const { store } = open(t, dir, clock, { ttlMs: 10_000 });
  store.ensureSession('s');
  store.addTurn('s', { prompt: 'p', response: 'r', timestamp: new Date(T0) });
  clock.advance(20_000);
  t.deepEqual(store.listSessions(), []);
  store.ensureSession('s'); // codex-mcp-server would start a fresh session here; expiry is not journaled, so this is an access
  const [listed] = store.listSessions();
  t.is(listed?.id, 's');
  t.is(listed?.turns.length, 1);
  t.is(listed?.lastAccessedAt.getTime(), T0 + 20_000);
  t.is(listed?.createdAt.getTime(), T0);
  await store.close();
});

test('exactly ttlMs idle is not expired; one millisecond more is', async (t) => {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(T0);
  const { store } = open(t, dir, clock, { ttlMs: 10_000 });
  store.ensureSession('s');
  clock.advance(10_000);
  t.is(store.listSessions().length, 1);
  clock.advance(1);
  t.is(store.listSessions().length, 0);
  await store.close();
});

test('LRU: over maxSessions, listSessions hides the least recently accessed, journals nothing; expireNow() evicts them for good', async (t) => {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(T0);
  const { store } = open(t, dir, clock, { maxSessions: 2 });
  store.ensureSession('a');
  clock.advance(1);
  store.ensureSession('b');
  clock.advance(1);
  store.getSession('a'); // 'a' is now more recent than 'b'
  clock.advance(1);
  store.ensureSession('c'); // one too many: the least recently accessed, 'b', is hidden
  t.deepEqual(
    store.listSessions().map((s) => s.id),
    ['c', 'a'],
  );
  await store.flush();
  t.deepEqual(ofType(dir, 'session.delete'), []);
  t.deepEqual(await store.expireNow(), { expired: 0, evicted: 1 });
  t.deepEqual(
    ofType(dir, 'session.delete').map((l) => l.p),
    [{ id: 'b', reason: 'evicted' }],
  );
  await store.close();
  const { store: reopened } = open(t, dir, clock, { maxSessions: 100 });
  t.deepEqual(
    reopened.listSessions().map((s) => s.id),
    ['c', 'a'],
    'still evicted under a larger limit',
  );
  await reopened.close();
});

test('flush() resolves only after the bytes are in the file', async (t) => {
  for (const fsync of [false, true]) {
    const dir = tempStoreDir(t);
    const store = track(t, SessionStore.openSync({ dir, fsync }));
    const id = store.createSession();
    t.false(journalLines(dir).some((l) => l.p.id === id), `not written synchronously (fsync ${fsync})`);
    const seen = await store.flush().then(() => journalLines(dir).some((l) => l.p.id === id && l.t === 'session.create'));
    t.true(seen, `in the file when flush resolves (fsync ${fsync})`);
    // A second mutation, flushed alongside others: every flush waits for its own entries.
    store.addTurn(id, turn('one'));
    const p1 = store.flush().then(() => ofType(dir, 'session.turn').length);
    store.addTurn(id, turn('two'));
    const p2 = store.flush().then(() => ofType(dir, 'session.turn').length);
    const [n1, n2] = await Promise.all([p1, p2]);
    t.true(n1 >= 1);
    t.is(n2, 2);
    await store.close();
  }
});

test('close() then a mutation throws CLOSED', async (t) => {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(T0);
  const { store } = open(t, dir, clock);
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
  // Nothing after close reached the file.
  t.deepEqual(
    journalLines(dir).map((l) => l.t),
    ['session.create'],
  );
});

test('closeSync() then a mutation throws CLOSED', (t) => {
  const dir = tempStoreDir(t);
  const store = track(t, SessionStore.openSync({ dir, fsync: false }));
  store.ensureSession('s');
  store.closeSync();
  t.is(journalLines(dir).length, 1, 'closeSync wrote the queued entry');
  const err = t.throws(() => store.addTurn('s', turn('p')));
  t.is(codeOf(err), 'CLOSED');
});

// ---- input validation ----------------------------------------------------------------

test('updateSession refuses a different id with INVALID_UPDATE (nothing journaled); its own id is accepted; the session survives compaction', async (t) => {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(T0);
  const { store } = open(t, dir, clock);
  store.ensureSession('s');
  await store.flush();
  const before = journalBytes(dir);
  for (const id of ['other', 'bad id!']) {
    const err = t.throws(() => store.updateSession('s', { id }));
    t.is(codeOf(err), 'INVALID_UPDATE');
  }
  await store.flush();
  t.is(journalBytes(dir), before, 'nothing was journaled');
  store.updateSession('s', { id: 's', codexConversationId: 'c1' });
  await store.close();
  await compactSessions({ dir, ttlMs: 1e12, now: () => clock.now });
  const reopened = SessionStore.openSync({ dir, fsync: false, autoCompact: false, clock: clock.read });
  t.deepEqual(reopened.listSessions().map((x) => [x.id, x.codexConversationId]), [['s', 'c1']]);
  reopened.closeSync();
});

test('updateSession refuses __proto__, constructor and prototype keys with INVALID_UPDATE; Object.prototype stays clean', async (t) => {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(T0);
  const { store } = open(t, dir, clock);
  store.ensureSession('s');
  await store.flush();
  const before = journalBytes(dir);
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
  t.false(ofType(dir, 'session.update').length > 0, 'nothing journaled');
  t.true(journalBytes(dir) >= before);
  await store.close();
});

test('updateSession and addTurn refuse invalid dates with INVALID_DATE', async (t) => {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(T0);
  const { store } = open(t, dir, clock);
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
  t.deepEqual(
    journalLines(dir).map((l) => l.t),
    ['session.create'],
  );
  await store.close();
});

test('turns of 300 KiB and 2 MiB are stored with the default options (no maxTurnBytes), spread over several journal lines, and survive reopening', async (t) => {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(T0);
  const { store, warnings } = open(t, dir, clock);
  store.ensureSession('s');
  const answers = [300 * 1024, 2 * 1024 * 1024].map((n, i) => `${i}:${'é'.repeat(n / 2 - 1)}`);
  for (const response of answers) store.addTurn('s', { prompt: 'q', response, timestamp: new Date(clock.now) });
  await store.close();
  t.true(journalLines(dir).filter((l) => l.t === 'journal.part').length >= 2, 'the 2 MiB turn is spread (the 300 KiB one fits a line)');
  const { store: reopened } = open(t, dir, clock);
  t.deepEqual(reopened.getSession('s')!.turns.map((turn) => turn.response), answers);
  await reopened.close();
  t.deepEqual(warnings, []);
});

test('an oversize turn throws TURN_TOO_LARGE (UTF-8 bytes) and changes nothing', async (t) => {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(T0);
  const { store } = open(t, dir, clock, { maxTurnBytes: 16 });
  store.ensureSession('s');
  store.addTurn('s', { prompt: 'x'.repeat(8), response: 'y'.repeat(8), timestamp: new Date(T0) }); // exactly 16
  const err = t.throws(() => store.addTurn('s', { prompt: 'é'.repeat(5), response: 'abcdefg', timestamp: new Date(T0) })); // 10 + 7 bytes, 12 chars
  t.is(codeOf(err), 'TURN_TOO_LARGE');
  t.is(store.getSession('s')!.turns.length, 1);
  await store.flush();
  t.is(ofType(dir, 'session.turn').length, 1);
  await store.close();
});

test('an update over maxRecordBytes throws RECORD_TOO_LARGE and changes nothing; so does a turn (maxTurnBytes sets no limit by default)', async (t) => {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(T0);
  const { store, warnings } = open(t, dir, clock, { maxRecordBytes: 512 });
  store.ensureSession('s');
  const err = t.throws(() => store.updateSession('s', { model: 'x'.repeat(1000) } as Partial<SessionData>));
  t.is(codeOf(err), 'RECORD_TOO_LARGE');
  t.false('model' in store.listSessions()[0]!);
  const turnErr = t.throws(() => store.addTurn('s', turn('y'.repeat(600))));
  t.is(codeOf(turnErr), 'RECORD_TOO_LARGE', 'without maxTurnBytes a turn is bounded by maxRecordBytes only');
  t.deepEqual(store.listSessions()[0]!.turns, []);
  store.updateSession('s', { model: 'small' } as Partial<SessionData>);
  await store.close();
  t.deepEqual(
    journalLines(dir).map((l) => l.t),
    ['session.create', 'session.update'],
  );
  const { store: reopened } = open(t, dir, clock, { maxRecordBytes: 512 });
  t.is((reopened.getSession('s') as unknown as { model?: string }).model, 'small');
  await reopened.close();
  t.deepEqual(warnings, []);
});

test('ensureSession refuses invalid ids with INVALID_SESSION_ID and creates nothing', async (t) => {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(T0);
  const { store } = open(t, dir, clock);
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
  t.is(journalLines(dir).length, 1);
  await store.close();
});

// ---- synchronous use and process exit ----------------------------------------------------

test('openSync, flushSync and closeSync work without awaiting anything', (t) => {
  const dir = tempStoreDir(t);
  const store = track(t, SessionStore.openSync({ dir, fsync: true }));
  t.true(store instanceof SessionStore, 'openSync returns the store, not a promise');
  t.is(typeof (store as unknown as { then?: unknown }).then, 'undefined');
  const id = store.createSession();
  store.addTurn(id, turn('sync'));
  store.flushSync();
  t.deepEqual(
    journalLines(dir).map((l) => l.t),
    ['session.create', 'session.turn'],
  );
  store.closeSync();
  const again = track(t, SessionStore.openSync({ dir }));
  t.is(again.getSession(id)?.turns[0]?.prompt, 'sync');
  again.closeSync();
});

test('process.exit() with queued mutations still writes them', async (t) => {
  const dir = tempStoreDir(t);
  const start = Date.now();
  const child = await runNode([helperScript('exit-without-flush.js'), dir, String(start)]);
  t.is(child.status, 0, child.stderr);
  t.is(child.stderr, '');
  const report = JSON.parse(child.stdout) as { created: string; pending?: number };
  t.true(report.pending === undefined || report.pending > 0, 'the child exited with entries still queued');
  const store = track(t, SessionStore.openSync({ dir, fsync: false, clock: () => start + 5000 }));
  const s = store.getSession('exit-session');
  t.truthy(s);
  t.is(s?.turns[0]?.prompt, 'queued at exit');
  t.is(s?.codexConversationId, 'conv-exit');
  t.is(s?.lastAccessedAt.getTime(), start + 5000, 'the deferred touch was written too');
  t.truthy(store.getSession(report.created));
  store.closeSync();
});

test('warnings go to stderr by default, never to stdout', async (t) => {
  const dir = tempStoreDir(t);
  const seed = track(t, SessionStore.openSync({ dir, fsync: false }));
  seed.ensureSession('kept');
  seed.closeSync();
  fs.appendFileSync(path.join(dir, 'journal-00000001.ndjson'), 'this is not json\n');
  const code = [
    `import { SessionStore } from ${JSON.stringify(BUILT_INDEX)};`,
    'const store = SessionStore.openSync({ dir: process.argv[1], fsync: false });',
    "if (store.getSession('kept') === undefined) process.exitCode = 3;",
    'store.closeSync();',
  ].join('\n');
  const child = await runNode(['--input-type=module', '-e', code, dir]);
  t.is(child.status, 0, child.stderr);
  t.is(child.stdout, '', 'stdout is the MCP transport: nothing may go there');
  const lines = child.stderr.split('\n').filter((l) => l !== '');
  t.is(lines.length, 1, child.stderr);
  t.regex(lines[0]!, /UNPARSABLE_LINE/);
  t.true(lines[0]!.includes('journal-00000001.ndjson'));
});

// ---- known-hazard regressions -----------------------------------------------------

test('updateSession with an undefined value clears the field, live and after a replay (as InMemory does)', async (t) => {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(T0);
  const { store } = open(t, dir, clock);
  store.ensureSession('s');
  store.setCodexConversationId('s', 'conv-1');
  store.updateSession('s', { model: 'm1' } as Partial<SessionData>);
  store.updateSession('s', { codexConversationId: undefined, model: undefined } as Partial<SessionData>);
  t.is(store.getCodexConversationId('s'), undefined, 'live');
  t.is((store.getSession('s') as unknown as { model?: string }).model, undefined, 'live');
  await store.close();
  const { store: reopened } = open(t, dir, clock);
  t.is(reopened.getCodexConversationId('s'), undefined, 'after a fresh replay');
  t.is((reopened.getSession('s') as unknown as { model?: string }).model, undefined, 'after a fresh replay');
  await reopened.close();
});

test('a rebased update that set turns does not duplicate the turns added after it', async (t) => {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(T0);
  const { store: a } = open(t, dir, clock);
  const { store: b } = open(t, dir, clock);
  a.ensureSession('s');
  await a.flush();
  t.truthy(b.getSession('s'));
  clock.advance(1);
  // A queues an update that replaces the turns array, then a turn; neither is committed yet.
  a.updateSession('s', { turns: [turn('p0')] });
  a.addTurn('s', turn('p1'));
  // B commits a record for the same session first (synchronously, so A's commit cannot run in between).
  b.setCodexConversationId('s', 'from-b');
  b.flushSync();
  // A catches up: the session is rebased (B's record, then A's queued events again).
  const live = a.getSession('s')!;
  t.is(live.codexConversationId, 'from-b');
  t.deepEqual(
    live.turns.map((x) => x.prompt),
    ['p0', 'p1'],
    'live view after the rebase',
  );
  await a.close();
  await b.close();
  const { store: fresh } = open(t, dir, clock);
  t.deepEqual(
    fresh.getSession('s')!.turns.map((x) => x.prompt),
    ['p0', 'p1'],
    'fresh replay',
  );
  await fresh.close();
});

test('a process whose queued entries cannot be written still exits (no endless beforeExit flush loop)', async (t) => {
  const dir = tempStoreDir(t);
  const code = [
    `import fs from 'node:fs';`,
    `import { SessionStore } from ${JSON.stringify(BUILT_INDEX)};`,
    'let warnings = 0;',
    'const store = SessionStore.openSync({ dir: process.argv[1], fsync: false, onWarning: () => { warnings++; } });',
    "store.ensureSession('doomed');",
    // The store directory disappears before the first commit: every commit now fails.
    'fs.rmSync(process.argv[1], { recursive: true, force: true });',
    "process.on('exit', () => process.stderr.write(`warnings: ${warnings}\\n`));",
    // Nothing else to do: the event loop drains and the process should end.
  ].join('\n');
  const child = await runNode(['--input-type=module', '-e', code, dir], 8000);
  t.is(child.signal, null, `killed after ${child.elapsedMs} ms: the process did not exit by itself`);
  t.is(child.status, 0, child.stderr);
  t.is(child.stdout, '');
  t.regex(child.stderr, /warnings: [1-9]/, 'the lost entries were reported');
});

test('changes the caller makes to its update object after updateSession reach neither the journal nor a rebased view', async (t) => {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(T0);
  const { store: a } = open(t, dir, clock);
  const { store: b } = open(t, dir, clock);
  a.ensureSession('s');
  await a.flush();
  t.truthy(b.getSession('s'));
  clock.advance(1);
  const data = { turns: [turn('p0')], model: 'm1' };
  a.updateSession('s', data as Partial<SessionData>);
  // The caller reuses its object (InMemory would not care: it never re-applies anything).
  data.turns.push(turn('late'));
  data.model = 'changed';
  b.setCodexConversationId('s', 'from-b');
  b.flushSync(); // committed before A's queued update: A must rebase
  const live = a.getSession('s') as SessionData & { model?: string };
  t.is(live.codexConversationId, 'from-b');
  await a.close();
  await b.close();
  const { store: fresh } = open(t, dir, clock);
  const replayed = fresh.getSession('s') as SessionData & { model?: string };
  t.is(replayed.model, 'm1', 'the journal holds the value at the time of the call');
  t.deepEqual(
    replayed.turns.map((x) => x.prompt),
    ['p0'],
  );
  t.is(live.model, replayed.model, 'live view after the rebase equals the replay');
  t.deepEqual(
    live.turns.map((x) => x.prompt),
    replayed.turns.map((x) => x.prompt),
    'live turns after the rebase equal the replay',
  );
  await fresh.close();
});
