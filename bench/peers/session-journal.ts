/**
 * session-journal as a peer: `SessionStore` already has the PeerStore shape.
 * Options are the defaults a user gets, except: auto-compaction off (the
 * workloads compact explicitly where they mean to), and maxSessions large
 * enough that LRU never hides a prepared session.
 */
import type { PortableSession } from '../../src/index.js';
import type { PeerModule, PeerOpenOptions, PeerStore } from './peer.js';

/**
 * The bundles a user's process loads, not the compiled modules one by one:
 * cold processes measure what users get. Opening a store (all a workload's
 * child process does) loads `session-journal/stores`, the entry for
 * short-lived processes; preparing a store loads the main entry's tools.
 */
const STORES_ENTRY = new URL('../../dist/stores.js', import.meta.url).href;
const MAIN_ENTRY = new URL('../../dist/index.js', import.meta.url).href;
const { SessionStore } = (await import(STORES_ENTRY)) as typeof import('../../src/stores.js');
const tools = async () => (await import(MAIN_ENTRY)) as typeof import('../../src/index.js');

export const MAX_SESSIONS = 1_000_000;

export async function open(dir: string, options: PeerOpenOptions = {}): Promise<PeerStore> {
  return SessionStore.openSync({ dir, fsync: options.fsync ?? true, maxSessions: MAX_SESSIONS, autoCompact: false, readOnly: options.readOnly ?? false });
}

/** Bulk load through `importSessions` (one `session.import` record per session), about 16 MiB of JSON per import. */
export async function load(dir: string, sessions: readonly PortableSession[]): Promise<void> {
  let start = 0;
  while (start < sessions.length) {
    let end = start;
    let bytes = 0;
    while (end < sessions.length && (end === start || bytes < 16 << 20)) bytes += JSON.stringify(sessions[end++]).length;
    const result = await (await tools()).importSessions({ dir, file: 'prepared.json', text: JSON.stringify({ version: 1, sessions: sessions.slice(start, end) }) });
    if (result.imported !== end - start) throw new Error(`prepared import took ${result.imported} of ${end - start} sessions (${result.skipped} skipped)`);
    start = end;
  }
}

/**
 * The same sessions as a user's store holds them after writing them turn by
 * turn: ensureSession + one addTurn per turn (fsync off while preparing; the
 * bytes are the same), so the store is a journal of one record per turn.
 */
export async function loadAsJournal(dir: string, sessions: readonly PortableSession[]): Promise<void> {
  const store = SessionStore.openSync({ dir, fsync: false, maxSessions: MAX_SESSIONS, autoCompact: false });
  for (const s of sessions) {
    store.ensureSession(s.id);
    for (const t of s.turns) store.addTurn(s.id, { prompt: t.prompt, response: t.response, timestamp: new Date(t.timestamp) });
    await store.flush();
  }
  await store.close();
}

/** Folds the store into one snapshot (no archive, no retention), as `session-journal compact --no-archive` would. */
export async function compactAll(dir: string): Promise<void> {
  const r = await (await tools()).compactSessions({ dir, maxSessions: MAX_SESSIONS, ttlMs: 365 * 24 * 3600 * 1000, archive: { keep: false } });
  if (r.status !== 'compacted') throw new Error(`compaction of ${dir}: ${r.status}`);
}

export default { open, load } satisfies PeerModule;
