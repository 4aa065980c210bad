/**
 * SessionStore on a store directory: the synchronous API (openSync,
 * flushSync, closeSync), process exit, and the rebase races made
 * deterministic with flushSync. The SessionStorage contract, TTL and LRU,
 * input rules and durability run on every backend in test/conformance/.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { ErrorCodes, SessionJournalError, SessionStore, type SessionData, type SessionStoreOptions } from '../src/index.js';
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

// ---- synchronous use and process exit ----------------------------------------------------

test('closeSync() then a mutation throws CLOSED', (t) => {
  const dir = tempStoreDir(t);
  const store = track(t, SessionStore.openSync({ dir, fsync: false }));
  store.ensureSession('s');
  store.closeSync();
  t.is(journalLines(dir).length, 1, 'closeSync wrote the queued entry');
  const err = t.throws(() => store.addTurn('s', turn('p')));
  t.is(codeOf(err), 'CLOSED');
});

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

// ---- known-hazard regressions -----------------------------------------------------

/** Two stores on one directory, session `s` made by `a` and read by `b`, the clock a millisecond on. */
async function twoStoresWithSession(t: ExecutionContext) {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(T0);
  const { store: a } = open(t, dir, clock);
  const { store: b } = open(t, dir, clock);
  a.ensureSession('s');
  await a.flush();
  t.truthy(b.getSession('s'));
  clock.advance(1);
  return { dir, clock, a, b };
}

test('a rebased update that set turns does not duplicate the turns added after it', async (t) => {
  const { dir, clock, a, b } = await twoStoresWithSession(t);
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
  const { dir, clock, a, b } = await twoStoresWithSession(t);
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

// ---- what is acknowledged is what a replay reads ------------------------------------------

test('an update whose turns a replay would refuse (a prompt or response not a string) throws INVALID_UPDATE and changes nothing', async (t) => {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(T0);
  const { store } = open(t, dir, clock);
  store.ensureSession('s');
  for (const bad of [{ prompt: 'p', response: 42 }, { prompt: null, response: 'r' }, { response: 'r' }]) {
    const err = t.throws(() => store.updateSession('s', { note: 'lost?', turns: [turn('ok'), { ...bad, timestamp: new Date(T0) }] } as unknown as Partial<SessionData>));
    t.is(codeOf(err), ErrorCodes.INVALID_UPDATE, JSON.stringify(bad));
    t.regex(err.message, /turns\[1\]: turn prompt and response must be strings/, 'the reason is the one a replay gives, naming the turn');
  }
  t.is((store.getSession('s') as unknown as Record<string, unknown>).note, undefined);
  store.updateSession('s', { note: 'kept', turns: [turn('ok')] } as unknown as Partial<SessionData>);
  await store.flush();
  const { store: fresh, warnings } = open(t, dir, clock, { readOnly: true });
  t.is((fresh.getSession('s') as unknown as Record<string, unknown>).note, 'kept');
  t.deepEqual(fresh.getSession('s')?.turns.map((x) => x.prompt), ['ok']);
  t.deepEqual(warnings, []);
});

test('a turn is kept as the journal holds it: a copy of its prompt, response and timestamp, whatever the caller does with its object afterwards', async (t) => {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(T0);
  const { store } = open(t, dir, clock);
  store.ensureSession('s');
  const added = { ...turn('added'), extra: 'not a turn field' };
  store.addTurn('s', added);
  const updated = turn('updated');
  store.updateSession('s', { turns: [updated] });
  store.addTurn('s', added);
  added.prompt = 'changed';
  added.timestamp.setTime(0);
  updated.response = 'changed';
  await store.flush();
  const live = store.getSession('s')!.turns;
  const { store: fresh } = open(t, dir, clock, { readOnly: true });
  const replayed = fresh.getSession('s')!.turns;
  t.deepEqual(live, replayed, 'the live view equals the replay');
  t.deepEqual(live.map((x) => [x.prompt, x.response, x.timestamp.getTime()]), [
    ['updated', 're: updated', T0],
    ['added', 're: added', T0],
  ]);
  t.false(Object.hasOwn(live[1]!, 'extra'));
  const journaled = fs.readdirSync(dir).map((name) => (fs.statSync(path.join(dir, name)).isFile() ? fs.readFileSync(path.join(dir, name), 'utf8') : '')).join('');
  t.true(journaled.includes('re: added'), 'the turn is in the store');
  t.false(journaled.includes('not a turn field'), 'a field that is not a turn\'s is not journaled either');
});

test("an update's other fields are kept as JSON, as a replay reads them: nested objects are the store's own, a nested Date is its ISO string, a function nothing", async (t) => {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(T0);
  const { store } = open(t, dir, clock);
  store.ensureSession('s');
  const meta = { at: new Date(T0), list: [1], deep: { n: 1 } };
  store.updateSession('s', { meta, fn: () => 1, gone: undefined } as unknown as Partial<SessionData>);
  meta.list.push(2);
  meta.deep.n = 2;
  await store.flush();
  const live = store.getSession('s') as unknown as Record<string, unknown>;
  const { store: fresh } = open(t, dir, clock, { readOnly: true });
  const replayed = fresh.getSession('s') as unknown as Record<string, unknown>;
  t.deepEqual(live.meta, { at: new Date(T0).toISOString(), list: [1], deep: { n: 1 } });
  t.deepEqual(live.meta, replayed.meta);
  t.false('fn' in live);
  t.false('fn' in replayed);
  t.deepEqual(live, replayed);
});
