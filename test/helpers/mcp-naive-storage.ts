import fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import type { ConversationTurn, SessionData, SessionStorage } from '../../src/index.js';

/**
 * The obvious file store (the proposed FileSessionStorage for
 * codex-mcp-server): load the JSON file once, keep the map in memory, and
 * after every change write the whole map to a temporary file and rename it
 * over the original. Correct for one process; with two, each rename carries
 * only its own process's map, so the last writer silently drops the other's
 * sessions. Kept here only to show that loss.
 */
export class NaiveFileSessionStorage implements SessionStorage {
  private readonly sessions = new Map<string, SessionData>();

  constructor(private readonly file: string) {
    try {
      for (const s of JSON.parse(fs.readFileSync(file, 'utf8')) as Array<SessionData & { createdAt: string; lastAccessedAt: string; turns: Array<ConversationTurn & { timestamp: string }> }>) {
        this.sessions.set(s.id, { ...s, createdAt: new Date(s.createdAt), lastAccessedAt: new Date(s.lastAccessedAt), turns: s.turns.map((t) => ({ ...t, timestamp: new Date(t.timestamp) })) });
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  private save(): void {
    const temp = `${this.file}.tmp-${process.pid}-${randomUUID()}`;
    fs.writeFileSync(temp, JSON.stringify([...this.sessions.values()]));
    fs.renameSync(temp, this.file);
  }

  createSession(): string {
    const id = randomUUID();
    this.ensureSession(id);
    return id;
  }
  ensureSession(id: string): void {
    if (!/^[a-zA-Z0-9_-]{1,256}$/.test(id)) throw new Error('Session ID must be 1-256 characters and contain only letters, numbers, hyphens, and underscores');
    const now = new Date();
    const s = this.sessions.get(id);
    if (s) s.lastAccessedAt = now;
    else this.sessions.set(id, { id, createdAt: now, lastAccessedAt: now, turns: [] });
    this.save();
  }
  getSession(id: string): SessionData | undefined {
    return this.sessions.get(id);
  }
  updateSession(id: string, data: Partial<SessionData>): void {
    const s = this.sessions.get(id);
    if (!s) return;
    Object.assign(s, data, { lastAccessedAt: new Date() });
    this.save();
  }
  deleteSession(id: string): boolean {
    const had = this.sessions.delete(id);
    if (had) this.save();
    return had;
  }
  listSessions(): SessionData[] {
    return [...this.sessions.values()].sort((a, b) => b.lastAccessedAt.getTime() - a.lastAccessedAt.getTime());
  }
  addTurn(id: string, turn: ConversationTurn): void {
    const s = this.sessions.get(id);
    if (!s) return;
    s.turns.push(turn);
    s.lastAccessedAt = new Date();
    this.save();
  }
  resetSession(id: string): void {
    const s = this.sessions.get(id);
    if (!s) return;
    s.turns = [];
    delete s.codexConversationId;
    this.save();
  }
  setCodexConversationId(id: string, cid: string): void {
    const s = this.sessions.get(id);
    if (!s) return;
    s.codexConversationId = cid;
    this.save();
  }
  getCodexConversationId(id: string): string | undefined {
    return this.sessions.get(id)?.codexConversationId;
  }
}
