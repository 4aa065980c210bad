import fs from 'node:fs';
import { ErrorCodes, SessionJournalError, ioError } from '../errors.js';
import { DEFAULT_MAX_LINE_BYTES, Journal } from '../storage/journal.js';
import { canonicalPayload } from '../engine/record-codec.js';
import { DEFAULT_MAX_RECORD_BYTES, requireRecordBytes } from '../engine/record-parts.js';
import type { WarningHandler } from '../engine/warnings.js';
import type { RedisLocation } from '../storage/redis/redis-location.js';
import { SessionEventTypes, reviveSession, reviveTurn } from '../sessions/session-events.js';
import { SessionFold } from '../sessions/session-fold.js';
import { portableSession, type PortableSession } from './export.js';
import { importedSessionId } from './import-ids.js';

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

/**
 * A part of a v1 session left out while the session itself is imported: a
 * turn (`turn` set) or a field (`field` set: `turns` that is not an array,
 * `codexConversationId` that is not a string).
 */
export interface ImportPartSkip {
  /** Position of the session in the `sessions` array, from 0. */
  index: number;
  /** The session's id in the file. */
  id: string;
  /** Position of the turn in the session's `turns`, from 0. */
  turn?: number;
  field?: string;
  /** INVALID_DATE (a turn timestamp) or INVALID_PAYLOAD (a wrong type). */
  code: string;
  reason: string;
}

/** A session whose id in the file is outside codex-mcp-server's rule, and the id it is imported under (see importedSessionId). */
export interface ImportIdMapping {
  /** Position in the `sessions` array (v1) or among the keys (flat), from 0. */
  index: number;
  from: string;
  to: string;
}

export interface ImportOptions {
  /** The store; created (0700) when missing. Exactly one of `dir` and `redis`. */
  dir?: string;
  /** A store on Redis instead (created when missing; a store of another kind is refused, STORE_KIND_MISMATCH). */
  redis?: RedisLocation;
  /** The file to import; also names it in warnings and in the result. */
  file: string;
  /** The file's content when it is already read (stdin, a test); otherwise `file` is read. */
  text?: string;
  /** createdAt and lastAccessedAt of a flat file's sessions (default: the file's mtime; now when `text` is given). */
  mtimeMs?: number;
  /** Wait this long for the journal lock (default 30 s; a store on Redis has no writers' lock). */
  lockTimeoutMs?: number;
  /** The store's line length (default 1 MiB): a larger session is spread over several lines. */
  maxLineBytes?: number;
  /**
   * Import nothing when any entry, turn or field would be skipped: the file is
   * checked before the store is touched (not even created), and the result
   * says `refused`. Ids that are mapped are no loss and do not refuse.
   */
  strict?: boolean;
  /**
   * Largest session imported, as its journal record (UTF-8 bytes of its
   * JSON; default 64 MiB, the journal's maxRecordBytes, at most 256 MiB). A
   * file with a larger session throws RECORD_TOO_LARGE before the store is
   * touched: nothing is imported.
   */
  maxSessionBytes?: number;
  /** Called for each entry skipped (default: nothing; the result lists them). */
  onSkip?: (skip: ImportSkip & { file: string }) => void;
  /** Called for each turn or field left out of a session that is imported. */
  onPartSkip?: (skip: ImportPartSkip & { file: string }) => void;
  /** Called for each session imported under a mapped id. */
  onIdMapped?: (mapping: ImportIdMapping & { file: string; format: ImportFormat }) => void;
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
  /** Turns and fields left out of sessions that are imported (or already present). */
  partsSkipped: number;
  skippedParts: ImportPartSkip[];
  /** Sessions whose id was mapped to a valid one; mapped, not lost. */
  idsMapped: number;
  mappedIds: ImportIdMapping[];
  /** `strict` found something to skip: nothing was imported and the store was not touched. */
  refused: boolean;
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
  partSkips: ImportPartSkip[];
  mappings: ImportIdMapping[];
}

/**
 * Reads either format and validates every entry, as replay would: dates must
 * be ISO instants. What the file gets wrong is left out at the smallest
 * scale that keeps the rest true: a turn with an invalid timestamp or shape
 * is dropped from its session, which is imported (as PR #134's
 * FileSessionStorage loads it); an id outside codex-mcp-server's rule is
 * mapped (importedSessionId); a session without valid dates, or with a
 * forbidden key, is skipped. Throws ImportFileError when the document as a
 * whole is unusable.
 */
