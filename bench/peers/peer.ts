/**
 * What the peer workloads do to a store, the same for session-journal and
 * for what users pick instead. session-journal's `SessionStore` has this
 * shape as it is; each other peer is one small module beside this file.
 *
 * A peer module exports `open(path, options)` and `load(path, sessions)`
 * (bulk preparation before timing, not timed). Modules are imported on
 * demand, so a cold child process loads only the peer it measures.
 */
import fs from 'node:fs';
import type { ConversationTurn, PortableSession } from '../../src/index.js';

export interface PeerStore {
  createSession(): string;
  /** Unknown ids are ignored, as codex-mcp-server's SessionStorage does. */
  addTurn(id: string, turn: ConversationTurn): void;
  /** Resolves when every mutation so far is as durable as this peer makes it. */
  flush(): Promise<void>;
  getSession(id: string): { turns: readonly unknown[] } | undefined;
  close(): Promise<void>;
}

export interface PeerOpenOptions {
  /** session-journal only: fsync each group commit (default true). The other peers do what they always do. */
  fsync?: boolean;
  /** session-journal only: open for reading only (no lock, no access-time write), as a process that only reads would. */
  readOnly?: boolean;
}

export interface PeerModule {
  open(path: string, options?: PeerOpenOptions): Promise<PeerStore>;
  load(path: string, sessions: readonly PortableSession[]): Promise<void>;
}

/**
 * The peers by name. `path` is a directory for session-journal and a file
 * for the others.
 *
 * KeyValueStore (being built on another branch): when it lands, add
 * `'session-journal-kv': () => import('./session-journal-kv.js')` here and
 * set OURS_COLD in bench/peers-d-cold-process.ts to it.
 */
export const PEERS = {
  'session-journal': () => import('./session-journal.js'),
  sqlite: () => import('./sqlite.js'),
  lowdb: () => import('./lowdb.js'),
  'genie-file': () => import('./genie-file.js'),
} as const satisfies Record<string, () => Promise<PeerModule>>;

export type PeerKind = keyof typeof PEERS;

export function isPeerKind(s: string | undefined): s is PeerKind {
  return s !== undefined && Object.hasOwn(PEERS, s);
}

export async function peerModule(kind: PeerKind): Promise<PeerModule> {
  return PEERS[kind]();
}

/** The peer's on-disk file for a store named `base` in `root`: a directory for ours, one file for the rest. */
export function peerPath(root: string, kind: PeerKind, base: string): string {
  const ext = kind === 'session-journal' ? '' : kind === 'sqlite' ? '.sqlite' : '.json';
  return `${root}/${base}-${kind}${ext}`;
}

/** The files a peer's store consists of (SQLite's -wal and -shm beside its file). */
export const peerFiles = (path: string): string[] => [path, `${path}-wal`, `${path}-shm`];

/** Bytes on disk of a peer's store: every file under a directory, or the file and its companions. */
export function peerBytes(path: string): number {
  let total = 0;
  for (const p of peerFiles(path)) {
    const st = fs.statSync(p, { throwIfNoEntry: false });
    if (st === undefined) continue;
    total += st.isDirectory() ? fs.readdirSync(p).reduce((s, name) => s + peerBytes(`${p}/${name}`), 0) : st.size;
  }
  return total;
}

export function removePeer(path: string): void {
  for (const p of peerFiles(path)) fs.rmSync(p, { recursive: true, force: true });
}
