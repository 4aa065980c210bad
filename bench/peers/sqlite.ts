/**
 * SQLite as a peer, the fair durable one: better-sqlite3, `journal_mode=WAL`,
 * `synchronous=FULL` (the WAL is synced at every commit, so a committed
 * transaction survives power loss), `busy_timeout` 10 s for several
 * processes on one file, and one `BEGIN IMMEDIATE` transaction per mutation
 * (immediate, so a writer waits for the lock through the busy handler
 * instead of failing with SQLITE_BUSY_SNAPSHOT).
 *
 * Schema: a `sessions` table (id, dates, conversation id) and a `turns`
 * table, one row per turn, ordered by rowid, indexed by session. addTurn =
 * update the session's lastAccessedAt + insert the turn, as SessionStore's
 * addTurn does. better-sqlite3 is synchronous: a mutation is committed when
 * the call returns, so flush() has nothing left to wait for.
 */
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import type { ConversationTurn, PortableSession } from '../../src/index.js';
import type { PeerModule, PeerStore } from './peer.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS sessions (
  id TEXT PRIMARY KEY,
  created_at TEXT NOT NULL,
  last_accessed_at TEXT NOT NULL,
  codex_conversation_id TEXT
);
CREATE TABLE IF NOT EXISTS turns (
  id INTEGER PRIMARY KEY,
  session_id TEXT NOT NULL,
  prompt TEXT NOT NULL,
  response TEXT NOT NULL,
  timestamp TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_by_session ON turns (session_id, id);
`;

function openDatabase(file: string): Database.Database {
  const db = new Database(file);
  db.pragma('busy_timeout = 10000');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(SCHEMA);
  return db;
}

interface TurnRow {
  prompt: string;
  response: string;
  timestamp: string;
}

export class SqlitePeer implements PeerStore {
  private readonly insertSession;
  private readonly touch;
  private readonly insertTurn;
  private readonly selectSession;
  private readonly selectTurns;
  private readonly addTurnTx;
  private readonly createTx;

  constructor(readonly db: Database.Database) {
    this.insertSession = db.prepare('INSERT INTO sessions (id, created_at, last_accessed_at) VALUES (?, ?, ?)');
    this.touch = db.prepare('UPDATE sessions SET last_accessed_at = ? WHERE id = ?');
    this.insertTurn = db.prepare('INSERT INTO turns (session_id, prompt, response, timestamp) VALUES (?, ?, ?, ?)');
    this.selectSession = db.prepare('SELECT id, created_at, last_accessed_at, codex_conversation_id FROM sessions WHERE id = ?');
    this.selectTurns = db.prepare<[string], TurnRow>('SELECT prompt, response, timestamp FROM turns WHERE session_id = ? ORDER BY id');
    this.addTurnTx = db.transaction((id: string, turn: ConversationTurn) => {
      if (this.touch.run(new Date().toISOString(), id).changes === 0) return;
      this.insertTurn.run(id, turn.prompt, turn.response, turn.timestamp.toISOString());
    });
    this.createTx = db.transaction((id: string, now: string) => this.insertSession.run(id, now, now));
  }

  createSession(): string {
    const id = randomUUID();
    this.createTx.immediate(id, new Date().toISOString());
    return id;
  }

  addTurn(id: string, turn: ConversationTurn): void {
    this.addTurnTx.immediate(id, turn);
  }

  async flush(): Promise<void> {}

  getSession(id: string): { turns: TurnRow[] } | undefined {
    const row = this.selectSession.get(id);
    if (row === undefined) return undefined;
    return { ...(row as object), turns: this.selectTurns.all(id) };
  }

  /** Turns stored per session, for the loss count of the multi-process workload. */
  turnCounts(): Map<string, number> {
    const rows = this.db.prepare<[], { session_id: string; n: number }>('SELECT session_id, count(*) AS n FROM turns GROUP BY session_id').all();
    return new Map(rows.map((r) => [r.session_id, r.n]));
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

export async function open(file: string): Promise<SqlitePeer> {
  return new SqlitePeer(openDatabase(file));
}

/** Bulk load in one transaction, then a checkpoint so the data sits in the main file as a user's database would. */
export async function load(file: string, sessions: readonly PortableSession[]): Promise<void> {
  const db = openDatabase(file);
  const insertSession = db.prepare('INSERT INTO sessions (id, created_at, last_accessed_at) VALUES (?, ?, ?)');
  const insertTurn = db.prepare('INSERT INTO turns (session_id, prompt, response, timestamp) VALUES (?, ?, ?, ?)');
  db.transaction(() => {
    for (const s of sessions) {
      insertSession.run(s.id, s.createdAt, s.lastAccessedAt);
      for (const t of s.turns) insertTurn.run(s.id, t.prompt, t.response, t.timestamp);
    }
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}

export default { open, load } satisfies PeerModule;
