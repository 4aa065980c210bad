/**
 * A session brought in whole (a `session.import` record, written by
 * `import` / importSessions) is kept as a snapshot entry is, until first
 * read (issue 11, D: a freshly imported store of 1,000 sessions opened to
 * read one revives one). Every read sees exactly what applying the records
 * in order gives, which is what the compactor's eager fold gives; a damaged
 * import record is reported with file and line when its session is first
 * read, or when a later record touches that session (which makes it), and
 * reads as absent, as it did when it was rejected at open.
 */
import test, { type ExecutionContext } from 'ava';
import { Journal, SessionStore, WarningCodes, compactSessions, type JournalWarning, type SessionData } from '../../src/index.js';
import { copyFixtureStore } from '../helpers/fixture-store.js';
import { JOURNALS_NOW } from '../helpers/fixture-now.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';

const YEAR = 365 * 24 * 3600 * 1000;
const SEGMENT_1 = 'journal-00000001.ndjson';
const options = { maxSessions: 1000, ttlMs: YEAR, clock: () => JOURNALS_NOW, autoCompact: false as const, fsync: false };

const lineOf = (w: JournalWarning) => ({ code: w.code, file: w.file?.split('/').pop(), line: w.line });
const idsOf = (sessions: readonly SessionData[]) => sessions.map((s) => s.id).sort();

/** What the compactor (an eager fold of every record) makes of the same files, opened from its snapshot. */
async function foldedEagerly(t: ExecutionContext, dir: string): Promise<{ sessions: SessionData[]; warnings: JournalWarning[] }> {
  const { warnings, onWarning } = collectWarnings();
  const result = await compactSessions({ dir, maxSessions: 1000, ttlMs: YEAR, now: () => JOURNALS_NOW, onWarning, archive: { keep: false } });
  t.is(result.status, 'compacted');
  const store = SessionStore.openSync({ dir, readOnly: true, ...options });
  const sessions = store.listSessions().map((s) => structuredClone(s));
  store.closeSync();
  return { sessions, warnings };
}

test('fixture import-damaged: damaged imports are reported when their session is made (a later record, or the first read), once, at their lines; the rest reads as the eager fold', async (t) => {
  const dir = copyFixtureStore(t, 'import-damaged');
  const { warnings, onWarning } = collectWarnings();
  const store = SessionStore.openSync({ dir, readOnly: true, onWarning, ...options });
  // Line 6 (a turn for s3) makes s3's import of line 3; line 7 (a second import of s2) makes line 2's. Line 4's s4 is touched by nothing.
  t.deepEqual(warnings.map(lineOf), [
    { code: WarningCodes.INVALID_DATE, file: SEGMENT_1, line: 3 },
    { code: WarningCodes.INVALID_DATE, file: SEGMENT_1, line: 2 },
  ]);
  t.is(store.getSession('s4'), undefined, 'lastAccessedAt in month 13');
  t.deepEqual(warnings.slice(2).map(lineOf), [{ code: WarningCodes.INVALID_DATE, file: SEGMENT_1, line: 4 }]);
  t.is(store.getSession('s4'), undefined);
  t.is(store.getSession('s3'), undefined, 'its import was refused, so its turn (line 6) found no session');
  t.deepEqual(store.getSession('s1')?.turns.map((turn) => turn.prompt), ['hello', 'again']);
  t.deepEqual(store.getSession('s2')?.turns.map((turn) => turn.prompt), ['replan'], 'the import of line 7 applies: the one before it was refused');
  t.true(store.getSession('s5')?.createdAt instanceof Date);
  const lazily = store.listSessions().map((s) => structuredClone(s));
  t.deepEqual(idsOf(lazily), ['s1', 's2', 's5']);
  t.is(warnings.length, 3, 'each damaged line reported once');
  store.closeSync();

  const eager = await foldedEagerly(t, dir);
  t.deepEqual(lazily, eager.sessions);
  t.deepEqual(eager.warnings.filter((w) => w.code !== WarningCodes.KEPT_ASIDE).map(lineOf).sort((a, b) => a.line! - b.line!), [2, 3, 4].map((line) => ({ code: WarningCodes.INVALID_DATE, file: SEGMENT_1, line })));
});

/** Raw records through the engine (which does not validate payloads), one commit per call: what a store holds after imports, edits and deletes. */
function writeRecords(dir: string, records: ReadonlyArray<[type: string, payload: unknown]>): void {
  const journal = Journal.openSync({ dir, fsync: false, consumer: { reset: () => undefined, restore: () => undefined, apply: () => undefined } });
  let time = JOURNALS_NOW - 3_600_000;
  for (const [type, payload] of records) {
    journal.append(type, payload, { time: (time += 1000) });
    journal.flushSync();
  }
  journal.closeSync();
}

