/**
 * What a short-lived process pays to open a store and read (issue 11, D):
 * no lock, and none of the modules that only writing, compaction or the
 * command line need. A hook fork opens, reads one entry and exits; every
 * module it loads and every lock it waits for is its whole cost. The child
 * imports the package entry (the bundle), as a consumer does.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { SessionStore } from '../../src/index.js';
import { makeFreshLock } from '../helpers/held-lock.js';
import { tempStoreDir } from '../helpers/temp-store.js';

const entry = new URL('../../dist/index.js', import.meta.url).pathname;
/** `session-journal/stores`, the entry the README gives short-lived processes. */
const storesEntry = new URL('../../dist/stores.js', import.meta.url).pathname;

/** Runs `body` (an ES module's text) in a fresh node and returns what it printed as JSON. */
function inChild(body: string): unknown {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', body], { encoding: 'utf8', timeout: 60_000 });
  return JSON.parse(out);
}

/** What the child reports of its loaded modules after it ran `work`. */
const LOADED = `
  const { createRequire } = await import('node:module');
  const packages = Object.keys(createRequire(import.meta.url).cache).map((f) => f.split('node_modules/').pop().split('/')[0]);
  const builtins = process.moduleLoadList.filter((m) => /^NativeModule (crypto|zlib|child_process|readline|http)$/.test(m)).map((m) => m.slice('NativeModule '.length));
  return { packages: [...new Set(packages)].sort(), builtins };
`;

function storeWithSessions(t: Parameters<typeof tempStoreDir>[0]): { dir: string; id: string } {
  const dir = tempStoreDir(t);
  const store = SessionStore.openSync({ dir, autoCompact: false });
  const id = store.createSession();
  store.addTurn(id, { prompt: 'hello', response: 'world', timestamp: new Date('2026-06-01T10:00:00.000Z') });
  store.closeSync();
  return { dir, id };
}

test('a readOnly open that reads a session loads no dependency and no costly builtin (node:crypto, node:zlib, node:child_process)', (t) => {
  const { dir, id } = storeWithSessions(t);
  const report = inChild(`
    const { SessionStore } = await import(${JSON.stringify(entry)});
    const store = SessionStore.openSync({ dir: ${JSON.stringify(dir)}, readOnly: true });
    const turns = store.getSession(${JSON.stringify(id)})?.turns.length;
    const loaded = await (async () => { ${LOADED} })();
    console.log(JSON.stringify({ turns, ...loaded }));
  `);
  t.deepEqual(report, { turns: 1, packages: [], builtins: [] });
});

test('through session-journal/stores, a readOnly open that reads a session loads none of Node\'s streams, no node:module and no dependency (an ES import of node:fs would load all of streams)', (t) => {
  const { dir, id } = storeWithSessions(t);
  const report = inChild(`
    const before = new Set(process.moduleLoadList);
    const { SessionStore } = await import(${JSON.stringify(storesEntry)});
    const store = SessionStore.openSync({ dir: ${JSON.stringify(dir)}, readOnly: true });
    const turns = store.getSession(${JSON.stringify(id)})?.turns.length;
    const added = process.moduleLoadList.filter((m) => !before.has(m) && /^NativeModule (stream|internal\\/streams\\/|internal\\/fs\\/streams|module$|crypto|zlib|child_process)/.test(m));
    const loaded = await (async () => { ${LOADED} })();
    console.log(JSON.stringify({ turns, added, packages: loaded.packages }));
  `);
  t.deepEqual(report, { turns: 1, added: [], packages: [] });
});

test('a readOnly open of a directory that holds no store reads as empty and creates nothing', (t) => {
  const dir = path.join(tempStoreDir(t), 'never-written');
  const report = inChild(`
    const { SessionStore } = await import(${JSON.stringify(entry)});
    const store = SessionStore.openSync({ dir: ${JSON.stringify(dir)}, readOnly: true });
    console.log(JSON.stringify({ sessions: store.listSessions().length }));
  `);
  t.deepEqual(report, { sessions: 0 });
  t.false(fs.existsSync(dir));
});

test('writing one turn loads no dependency and no costly builtin either: the canonical form is in the bundle, the first records are hashed without node:crypto, and no lock library, compactor or CLI', (t) => {
  const { dir, id } = storeWithSessions(t);
  const report = inChild(`
    const { SessionStore } = await import(${JSON.stringify(entry)});
    const store = SessionStore.openSync({ dir: ${JSON.stringify(dir)}, autoCompact: false });
    store.addTurn(${JSON.stringify(id)}, { prompt: 'again', response: 'yes', timestamp: new Date('2026-06-01T10:01:00.000Z') });
    store.closeSync();
    const loaded = await (async () => { ${LOADED} })();
    console.log(JSON.stringify(loaded));
  `);
  t.deepEqual(report, { packages: [], builtins: [] });
  t.is(SessionStore.openSync({ dir, autoCompact: false }).getSession(id)?.turns.length, 2);
});

test('a readOnly open takes no lock and writes nothing: it reads while another process holds journal.lock, leaves that lock as it was, refreshes no access time, and a mutation throws READ_ONLY', (t) => {
  const { dir, id } = storeWithSessions(t);
  const lock = makeFreshLock(dir, 'journal.lock');
  const before = fs.statSync(lock, { bigint: true });
  const segment = path.join(dir, 'journal-00000001.ndjson');
  const bytesBefore = fs.statSync(segment).size;
  const report = inChild(`
    const { SessionStore } = await import(${JSON.stringify(entry)});
    const store = SessionStore.openSync({ dir: ${JSON.stringify(dir)}, readOnly: true, lockTimeoutMs: 100 });
    const read = { turns: store.getSession(${JSON.stringify(id)})?.turns.length, sessions: store.listSessions().length };
    let code;
    try { store.addTurn(${JSON.stringify(id)}, { prompt: 'no', response: 'no', timestamp: new Date('2026-06-01T10:02:00.000Z') }); } catch (err) { code = err.code; }
    await store.close();
    console.log(JSON.stringify({ ...read, code }));
  `);
  t.deepEqual(report, { turns: 1, sessions: 1, code: 'READ_ONLY' });
  t.is(fs.statSync(segment).size, bytesBefore, 'not even an access-time refresh was written');
  const after = fs.statSync(lock, { bigint: true });
  t.deepEqual([after.ino, after.mtimeNs, after.ctimeNs], [before.ino, before.mtimeNs, before.ctimeNs]);
  t.deepEqual(fs.readdirSync(path.dirname(lock)).filter((f) => f.endsWith('.lock')), ['journal.lock']);
});
