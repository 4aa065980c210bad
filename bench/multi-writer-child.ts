/**
 * One writer process of bench/multi-writer.ts (not a benchmark by itself).
 *
 *   node build/bench/multi-writer-child.js <storeDir> <clients> <durationMs> <latencyFile>
 *
 * Opens the shared store (fsync: true), creates one session per client, flushes,
 * prints {"ready":true}, waits for "go" on stdin, then runs `clients` async loops
 * of addTurn + await flush() for `durationMs`. Writes every time-to-acknowledgement
 * (ms, Float64 little-endian) to latencyFile and prints one JSON line of totals.
 */
import fs from 'node:fs';
import { SessionStore } from '../src/index.js';
import type { ConversationTurn, JournalWarning } from '../src/index.js';
import { Samples, addTurnLoop, rng, text } from './common.js';
import { waitForGo } from './peers/child-process.js';

async function main(): Promise<void> {
  const [dir, clientsArg, durationArg, latencyFile] = process.argv.slice(2);
  if (!dir || !clientsArg || !durationArg || !latencyFile) throw new Error('usage: multi-writer-child <dir> <clients> <durationMs> <latencyFile>');
  const clients = Number(clientsArg);
  const durationMs = Number(durationArg);
  const warnings: Record<string, number> = {};
  const onWarning = (w: JournalWarning): void => {
    warnings[w.code] = (warnings[w.code] ?? 0) + 1;
  };
  const random = rng(process.pid);
  const at = new Date();
  const turns: ConversationTurn[] = Array.from({ length: 256 }, () => ({ prompt: text(random, 16), response: text(random, 32), timestamp: at }));

  const store = SessionStore.openSync({ dir, fsync: true, maxSessions: 1000, onWarning, autoCompact: false });
  const ids = Array.from({ length: clients }, () => store.createSession());
  await store.flush();
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
  await waitForGo();

  const lat = new Samples();
  const { ops, ms, cpuMs } = await addTurnLoop(store, ids, turns, durationMs, lat);
  const seenSessions = store.listSessions().length;
  await store.close();
  const values = lat.values();
  fs.writeFileSync(latencyFile, Buffer.from(values.buffer, values.byteOffset, values.byteLength));
  process.stdout.write(`${JSON.stringify({ ops, ms, cpuMs, seenSessions, warnings })}\n`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