const session = (id: string, prompts: string[], createdAt = '2026-11-21T08:00:00.000Z'): SessionData =>
  ({ id, createdAt, lastAccessedAt: createdAt, turns: prompts.map((prompt) => ({ prompt, response: 'r', timestamp: createdAt })) }) as unknown as SessionData;
const turn = (id: string, prompt: string) => ['session.turn', { id, turn: { prompt, response: 'r', timestamp: '2026-11-21T09:00:00.000Z' } }] as [string, unknown];
const imported = (s: SessionData) => ['session.import', { id: s.id, session: s }] as [string, unknown];

test('imports kept until read give what applying every record in order gives: the first import of an id wins, a delete frees it, a create before it stands', async (t) => {
  const dir = tempStoreDir(t);
  writeRecords(dir, [
    imported(session('a', ['a1'])),
    imported(session('a', ['a2'])), // a no-op: a exists (still unread)
    imported(session('b', ['b1'])),
    ['session.delete', { id: 'b', reason: 'deleted' }],
    imported(session('b', ['b2'])),
    ['session.create', { id: 'c' }],
    imported(session('c', ['c1'])), // a no-op: c was created
    imported(session('d', ['d1'])),
    turn('d', 'd2'),
    imported(session('e', ['e1'], '2026-02-30T08:00:00.000Z')), // refused when made (by the next record)
    imported(session('e', ['e2'])),
    imported(session('f', ['f1'])),
    ['session.import', { id: 'g', session: session('other', ['x']) }], // record id and session id differ: refused
  ]);
  const { warnings, onWarning } = collectWarnings();
  const store = SessionStore.openSync({ dir, readOnly: true, onWarning, ...options });
  t.deepEqual(warnings.map(lineOf), [{ code: WarningCodes.INVALID_DATE, file: SEGMENT_1, line: 10 }], 'only the import a later record made, at open');
  const prompts = (id: string) => store.getSession(id)?.turns.map((x) => x.prompt);
  t.deepEqual(prompts('a'), ['a1']);
  t.deepEqual(prompts('b'), ['b2']);
  t.deepEqual(prompts('c'), []);
  t.deepEqual(prompts('d'), ['d1', 'd2']);
  t.deepEqual(prompts('e'), ['e2']);
  t.deepEqual(prompts('f'), ['f1']);
  t.is(store.getSession('g'), undefined);
  t.is(store.getSession('other'), undefined);
  t.deepEqual(warnings.slice(1).map(lineOf), [{ code: WarningCodes.INVALID_PAYLOAD, file: SEGMENT_1, line: 13 }]);
  const lazily = store.listSessions().map((s) => structuredClone(s));
  store.closeSync();
  t.deepEqual(lazily, (await foldedEagerly(t, dir)).sessions);
});

test('a writer mutates an imported session it has not read: the mutation lands on the imported session and survives reopen', async (t) => {
  const dir = tempStoreDir(t);
  writeRecords(dir, [imported(session('a', ['a1'])), imported(session('b', ['b1']))]);
  const store = SessionStore.openSync({ dir, ...options });
  store.addTurn('a', { prompt: 'a2', response: 'r', timestamp: new Date(JOURNALS_NOW) });
  t.true(store.deleteSession('b'));
  await store.close();
  const reopened = SessionStore.openSync({ dir, readOnly: true, ...options });
  t.deepEqual(reopened.getSession('a')?.turns.map((x) => x.prompt), ['a1', 'a2']);
  t.is(reopened.getSession('b'), undefined);
  reopened.closeSync();
});

test("another writer's import of a session this process has a mutation queued for is applied at once and the mutation rebased on it", async (t) => {
  const dir = tempStoreDir(t);
  writeRecords(dir, [['session.create', { id: 'seed' }]]);
  const store = SessionStore.openSync({ dir, ...options });
  store.ensureSession('x'); // queued: the group commit runs on a later microtask
  writeRecords(dir, [imported(session('x', ['x1']))]); // committed first, by another writer
  t.deepEqual(store.getSession('x')?.turns.map((turn) => turn.prompt), ['x1'], 'the read catches up: the import, then our create (a touch of what exists)');
  await store.close();
  const reopened = SessionStore.openSync({ dir, readOnly: true, ...options });
  t.deepEqual(reopened.getSession('x')?.turns.map((turn) => turn.prompt), ['x1']);
  reopened.closeSync();
});
