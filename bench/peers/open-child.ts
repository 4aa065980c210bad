/**
 * A short-lived process of the cold-process (D) and open (E) workloads (not
 * a benchmark by itself).
 *
 *   node build/bench/peers/open-child.js <kind> <path> <action> <sessionId>
 *
 * Loads only peer <kind>'s module, opens the store, reads one session
 * (`read`), and with `read-write` also adds one turn and waits until it is
 * durable, then closes. Prints {openMs, totalMs, turns, maxRssKb}: openMs is
 * import-free time to a ready, readable store (open + the one read).
 */
import { performance } from 'node:perf_hooks';
import { isPeerKind, peerModule } from './peer.js';

async function main(): Promise<void> {
  const [kind, path, action, id] = process.argv.slice(2);
  if (!isPeerKind(kind) || !path || (action !== 'read' && action !== 'read-write') || !id) throw new Error('usage: open-child <kind> <path> read|read-write <sessionId>');
  const peer = await peerModule(kind);
  const t0 = performance.now();
  const store = await peer.open(path, { readOnly: action === 'read' });
  const session = store.getSession(id);
  if (session === undefined) throw new Error(`session ${id} not found in ${path}`);
  const openMs = performance.now() - t0;
  if (action === 'read-write') {
    store.addTurn(id, { prompt: 'hook prompt', response: 'hook response', timestamp: new Date() });
    await store.flush();
  }
  await store.close();
  const totalMs = performance.now() - t0;
  process.stdout.write(`${JSON.stringify({ openMs, totalMs, turns: session.turns.length, maxRssKb: process.resourceUsage().maxRSS })}\n`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
