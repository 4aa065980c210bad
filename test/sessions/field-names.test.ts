/**
 * Sessions keep fields the library does not know (as codex-mcp-server's
 * Object.assign keeps them), whatever they are called. A rejection inside
 * the library is also an object with `code` and `message`: a session whose
 * own fields are named so must never be taken for one, or its update,
 * import or snapshot entry would be dropped at replay (with a warning
 * carrying the session's own `code`).
 */
import test from 'ava';
import { SessionStore, compactSessions, importSessions, sessionsAt, type SessionData } from '../../src/index.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';

const T0 = Date.parse('2026-05-01T10:00:00.000Z');
const YEAR = 365 * 24 * 3600 * 1000;
const options = { maxSessions: 100, ttlMs: YEAR, clock: () => T0 + 60_000, autoCompact: false as const, fsync: false };
const FIELDS = { code: 'E_USER', message: 'a field of the user' };

function reopened(dir: string): { session: SessionData | undefined; warnings: readonly unknown[] } {
  const { warnings, onWarning } = collectWarnings();
  const store = SessionStore.openSync({ dir, readOnly: true, onWarning, ...options });
  const session = store.getSession('s1');
  store.closeSync();
  return { session, warnings };
}

test('an update setting fields named code and message is replayed, from the journal and from a snapshot, with no warning', async (t) => {
  const dir = tempStoreDir(t);
  const store = SessionStore.openSync({ dir, ...options });
  store.ensureSession('s1');
  store.updateSession('s1', FIELDS as Partial<SessionData>);
  await store.close();
  const fromJournal = reopened(dir);
  t.like(fromJournal.session, FIELDS);
  t.deepEqual(fromJournal.warnings, []);

  const { warnings, onWarning } = collectWarnings();
  t.is((await compactSessions({ dir, maxSessions: 100, ttlMs: YEAR, now: () => T0 + 60_000, onWarning })).status, 'compacted');
  t.deepEqual(warnings, []);
  const fromSnapshot = reopened(dir);
  t.like(fromSnapshot.session, FIELDS);
  t.deepEqual(fromSnapshot.warnings, []);
  const state = await sessionsAt(dir, T0 + 60_000, { onWarning, onNote: () => undefined });
  t.like(state.sessions.find((s) => s.id === 's1'), FIELDS);
  t.deepEqual(warnings, []);
});

test('a session document with fields named code and message is imported whole and reads back', async (t) => {
  const dir = tempStoreDir(t);
  const doc = { version: 1, sessions: [{ id: 's1', createdAt: '2026-05-01T09:00:00.000Z', lastAccessedAt: '2026-05-01T09:00:00.000Z', turns: [], ...FIELDS }] };
  const result = await importSessions({ dir, file: 'sessions.json', text: JSON.stringify(doc), now: () => T0 });
  t.is(result.imported, 1, JSON.stringify(result.skippedItems));
  const back = reopened(dir);
  t.like(back.session, FIELDS);
  t.deepEqual(back.warnings, []);
});
