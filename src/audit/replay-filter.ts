import { ROTATE_EVENT, type JournalRecord } from '../engine/record-codec.js';

/**
 * Which records `session-journal replay` prints and `replayHistory` yields.
 * Every field is optional; a record passes when it passes all the given ones.
 */
export interface ReplayFilter {
  /** Session ids: the record's payload `id` is one of them. */
  sessions?: readonly string[];
  /** Event types, full (`session.turn`, `journal.rotate`) or short (`turn`, `rotate`). */
  types?: readonly string[];
  /** Writers, as `pid@host` or just `pid`. */
  writers?: readonly string[];
  /** Inclusive lower bound on the record's `ts`, epoch ms. */
  since?: number;
  /** Inclusive upper bound on the record's `ts`, epoch ms. */
  until?: number;
}

/** The short form of a type: what follows the namespace (`session.turn` -> `turn`). */
export function shortType(type: string): string {
  const dot = type.indexOf('.');
  return dot === -1 ? type : type.slice(dot + 1);
}

/** Engine records (`journal.*`): bookkeeping, hidden unless a type filter asks for them. */
export function isEngineType(type: string): boolean {
  return type === ROTATE_EVENT || type.startsWith('journal.');
}

/** The session a record concerns: its payload's `id` when that is a string. */
export function sessionOf(record: Pick<JournalRecord, 'payload'>): string | undefined {
  const p = record.payload;
  if (p === null || typeof p !== 'object' || Array.isArray(p)) return undefined;
  const id = (p as { id?: unknown }).id;
  return typeof id === 'string' ? id : undefined;
}

function typeMatches(wanted: string, type: string): boolean {
  return wanted === type || wanted === shortType(type);
}

function writerMatches(wanted: string, writer: string): boolean {
  if (wanted === writer) return true;
  if (wanted.includes('@')) return false;
  const at = writer.indexOf('@');
  return at !== -1 && writer.slice(0, at) === wanted;
}

/** A predicate for `filter`. */
export function recordMatcher(filter: ReplayFilter): (record: JournalRecord) => boolean {
  const { sessions, types, writers, since, until } = filter;
  return (record) => {
    if (types && types.length > 0) {
      if (!types.some((t) => typeMatches(t, record.type))) return false;
    } else if (isEngineType(record.type)) {
      return false;
    }
    if (since !== undefined && record.time < since) return false;
    if (until !== undefined && record.time > until) return false;
    if (writers && writers.length > 0 && !writers.some((w) => writerMatches(w, record.writer))) return false;
    if (sessions && sessions.length > 0) {
      const id = sessionOf(record);
      if (id === undefined || !sessions.includes(id)) return false;
    }
    return true;
  };
}
