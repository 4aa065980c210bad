import { compactStore, type CompactOptions, type CompactResult } from '../compact/compactor.js';
import { SessionFold } from './session-fold.js';
import { DEFAULT_MAX_SESSIONS, DEFAULT_TTL_MS } from './session-store.js';

export interface CompactSessionsOptions extends CompactOptions {
  /** Sessions not accessed for this long are dropped (default 24 h, as SessionStore). */
  ttlMs?: number;
  /** Keep at most this many, most recently accessed first (default 100, as SessionStore). */
  maxSessions?: number;
}

/** Compacts a session store: snapshot, TTL and LRU, archive. Safe beside live writers. */
export function compactSessions(options: CompactSessionsOptions): Promise<CompactResult> {
  return compactStore(options, new SessionFold(options.ttlMs ?? DEFAULT_TTL_MS, options.maxSessions ?? DEFAULT_MAX_SESSIONS));
}
