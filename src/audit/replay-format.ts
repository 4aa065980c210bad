import type { JournalRecord } from '../engine/record-codec.js';
import { isEngineType, sessionOf, shortType } from './replay-filter.js';

/**
 * One event as `replay --ndjson` prints it: the envelope under readable
 * names, the session pulled out of the payload (null for engine records),
 * and the payload exactly as journaled. `ts` is normalized to UTC
 * (`toISOString`). The same shape for history and for --follow.
 */
export interface ReplayEvent {
  seq: number;
  ts: string;
  writer: string;
  type: string;
  session: string | null;
  payload: unknown;
}

export function toReplayEvent(record: JournalRecord): ReplayEvent {
  return { seq: record.seq, ts: new Date(record.time).toISOString(), writer: record.writer, type: record.type, session: sessionOf(record) ?? null, payload: record.payload };
}

/**
 * Control characters, C1 controls and bidirectional overrides would let a
 * journaled string rewrite the operator's terminal; they are shown escaped.
 */
const UNSAFE_CHARS = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

export function sanitize(text: string): string {
  return text.replace(UNSAFE_CHARS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The first `max` characters (code points, so no surrogate is cut), with an ellipsis when cut. */
export function clip(text: string, max: number): string {
  const chars = Array.from(text);
  return chars.length <= max ? text : `${chars.slice(0, max).join('')}…`;
}

export const SUMMARY_CHARS = 60;

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A short description of what the record did, for the human view. */
export function summarize(record: Pick<JournalRecord, 'type' | 'payload'>): string {
  const p = record.payload;
  const o = isObject(p) ? p : {};
  switch (record.type) {
    case 'session.create':
    case 'session.touch':
    case 'session.reset':
      return '';
    case 'session.turn': {
      const turn = isObject(o.turn) ? o.turn : {};
      return typeof turn.prompt === 'string' ? sanitize(JSON.stringify(clip(turn.prompt, SUMMARY_CHARS))) : '(turn without a prompt)';
    }
    case 'session.conversation':
      return typeof o.conversationId === 'string' ? sanitize(clip(o.conversationId, SUMMARY_CHARS)) : '(no conversation id)';
    case 'session.delete':
      return typeof o.reason === 'string' ? sanitize(clip(o.reason, SUMMARY_CHARS)) : 'deleted';
    case 'session.update': {
      const fields = isObject(o.data) ? Object.keys(o.data) : [];
      const unset = Array.isArray(o.unset) ? o.unset.filter((k): k is string => typeof k === 'string') : [];
      const parts = [];
      if (fields.length > 0) parts.push(`fields: ${fields.join(', ')}`);
      if (unset.length > 0) parts.push(`unset: ${unset.join(', ')}`);
      return sanitize(clip(parts.join('; '), SUMMARY_CHARS));
    }
    case 'session.import': {
      const session = isObject(o.session) ? o.session : {};
      const turns = Array.isArray(session.turns) ? session.turns.length : 0;
      return `imported, ${turns} turn${turns === 1 ? '' : 's'}`;
    }
    case 'journal.rotate':
      return typeof o.next === 'number' ? `next segment ${o.next}` : '(no next segment)';
    default:
      return sanitize(clip(JSON.stringify(p) ?? '', SUMMARY_CHARS));
  }
}

/** The event column: the short type for session events, the full type otherwise. */
export function eventLabel(type: string): string {
  return type.startsWith('session.') ? shortType(type) : type;
}

/** The colours of the human view (src/cli/terminal.ts decides when there are any, and supplies them). */
export interface Painter {
  dim(s: string): string;
  bold(s: string): string;
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  cyan(s: string): string;
}

/**
 * The human view: aligned columns time, writer, session, event, summary.
 * Records stream, so a column widens when a longer value arrives (it never
 * narrows); values are never cut.
 */
export class HumanFormatter {
  private widths = { writer: 12, session: 8, event: 12 };

  constructor(private readonly paint: Painter) {}

  format(record: JournalRecord): string {
    const time = new Date(record.time).toISOString();
    const writer = sanitize(record.writer);
    const session = sanitize(sessionOf(record) ?? '-');
    const event = sanitize(eventLabel(record.type));
    const summary = summarize(record);
    this.widths.writer = Math.max(this.widths.writer, writer.length);
    this.widths.session = Math.max(this.widths.session, session.length);
    this.widths.event = Math.max(this.widths.event, event.length);
    const p = this.paint;
    const cols = [
      p.dim(time),
      writer.padEnd(this.widths.writer),
      p.bold(session.padEnd(this.widths.session)),
      this.colourEvent(record.type, summary === '' ? event : event.padEnd(this.widths.event)),
    ];
    if (summary !== '') cols.push(summary);
    return cols.join('  ');
  }

  private colourEvent(type: string, text: string): string {
    const p = this.paint;
    if (isEngineType(type)) return p.dim(text);
    switch (type) {
      case 'session.create':
      case 'session.import':
        return p.green(text);
      case 'session.delete':
        return p.red(text);
      case 'session.update':
      case 'session.reset':
        return p.yellow(text);
      case 'session.turn':
      case 'session.conversation':
        return p.cyan(text);
      default:
        return text;
    }
  }
}
