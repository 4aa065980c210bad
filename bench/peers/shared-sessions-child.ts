/**
 * One host of bench/redis-backends.ts's multi-process workload (not a
 * benchmark by itself).
 *
 *   node build/bench/peers/shared-sessions-child.js <kind> <place JSON> <proc> <clients> <session ids JSON> <durationMs>
 *
 * Opens backend <kind> at <place>, prints {"ready":true}, waits for "go" on
 * stdin, runs `clients` clients (client c on session ids[c % ids.length]),
 * closes, and prints its LoopReport.
 */
import { waitForGo } from './child-process.js';
import { realisticTurns } from './dataset.js';
import { clientLoop, isBackendKind, openBackend, type Place } from './shared-sessions.js';

async function main(): Promise<void> {
  const [kind, placeArg, procArg, clientsArg, idsArg, durationArg] = process.argv.slice(2);
  if (!isBackendKind(kind) || !placeArg || !procArg || !clientsArg || !idsArg || !durationArg) throw new Error('usage: shared-sessions-child <kind> <place JSON> <proc> <clients> <session ids JSON> <durationMs>');
  const place = JSON.parse(placeArg) as Place;
  const ids = JSON.parse(idsArg) as string[];
  const turns = realisticTurns(256, process.pid);
  const backend = await openBackend(kind, place);
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
  await waitForGo();
  const report = await clientLoop(backend, Number(procArg), Number(clientsArg), (c) => ids[c % ids.length]!, turns, Number(durationArg));
  await backend.close();
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
