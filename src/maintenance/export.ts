import { DEFAULT_MAX_LINE_BYTES, Journal } from '../storage/journal.js';
import { requireStoreDir } from '../storage/file/store-files.js';
import { writeWarningToStderr, type WarningHandler } from '../engine/warnings.js';
import type { RedisLocation } from '../storage/redis/redis-location.js';
import { withStoreConnection } from '../storage/redis/history-reader.js';
import { SessionFold } from '../sessions/session-fold.js';
import type { SessionData } from '../sessions/session-types.js';

/** A turn as JSON: the timestamp as an ISO string. */
export interface PortableTurn {
  prompt: string;
  response: string;
  timestamp: string;
}

/** A session as JSON, as codex-mcp-server's proposed FileSessionStorage writes it. */
export interface PortableSession {
  id: string;
  createdAt: string;
  lastAccessedAt: string;
  turns: PortableTurn[];
  codexConversationId?: string;
  /** Fields set through updateSession beyond the known ones are kept, as the original keeps them. */
  [key: string]: unknown;
}

/** The v1 session file: `{"version":1,"sessions":[...]}`. */
export interface SessionsDocument {
  version: 1;
  sessions: PortableSession[];
}

export interface ExportOptions {
  dir: string;
  /** Replay warnings (default: one line each on stderr). */
  onWarning?: WarningHandler;
  maxLineBytes?: number;
}

/** exportSessions of a store on Redis: `redis` in place of `dir`. */
export type RedisExportOptions = Omit<ExportOptions, 'dir'> & { redis: RedisLocation };

const KNOWN_KEYS = new Set(['id', 'createdAt', 'lastAccessedAt', 'turns', 'codexConversationId']);

/** One session as JSON: known fields first (dates as ISO strings), then any others in key order; undefined fields left out. */
export function portableSession(s: SessionData): PortableSession {
  const out: PortableSession = {
    id: s.id,
    createdAt: s.createdAt.toISOString(),
    lastAccessedAt: s.lastAccessedAt.toISOString(),
    turns: (Array.isArray(s.turns) ? s.turns : []).map((t) => ({ prompt: t.prompt, response: t.response, timestamp: t.timestamp.toISOString() })),
  };
  if (s.codexConversationId !== undefined) out.codexConversationId = s.codexConversationId;
  const extra = s as unknown as Record<string, unknown>;
  for (const key of Object.keys(extra).sort()) {
    if (KNOWN_KEYS.has(key) || extra[key] === undefined) continue;
    const value = extra[key];
    out[key] = value instanceof Date ? value.toISOString() : value;
  }
  return out;
}

/**
 * The current state of a session store as a v1 document, sessions ordered
 * by id (code-unit order, so the output is the same on every machine). Read
 * without any lock, like every reader: a consistent state as of the replay.
 * Every session in the journal is written, including one a server would
 * expire on its next access (retention is journaled when it happens).
 */
export function exportSessions(options: ExportOptions): SessionsDocument;
/** The same document from a store on Redis (exportRedisSessions). */
export function exportSessions(options: RedisExportOptions): Promise<SessionsDocument>;
export function exportSessions(options: ExportOptions | RedisExportOptions): SessionsDocument | Promise<SessionsDocument> {
  if ('redis' in options) return exportRedisSessions(options);
  requireStoreDir(options.dir);
  const fold = new SessionFold(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  const journal = Journal.openSync({ dir: options.dir, consumer: fold, readOnly: true, create: false, onWarning: options.onWarning, maxLineBytes: options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES });
  journal.closeSync();
  return documentOf(fold);
}

/**
 * exportSessions for a store on Redis: the same document, from a read-only
 * open (the snapshot, then the stream after it). A store of another kind
 * is refused (STORE_KIND_MISMATCH: `{P}:meta` records the kind).
 */
export async function exportRedisSessions(options: RedisExportOptions): Promise<SessionsDocument> {
  await withStoreConnection(options.redis, options.onWarning ?? writeWarningToStderr, async () => undefined); // NOT_A_STORE for a prefix with no store
  const fold = new SessionFold(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  const journal = await Journal.open({
    redis: options.redis,
    storeKind: fold.recordNamespace,
    consumer: fold,
    readOnly: true,
    create: false,
    fsync: false, // read-only: the server's durability is the writers' concern
    flushOnExit: false,
    onWarning: options.onWarning,
    maxLineBytes: options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES,
  });
  await journal.close();
  return documentOf(fold);
}

function documentOf(fold: SessionFold): SessionsDocument {
  const sessions = [...fold.sessions.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map(portableSession);
  return { version: 1, sessions };
}
