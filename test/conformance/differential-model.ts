/**
 * The codex differential's model (differential.test.ts runs it): random
 * operations built twice, once for codex-mcp-server's
 * InMemorySessionStorage and once for SessionStore, and the normal form
 * both sides' results and session maps are compared in. Moved from
 * test/differential.test.ts.
 */
import { randomUUID } from 'node:crypto';
import type { ExecutionContext } from 'ava';
import type { InMemorySessionStorage } from 'codex-mcp-server/dist/session/storage.js';
import type { ConversationTurn, SessionData, SessionStore } from '../../src/index.js';
import type { FakeClock } from '../helpers/fake-clock.js';
import type { Backend, Location } from './backends.js';

export const TTL_MS = 10_000;
export const MAX_SESSIONS = 5;
export const START = Date.UTC(2023, 10, 14, 22, 13, 20); // far from the real clock on purpose
export const OPS_PER_SEQUENCE = 400;
export const SEEDS = [1, 2, 3, 42, 1337, 20_251_122, 0xdeadbeef, 987_654_321];

/** Valid ids shared by both sides (ensureSession creates them), including names that are Object.prototype keys. */
export const POOL_IDS = ['alpha', 'beta', 'gamma-1', 'x_Y-z', '__proto__', 'constructor', 'A'.repeat(256)];
/** Rejected by ensureSession; harmless (unknown) everywhere else. */
export const INVALID_IDS = ['', 'bad id!', 'A'.repeat(257), 'a/b', '../etc', 'é', 'a.b', 'a\nb'];
/** Valid but never created. */
export const UNKNOWN_IDS = ['nobody', randomUUID()];

export type Rng = () => number;

export interface Harness {
  t: ExecutionContext;
  seed: number;
  rng: Rng;
  clock: FakeClock;
  mem: InMemorySessionStorage;
  /** Index 0 acts alone; with two stores, steps alternate between them. */
  stores: SessionStore[];
  backend: Backend;
  at: Location;
  onWarning: (w: unknown) => void;
  warnings: unknown[];
  /** Ids by creation order, per side. */
  memIds: string[];
  storeIds: string[];
  memToCanon: Map<string, string>;
  storeToCanon: Map<string, string>;
  log: string[];
  /** Include updates with `codexConversationId: undefined` (a JSON round-trip hazard). */
  undefinedUpdates: boolean;
  /** Close and reopen the store now and then in the middle of a sequence. */
  midReopen: boolean;
}

// ---- random helpers --------------------------------------------------------

export const int = (rng: Rng, lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1));
export const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)]!;

export const TEXT_BITS = ['hello', 'wörld', '"quoted"', 'line\nbreak', 'tab\t', '😀', '{"json":1}', '\\', ' ', 'ü'];
export function randomText(rng: Rng): string {
  let s = '';
  const n = int(rng, 0, 4);
  for (let i = 0; i < n; i++) s += pick(rng, TEXT_BITS);
  return s;
}

// ---- operations ------------------------------------------------------------

/** A target id: [id on the InMemory side, id on the store side, description]. */
export type Target = [string, string, string];

export function pickTarget(h: Harness): Target {
  const r = h.rng();
  if (r < 0.45 && h.memIds.length > 0) {
    const i = int(h.rng, 0, h.memIds.length - 1);
    return [h.memIds[i]!, h.storeIds[i]!, `created#${i}`];
  }
  if (r < 0.85) {
    const id = pick(h.rng, POOL_IDS);
    return [id, id, id.length > 20 ? `${id.slice(0, 8)}...(${id.length})` : id];
  }
  if (r < 0.93) {
    const id = pick(h.rng, UNKNOWN_IDS);
    return [id, id, `unknown:${id.slice(0, 8)}`];
  }
  const id = pick(h.rng, INVALID_IDS);
  return [id, id, `invalid:${JSON.stringify(id.slice(0, 12))}`];
}

/** One description of a turn, built twice so the two sides never share objects. */
export function turnSpec(h: Harness): () => ConversationTurn {
  const prompt = randomText(h.rng);
  const response = randomText(h.rng);
  const ts = h.clock.now - int(h.rng, 0, 5000);
  return () => ({ prompt, response, timestamp: new Date(ts) });
}

