/**
 * The data every peer stores, the same bytes for each: realistic turns (a
 * prompt and a response of prose-like text, about 540 bytes together, with
 * an ISO timestamp) and prepared sessions in codex-mcp-server's v1 shape.
 */
import type { ConversationTurn } from '../../src/index.js';
import type { PortableSession } from '../../src/index.js';
import { rng, text } from '../common.js';

export const PROMPT_BYTES = 180;
export const RESPONSE_BYTES = 360;

/** `n` distinct turns, one second apart, seeded (the same for every peer in a run). */
export function realisticTurns(n: number, seed = 11, at = Date.now()): ConversationTurn[] {
  const random = rng(seed);
  return Array.from({ length: n }, (_, i) => ({ prompt: text(random, PROMPT_BYTES), response: text(random, RESPONSE_BYTES), timestamp: new Date(at - (n - i) * 1000) }));
}

/** Small turns for the many-small-entries store of the cold-process workload. */
export function smallTurns(n: number, seed = 12, at = Date.now()): ConversationTurn[] {
  const random = rng(seed);
  return Array.from({ length: n }, (_, i) => ({ prompt: text(random, 24), response: text(random, 48), timestamp: new Date(at - (n - i) * 1000) }));
}

/** The turn's own JSON, what a user would call its size. */
export const turnJsonBytes = (turn: ConversationTurn): number => Buffer.byteLength(JSON.stringify(turn));

/** Session ids of the prepared data sets, valid for every peer. */
export const preparedId = (i: number): string => `s-${String(i).padStart(6, '0')}`;

/**
 * `count` sessions of `turnsEach` turns, cycling through `pool`: what the
 * open and cold-process workloads load into each peer before timing.
 */
export function preparedSessions(count: number, turnsEach: number, pool: readonly ConversationTurn[], at = Date.now()): PortableSession[] {
  const iso = new Date(at).toISOString();
  let k = 0;
  return Array.from({ length: count }, (_, i) => ({
    id: preparedId(i),
    createdAt: iso,
    lastAccessedAt: iso,
    turns: Array.from({ length: turnsEach }, () => {
      const t = pool[k++ % pool.length]!;
      return { prompt: t.prompt, response: t.response, timestamp: t.timestamp.toISOString() };
    }),
  }));
}
