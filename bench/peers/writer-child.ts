/**
 * One writer process of bench/peers-c-multi-process.ts (not a benchmark by itself).
 *
 *   node build/bench/peers/writer-child.js <kind> <path> <clients> <durationMs>
 *
 * Opens the shared store of peer <kind>, creates one session per client,
 * prints {"ready":true}, waits for "go" on stdin, runs `clients` async
 * loops of addTurn + await flush() with realistic turns, closes the store
 * and prints {ops, ms, cpuMs, acked: {sessionId: turns acknowledged}}.
 */
import { addTurnLoop } from '../common.js';
import { realisticTurns } from './dataset.js';
import { isPeerKind, peerModule } from './peer.js';
import { waitForGo } from './child-process.js';

async function main(): Promise<void> {
  const [kind, path, clientsArg, durationArg] = process.argv.slice(2);
  if (!isPeerKind(kind) || !path || !clientsArg || !durationArg) throw new Error('usage: writer-child <kind> <path> <clients> <durationMs>');
  const turns = realisticTurns(256, process.pid);
  const store = await (await peerModule(kind)).open(path);
  const ids = Array.from({ length: Number(clientsArg) }, () => store.createSession());
  await store.flush();
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
  await waitForGo();
  const { ops, ms, cpuMs, perClient } = await addTurnLoop(store, ids, turns, Number(durationArg));
  await store.close();
  process.stdout.write(`${JSON.stringify({ ops, ms, cpuMs, acked: Object.fromEntries(ids.map((id, i) => [id, perClient[i]])) })}\n`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
