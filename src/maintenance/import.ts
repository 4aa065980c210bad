import fs from 'node:fs';
import { ErrorCodes, SessionJournalError, ioError } from '../errors.js';
import { DEFAULT_MAX_LINE_BYTES, Journal } from '../journal/journal.js';
import { canonicalPayload } from '../journal/record-codec.js';
import { DEFAULT_MAX_RECORD_BYTES, MAX_RECORD_BYTES_LIMIT } from '../journal/record-parts.js';
import type { WarningHandler } from '../journal/warnings.js';
import { SessionEventTypes, reviveSession } from '../sessions/session-events.js';
import { SessionFold } from '../sessions/session-fold.js';
import { isValidSessionId } from '../sessions/session-types.js';
import { portableSession, type PortableSession } from './export.js';

/** `v1`: codex-mcp-server's `{"version":1,"sessions":[...]}`; `flat`: a hook's `{"key":"conversation id"}` cache. */
export type ImportFormat = 'v1' | 'flat';

/** One entry of the file that was not imported, and why. */
export interface ImportSkip {
  /** Position in the `sessions` array (v1) or among the keys (flat), from 0. */
  index: number;
  /** The key (flat files). */
  key?: string;
  /** The session id, when the entry has a usable one. */
  id?: string;
  /** INVALID_DATE, INVALID_PAYLOAD, INVALID_SESSION_ID or DUPLICATE_ID. */
  code: string;
  reason: string;
}

export interface ImportOptions {
  /** The store; created (0700) when missing. */
  dir: string;
  /** The file to import; also names it in warnings and in the result. */
  file: string;
  /** The file's content when it is already read (stdin, a test); otherwise `file` is read. */
  text?: string;
  /** createdAt and lastAccessedAt of a flat file's sessions (default: the file's mtime; now when `text` is given). */
  mtimeMs?: number;
  /** Wait this long for the journal lock (default 30 s). */
  lockTimeoutMs?: number;
  /** The store's line length (default 1 MiB): a larger session is spread over several lines. */
  maxLineBytes?: number;
  /**
   * Largest session imported, as its journal record (UTF-8 bytes of its
   * JSON; default 64 MiB, the journal's maxRecordBytes, at most 256 MiB). A
   * file with a larger session throws RECORD_TOO_LARGE before the store is
   * touched: nothing is imported.
   */
  maxSessionBytes?: number;
  /** Called for each entry skipped (default: nothing; the result lists them). */
  onSkip?: (skip: ImportSkip & { file: string }) => void;
  /** Replay warnings of the store (default: one line each on stderr). */
  onWarning?: WarningHandler;
  /** Clock of the import records (default Date.now). */
  now?: () => number;
  /** fsync the commit (default true). */
  fsync?: boolean;
}

export interface ImportResult {
  file: string;
  format: ImportFormat;
  /** Entries in the file. */
  total: number;
  /** Sessions added to the store. */
  imported: number;
  /** Valid entries whose id the store already had: left as they are. */
  alreadyPresent: number;
  /** Entries not imported (invalid dates, ids or shapes; duplicates; too large). */
  skipped: number;
  skippedItems: ImportSkip[];
}

/** The file is not JSON, or neither of the two formats: nothing was imported. */
export class ImportFileError extends SessionJournalError {
  constructor(message: string) {
    super(ErrorCodes.INVALID_IMPORT_FILE, message);
    this.name = 'ImportFileError';
  }
}

export interface ParsedImport {
  format: ImportFormat;
  total: number;
  sessions: { index: number; session: PortableSession }[];
  skips: ImportSkip[];
}

/**
 * Reads either format and validates every entry, as replay would: dates must
 * be ISO instants, ids must follow codex-mcp-server's rule. Throws
 * ImportFileError when the document as a whole is unusable.
 */