export function parseImportDocument(text: string, file: string, mtimeMs: number): ParsedImport {
  let doc: unknown;
  try {
    doc = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (err) {
    const cut = /end of JSON input|Unterminated/.test((err as Error).message) ? ' (the file ends inside the document: cut short by a copy that stopped or a full disk?)' : '';
    throw new ImportFileError(`${file} is not valid JSON: ${(err as Error).message}${cut}`);
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
const idForReport = (id: unknown): { id?: string } => (typeof id === 'string' ? { id: id.slice(0, 300) } : {});
const ID_RULE = '1-256 letters, digits, "-" or "_"';

function parseV1(entries: unknown[]): ParsedImport {
  const out: ParsedImport = { format: 'v1', total: entries.length, sessions: [], skips: [], partSkips: [], mappings: [] };
  const seen = new Map<string, number>();
  entries.forEach((entry, index) => {
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      out.skips.push({ index, code: 'INVALID_PAYLOAD', reason: `the entry is ${kindOf(entry)}, not a session object` });
      return;
    }
    const rawId = (entry as { id?: unknown }).id;
    const id = importedSessionId(rawId);
    if (id === undefined) {
      out.skips.push({ index, ...idForReport(rawId), code: 'INVALID_SESSION_ID', reason: `invalid session id ${JSON.stringify(rawId)?.slice(0, 80) ?? 'undefined'} (not a non-empty string)` });
      return;
    }
    const { fields, partSkips } = withoutBadParts(entry as Record<string, unknown>, index, rawId as string);
    const made = reviveSession({ ...fields, id });
    if ('code' in made) {
      out.skips.push({ index, id: (rawId as string).slice(0, 300), code: made.code, reason: made.message });
      return;
    }
    const session = made.revived;
    const first = seen.get(session.id);
    if (first !== undefined) {
      const mapped = id !== rawId ? ` (once mapped to ${JSON.stringify(id)})` : '';
      out.skips.push({ index, id: (rawId as string).slice(0, 300), code: 'DUPLICATE_ID', reason: `the same id as sessions[${first}]${mapped}, which is imported instead` });
      return;
    }
    seen.set(session.id, index);
    if (id !== rawId) out.mappings.push({ index, from: rawId as string, to: id });
    out.partSkips.push(...partSkips);
    out.sessions.push({ index, session: portableSession(session) });
  });
  return out;
}

/**
 * The entry's fields without the turns and fields that are invalid on their
 * own (listed), so that they cost only themselves, not the session. A
 * `codexConversationId` of null carries nothing and is dropped silently.
 */
function withoutBadParts(entry: Record<string, unknown>, index: number, id: string): { fields: Record<string, unknown>; partSkips: ImportPartSkip[] } {
  const fields = { ...entry };
  const partSkips: ImportPartSkip[] = [];
  const at = { index, id: id.slice(0, 300) };
  if (fields.turns !== undefined && !Array.isArray(fields.turns)) {
    partSkips.push({ ...at, field: 'turns', code: 'INVALID_PAYLOAD', reason: `turns is ${kindOf(fields.turns)}, not an array` });
    fields.turns = [];
  } else if (Array.isArray(fields.turns)) {
    fields.turns = fields.turns.filter((value, turn) => {
      const revived = reviveTurn(value);
      if (!('code' in revived)) return true;
      partSkips.push({ ...at, turn, code: revived.code, reason: revived.message });
      return false;
    });
  }
  if (fields.codexConversationId === null) {
    delete fields.codexConversationId;
  } else if (fields.codexConversationId !== undefined && typeof fields.codexConversationId !== 'string') {
    partSkips.push({ ...at, field: 'codexConversationId', code: 'INVALID_PAYLOAD', reason: `codexConversationId is ${kindOf(fields.codexConversationId)}, not a string` });
    delete fields.codexConversationId;
  }
  return { fields, partSkips };
}

function parseFlat(o: Record<string, string>, mtimeMs: number): ParsedImport {
  const keys = Object.keys(o);
  const out: ParsedImport = { format: 'flat', total: keys.length, sessions: [], skips: [], partSkips: [], mappings: [] };
  const seen = new Map<string, number>();
  const at = new Date(mtimeMs).toISOString();
  keys.forEach((key, index) => {
    const value = o[key]!;
    const id = importedSessionId(key);
    if (id === undefined) {
      out.skips.push({ index, key, code: 'INVALID_SESSION_ID', reason: `an empty key is no session id (${ID_RULE})` });
    } else if (value === '') {
      out.skips.push({ index, key: key.slice(0, 300), id: key.slice(0, 300), code: 'INVALID_PAYLOAD', reason: 'empty conversation id' });
    } else if (seen.has(id)) {
      out.skips.push({ index, key: key.slice(0, 300), code: 'DUPLICATE_ID', reason: `mapped to ${JSON.stringify(id)}, the id of key ${JSON.stringify(keys[seen.get(id)!]!.slice(0, 300))}, which is imported instead` });
    } else {
      seen.set(id, index);
      if (id !== key) out.mappings.push({ index, from: key, to: id });
      out.sessions.push({ index, session: { id, createdAt: at, lastAccessedAt: at, turns: [], codexConversationId: value } });
    }
  });
  return out;
}

/**
 * Imports sessions into a store as `session.import` records, each the whole
 * session. Idempotent: the ids to write are chosen under the journal lock
 * after catching up with every writer, and only ids the store does not have
 * are written (replay ignores an import of an id that exists, too), so
 * importing the same file twice adds nothing. Entries, turns and fields the
 * file gets wrong are skipped and counted, never fatal (unless `strict`:
 * then nothing is imported); a file that is not one of the formats throws
 * ImportFileError before the store is touched.
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
  const maxSessionBytes = requireRecordBytes('maxSessionBytes', options.maxSessionBytes ?? DEFAULT_MAX_RECORD_BYTES);
  refuseOversizeSessions(candidates, maxSessionBytes, options.file);
  skips.sort((a, b) => a.index - b.index);
  // Only what is said of sessions that go on to the store: a skipped one is reported once, as skipped.
  const skippedIndexes = new Set(skips.map((s) => s.index));
  const partSkips = parsed.partSkips.filter((p) => !skippedIndexes.has(p.index));
  const mappings = parsed.mappings.filter((m) => !skippedIndexes.has(m.index));
  // Reported in the file's order; for one entry, a mapping last (it is what the entry became).
  const reports = [
    ...skips.map((skip) => ({ index: skip.index, tell: () => options.onSkip?.({ file: options.file, ...skip }) })),
    ...partSkips.map((skip) => ({ index: skip.index, tell: () => options.onPartSkip?.({ file: options.file, ...skip }) })),
    ...mappings.map((mapping) => ({ index: mapping.index, tell: () => options.onIdMapped?.({ file: options.file, format: parsed.format, ...mapping }) })),
  ];
  for (const { tell } of reports.sort((a, b) => a.index - b.index)) tell();
  const result = (imported: number, alreadyPresent: number, refused: boolean): ImportResult => ({
    file: options.file,
    format: parsed.format,
    total: parsed.total,
    imported,
    alreadyPresent,
    skipped: skips.length,
    skippedItems: skips,
    partsSkipped: partSkips.length,
    skippedParts: partSkips,
    idsMapped: mappings.length,
    mappedIds: mappings,
    refused,
  });
  if (options.strict && (skips.length > 0 || partSkips.length > 0)) return result(0, 0, true);

  const fold = new SessionFold(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  const journalOptions = {
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
  };
  // On Redis the ids to write are decided after catching up too: appendDecided catches up first, and the append script refuses a commit whose head moved.
  const journal = options.redis && options.dir === undefined ? await Journal.open({ ...journalOptions, redis: options.redis, storeKind: fold.recordNamespace }) : Journal.openSync({ ...journalOptions, dir: requireImportDir(options) });
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
  return result(imported, alreadyPresent, false);
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

function requireImportDir(options: ImportOptions): string {
  if (options.redis !== undefined) throw new TypeError('give an import either dir or redis, not both');
  if (typeof options.dir !== 'string' || options.dir === '') throw new TypeError('an import needs dir (a store directory) or redis ({ url, prefix })');
  return options.dir;
}
