/**
 * The genie hook cache's pattern as a peer: one flat JSON file
 * (`{ [id]: session }`), read into a Map when the process starts, and after
 * each change the whole map written to `file.tmp` (one shared temp name)
 * and renamed over the file, synchronously. No fsync, no lock: it is
 * neither durable nor safe for two processes (the later rename drops the
 * other's entries), which favours it in any timing.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import type { ConversationTurn, PortableSession } from '../../src/index.js';
import type { PeerModule, PeerStore } from './peer.js';

export class GenieFilePeer implements PeerStore {
  private constructor(
    private readonly file: string,
    private readonly map: Map<string, PortableSession>,
  ) {}

  static open(file: string): GenieFilePeer {
    let map = new Map<string, PortableSession>();
    try {
      map = new Map(Object.entries(JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, PortableSession>));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return new GenieFilePeer(file, map);
  }

  createSession(): string {
    const id = randomUUID();
    const now = new Date().toISOString();
    this.map.set(id, { id, createdAt: now, lastAccessedAt: now, turns: [] });
    this.save();
    return id;
  }

  addTurn(id: string, turn: ConversationTurn): void {
    const s = this.map.get(id);
    if (s === undefined) return;
    s.lastAccessedAt = new Date().toISOString();
    s.turns.push({ prompt: turn.prompt, response: turn.response, timestamp: turn.timestamp.toISOString() });
    this.save();
  }

  async flush(): Promise<void> {}

  getSession(id: string): PortableSession | undefined {
    return this.map.get(id);
  }

  async close(): Promise<void> {}

  private save(): void {
    writeWhole(this.file, this.map);
  }
}

function writeWhole(file: string, map: ReadonlyMap<string, PortableSession>): void {
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(Object.fromEntries(map)));
  fs.renameSync(`${file}.tmp`, file);
}

export async function open(file: string): Promise<GenieFilePeer> {
  return GenieFilePeer.open(file);
}

export async function load(file: string, sessions: readonly PortableSession[]): Promise<void> {
  writeWhole(file, new Map(sessions.map((s) => [s.id, s])));
}

export default { open, load } satisfies PeerModule;
