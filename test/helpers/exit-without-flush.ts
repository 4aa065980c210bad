/**
 * Child process for the exit-flush test: opens the store given as argv[2],
 * queues mutations (an urgent one and a deferred access-time refresh), prints
 * the created session id on stdout, and calls process.exit(0) at once, without
 * flush() or close() and before any setImmediate could run a commit.
 *
 * Usage: node exit-without-flush.js <storeDir> <epochMs>
 */
import { SessionStore } from '../../src/index.js';

const [dir, startArg] = process.argv.slice(2);
if (!dir || !startArg) {
  process.stderr.write('usage: exit-without-flush <storeDir> <epochMs>\n');
  process.exit(2);
}
let now = Number(startArg);
const store = SessionStore.openSync({ dir, clock: () => now });
store.ensureSession('exit-session');
store.addTurn('exit-session', { prompt: 'queued at exit', response: 'still written', timestamp: new Date(now) });
store.setCodexConversationId('exit-session', 'conv-exit');
const created = store.createSession();
now += 5000;
store.getSession('exit-session'); // a deferred touch: would otherwise wait for touchFlushMs
process.stdout.write(`${JSON.stringify({ created, pending: (store as unknown as { journal?: { pendingCount?: number } }).journal?.pendingCount })}\n`);
process.exit(0);