export function parseImportDocument(text: string, file: string, mtimeMs: number): ParsedImport {
  let doc: unknown;
  try {
    doc = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (err) {
    throw new ImportFileError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ImportFileError(`${file} holds ${kindOf(doc)}, not an object: expected {"version":1,"sessions":[...]} or a flat {"key":"value"} object`);
  }
  const o = doc as Record<string, unknown>;
  const values = Object.values(o);
  const flat = values.every((v) => typeof v === 'string');
  if (('version' in o && 'sessions' in o) || (!flat && ('version' in o || 'sessions' in o))) {
    if (o.version !== 1) throw new ImportFileError(`${file} has "version": ${JSON.stringify(o.version)}; this session-journal reads version 1`);
    if (!Array.isArray(o.sessions)) throw new ImportFileError(`${file} has no "sessions" array`);
    return parseV1(o.sessions);
  }
  if (!flat) {
    const bad = Object.keys(o).find((k) => typeof o[k] !== 'string')!;
    throw new ImportFileError(`${file} is neither a v1 sessions file ({"version":1,"sessions":[...]}) nor a flat {"key":"value"} cache: key ${JSON.stringify(bad)} has ${kindOf(o[bad])} value`);
  }
  return parseFlat(o as Record<string, string>, mtimeMs);
}

const kindOf = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`);

function parseV1(entries: unknown[]): ParsedImport {
  const out: ParsedImport = { format: 'v1', total: entries.length, sessions: [], skips: [] };
  const seen = new Map<string, number>();
  entries.forEach((entry, index) => {
    const rawId = (entry as { id?: unknown } | null)?.id;
    const id = typeof rawId === 'string' ? rawId : undefined;
    const session = reviveSession(entry);
    if ('code' in session) {
      const code = session.code === 'INVALID_PAYLOAD' && !isValidSessionId(rawId) ? 'INVALID_SESSION_ID' : session.code;
      out.skips.push({ index, ...(id !== undefined && { id: id.slice(0, 300) }), code, reason: session.message });
      return;
    }
    const first = seen.get(session.id);
    if (first !== undefined) {
      out.skips.push({ index, id: session.id, code: 'DUPLICATE_ID', reason: `the same id as sessions[${first}], which is imported instead` });
      return;
    }
    seen.set(session.id, index);
    out.sessions.push({ index, session: portableSession(session) });
  });
  return out;
}

function parseFlat(o: Record<string, string>, mtimeMs: number): ParsedImport {
  const keys = Object.keys(o);
  const out: ParsedImport = { format: 'flat', total: keys.length, sessions: [], skips: [] };
  const at = new Date(mtimeMs).toISOString();
  keys.forEach((key, index) => {
    const value = o[key]!;
    if (!isValidSessionId(key as unknown)) {
      out.skips.push({ index, key: key.slice(0, 300), code: 'INVALID_SESSION_ID', reason: 'not a valid session id (1-256 letters, digits, "-" or "_")' });
    } else if (value === '') {
      out.skips.push({ index, key, id: key, code: 'INVALID_PAYLOAD', reason: 'empty conversation id' });
    } else {
      out.sessions.push({ index, session: { id: key, createdAt: at, lastAccessedAt: at, turns: [], codexConversationId: value } });
    }
  });
  return out;
}

/**
 * Imports sessions into a store as `session.import` records, each the whole
 * session. Idempotent: the ids to write are chosen under the journal lock
 * after catching up with every writer, and only ids the store does not have
 * are written (replay ignores an import of an id that exists, too), so
 * importing the same file twice adds nothing. Entries the file gets wrong are
 * skipped and counted, never fatal; a file that is not one of the formats
 * throws ImportFileError before the store is touched.
 */
export async function importSessions(options: ImportOptions): Promise<ImportResult> {
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  let text = options.text;
  let mtimeMs = options.mtimeMs;
  if (text === undefined) {
    try {
      text = fs.readFileSync(options.file, 'utf8');
      mtimeMs ??= fs.statSync(options.file).mtimeMs;
    } catch (err) {
      throw ioError('read', options.file, err);
    }
  }
  const parsed = parseImportDocument(text, options.file, mtimeMs ?? (options.now ?? Date.now)());
  const skips = [...parsed.skips];
  const candidates = parsed.sessions.map(({ index, session }) => ({ index, id: session.id, payload: { id: session.id, session } }));
  const maxSessionBytes = options.maxSessionBytes ?? DEFAULT_MAX_RECORD_BYTES;
  if (!(maxSessionBytes > 0 && maxSessionBytes <= MAX_RECORD_BYTES_LIMIT)) {
    throw new SessionJournalError(ErrorCodes.INVALID_OPTION, `maxSessionBytes must be a positive number of at most ${MAX_RECORD_BYTES_LIMIT} (256 MiB), got ${maxSessionBytes}`, { details: { option: 'maxSessionBytes', value: maxSessionBytes } });
  }
  refuseOversizeSessions(candidates, maxSessionBytes, options.file);
  skips.sort((a, b) => a.index - b.index);
  for (const skip of skips) options.onSkip?.({ file: options.file, ...skip });

  const fold = new SessionFold(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  const journal = Journal.openSync({
    dir: options.dir,
    consumer: fold,
    create: true,
    flushOnExit: false,
    lockTimeoutMs: options.lockTimeoutMs ?? 30_000,
    maxLineBytes,
    // A larger limit must let the journal write such a session; a smaller one must not narrow what it reads.
    maxRecordBytes: Math.max(maxSessionBytes, DEFAULT_MAX_RECORD_BYTES),
    onWarning: options.onWarning,
    fsync: options.fsync ?? true,
    ...(options.now && { clock: options.now }),
  });
  let imported = 0;
  let alreadyPresent = 0;
  try {
    if (candidates.length > 0) {
      await journal.appendDecided(() => {
        const time = journal.now();
        const fresh = candidates.filter((c) => !fold.sessions.has(c.id));
        imported = fresh.length;
        alreadyPresent = candidates.length - fresh.length;
        return fresh.map((c) => ({ type: SessionEventTypes.import, payload: c.payload, time }));
      });
    }
  } finally {
    await journal.close();
  }
  return { file: options.file, format: parsed.format, total: parsed.total, imported, alreadyPresent, skipped: skips.length, skippedItems: skips };
}

/**
 * Every session over the limit, found before the store is opened: a limit
 * that is hit stops the import before any work is done, rather than
 * importing part of the file.
 */
function refuseOversizeSessions(candidates: ReadonlyArray<{ index: number; id: string; payload: unknown }>, limit: number, file: string): void {
  const over = candidates.map((c) => ({ ...c, bytes: Buffer.byteLength(canonicalPayload(c.payload)!) })).filter((c) => c.bytes > limit);
  if (over.length === 0) return;
  const first = over[0]!;
  const more = over.length > 1 ? ` (and ${over.length - 1} more)` : '';
  throw new SessionJournalError(ErrorCodes.RECORD_TOO_LARGE, `${file}: sessions[${first.index}] (id ${JSON.stringify(first.id)}) is ${first.bytes} bytes as a journal record, over maxSessionBytes (${limit})${more}; nothing was imported`, {
    details: { option: 'maxSessionBytes', flag: '--max-session-bytes', limit, sessions: over.map(({ index, id, bytes }) => ({ index, id, bytes })) },
  });
}
