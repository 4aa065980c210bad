/**
 * lowdb 7 as a peer: the JSONFile adapter, which reads and parses the whole
 * file at `read()` and writes the whole file (pretty-printed JSON, through
 * steno: a temp file and a rename, no fsync) at `write()`. Data:
 * `{ sessions: { [id]: session } }`, each session in codex-mcp-server's v1
 * shape.
 */
import { randomUUID } from 'node:crypto';
import { Low } from 'lowdb';
import { JSONFile } from 'lowdb/node';
import type { ConversationTurn, PortableSession } from '../../src/index.js';
import type { PeerModule, PeerStore } from './peer.js';

interface Data {
  sessions: Record<string, PortableSession>;
}

export class LowdbPeer implements PeerStore {
  constructor(private readonly db: Low<Data>) {}

  createSession(): string {
    const id = randomUUID();
    const now = new Date().toISOString();
    this.db.data.sessions[id] = { id, createdAt: now, lastAccessedAt: now, turns: [] };
    return id;
  }

  addTurn(id: string, turn: ConversationTurn): void {
    const s = this.db.data.sessions[id];
    if (s === undefined) return;
    s.lastAccessedAt = new Date().toISOString();
    s.turns.push({ prompt: turn.prompt, response: turn.response, timestamp: turn.timestamp.toISOString() });
  }

  flush(): Promise<void> {
    return this.db.write();
  }

  getSession(id: string): PortableSession | undefined {
    return this.db.data.sessions[id];
  }

  async close(): Promise<void> {
    await this.db.write();
  }
}

export async function open(file: string): Promise<LowdbPeer> {
  const db = new Low<Data>(new JSONFile<Data>(file), { sessions: {} });
  await db.read();
  return new LowdbPeer(db);
}

export async function load(file: string, sessions: readonly PortableSession[]): Promise<void> {
  const db = new Low<Data>(new JSONFile<Data>(file), { sessions: Object.fromEntries(sessions.map((s) => [s.id, s])) });
  await db.write();
}

export default { open, load } satisfies PeerModule;
