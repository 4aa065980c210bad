/**
 * Parent-side helpers of the real-fault tests (test/faults/): fault-writer
 * children, what each has acknowledged, and a fresh replay to hold them to.
 */
import { SessionStore } from '../../src/index.js';
import { LineChild } from './crash-procs.js';
import type { FaultWriterConfig } from './fault-writer.js';

/** Retention that removes nothing, for the store and for `compact`: these tests are about faults, not time. */
export const KEEP_ALL_MS = 365 * 24 * 3_600_000;
export const KEEP_ALL_ARGS = ['--ttl', `${KEEP_ALL_MS}ms`, '--max-sessions', '10000'];

/** A fault-writer.js child; `wrapper` runs its node (e.g. under faketime). */
export const spawnFaultChild = (config: FaultWriterConfig, wrapper: string[] = []): LineChild => new LineChild(config.name, 'fault-writer.js', [JSON.stringify(config)], wrapper);

/** The highest turn a child has reported acknowledged (-1 for none). */
export const ackedUpTo = (child: LineChild): number => Math.max(-1, ...child.messages.filter((m) => m.type === 'acked').map((m) => m.upTo as number));

/** The turns a fault writer named `name` acknowledged, in order: what a fresh replay must hold exactly once. */
export const expectedPrompts = (name: string, count: number): string[] => Array.from({ length: count }, (_, i) => `${name}:${i}`);

/** A fresh replay of the store: every session's turn prompts, in order. */
export async function replayPrompts(dir: string, now: number): Promise<Record<string, string[]>> {
  const store = SessionStore.openSync({ dir, ttlMs: KEEP_ALL_MS, maxSessions: 10_000, autoCompact: false, onWarning: () => undefined, clock: () => now });
  const out: Record<string, string[]> = {};
  for (const s of store.listSessions()) out[s.id] = s.turns.map((turn) => turn.prompt);
  await store.close();
  return out;
}