/** An update's data, built twice (one per side). Only JSON-faithful values, plus `undefined` when asked. */
export function updateSpec(h: Harness): [() => Partial<SessionData>, string] {
  const makers: Array<[string, () => unknown]> = [];
  const keys = new Set<string>();
  const n = int(h.rng, 1, 3);
  for (let i = 0; i < n; i++) {
    const r = h.rng();
    if (r < (h.undefinedUpdates ? 0.5 : 0.25)) {
      if (h.undefinedUpdates && h.rng() < 0.5) {
        makers.push(['codexConversationId', () => undefined]);
      } else {
        const v = `conv-${int(h.rng, 0, 9)}`;
        makers.push(['codexConversationId', () => v]);
      }
    } else if (r < 0.35) {
      const ms = h.clock.now - int(h.rng, 0, 50_000);
      makers.push(['createdAt', () => new Date(ms)]);
    } else if (r < 0.42) {
      const ms = h.clock.now - int(h.rng, 0, 50_000);
      makers.push(['lastAccessedAt', () => new Date(ms)]);
    } else if (r < 0.55) {
      const specs = Array.from({ length: int(h.rng, 0, 2) }, () => turnSpec(h));
      makers.push(['turns', () => specs.map((make) => make())]);
    } else if (r < 0.65) {
      const v = randomText(h.rng);
      makers.push(['model', () => v]);
    } else if (r < 0.73) {
      const v = int(h.rng, -1000, 1000) / 8;
      makers.push(['count', () => v]);
    } else if (r < 0.8) {
      const v = h.rng() < 0.5;
      makers.push(['flag', () => v]);
    } else if (r < 0.9) {
      const v = { a: [int(h.rng, 0, 9), randomText(h.rng), null], b: { c: h.rng() < 0.5 } };
      makers.push(['meta', () => structuredClone(v)]);
    } else {
      makers.push(['note', () => null]);
    }
  }
  const make = (): Partial<SessionData> => {
    const data: Record<string, unknown> = {};
    for (const [key, value] of makers) data[key] = value();
    return data as Partial<SessionData>;
  };
  for (const [key] of makers) keys.add(key);
  return [make, [...keys].join(',')];
}

export type Outcome = { threw: false; value: unknown } | { threw: true; error: unknown };

export function attempt(fn: () => unknown): Outcome {
  try {
    return { threw: false, value: fn() };
  } catch (error) {
    return { threw: true, error };
  }
}

// ---- normalization -----------------------------------------------------------

/** Dates to epoch ms, undefined-valued keys dropped (so `codexConversationId: undefined` equals a missing key), keys sorted. */
export function plain(value: unknown): unknown {
  if (value instanceof Date) return { $date: value.getTime() };
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = plain(v);
    }
    return out;
  }
  return value;
}

export function canon(ids: Map<string, string>, id: unknown): unknown {
  return typeof id === 'string' ? (ids.get(id) ?? id) : id;
}

export function normSession(ids: Map<string, string>, s: SessionData | undefined): unknown {
  if (s === undefined) return undefined;
  const out = plain(s) as Record<string, unknown>;
  out.id = canon(ids, s.id);
  return out;
}

export function normOutcome(ids: Map<string, string>, kind: string, o: Outcome): unknown {
  if (o.threw) return { threw: true };
  switch (kind) {
    case 'getSession':
      return { value: normSession(ids, o.value as SessionData | undefined) };
    case 'listSessions':
      return { value: (o.value as SessionData[]).map((s) => normSession(ids, s)) };
    case 'createSession':
      return { value: 'new-id' };
    default:
      return { value: plain(o.value) };
  }
}

/** The whole session map, in insertion order (it decides LRU ties). */
export function memState(h: Harness): unknown {
  const sessions = (h.mem as unknown as { sessions: Map<string, SessionData> }).sessions;
  return [...sessions].map(([key, s]) => [canon(h.memToCanon, key), normSession(h.memToCanon, s)]);
}

export function storeState(h: Harness, store: SessionStore): unknown {
  const sessions = (store as unknown as { view?: { sessions?: Map<string, SessionData> } }).view?.sessions;
  if (!(sessions instanceof Map)) return undefined;
  return [...sessions].map(([key, s]) => [canon(h.storeToCanon, key), normSession(h.storeToCanon, s)]);
}

