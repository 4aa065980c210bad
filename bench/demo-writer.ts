/**
 * One writer process of `npm run demo`. Protocol on stdin/stdout, one JSON
 * line each: it prints {"ready":...} once the store is open, waits for "go",
 * then appends turns in bursts (shared and own sessions) until the deadline,
 * printing {"acked":N} after every `await store.flush()` (N turns durable so
 * far), and {"done":N} at the end.
 *
 * argv: <store dir> <writer name> <seconds>
 */
import readline from 'node:readline';
import { SessionStore } from '../src/index.js';

const [dir, writer, secondsArg] = process.argv.slice(2);
if (!dir || !writer) {
  process.stderr.write('usage: demo-writer <store dir> <writer name> [seconds]\n');
  process.exit(2);
}
const seconds = Number(secondsArg ?? 6);
const say = (message: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(message)}\n`);

const store = SessionStore.openSync({ dir, fsync: true }); // durable: every ack is after fdatasync
const sessions = ['shared-1', 'shared-2', `own-${writer}`];
for (const id of sessions) store.ensureSession(id);
await store.flush();
say({ ready: true, pid: process.pid });

const lines = readline.createInterface({ input: process.stdin });
await new Promise<void>((resolve) => {
  lines.on('line', (line) => {
    if (line.trim() === 'go') resolve();
  });
});

const deadline = Date.now() + seconds * 1000;
let written = 0;
while (Date.now() < deadline) {
  const burst = 1 + Math.floor(Math.random() * 8);
  for (let k = 0; k < burst; k++) {
    const id = sessions[written % sessions.length]!;
    store.addTurn(id, { prompt: `${writer}:${written}`, response: `response ${written} from ${writer}`, timestamp: new Date() });
    written++;
    if (written % 97 === 0) store.setCodexConversationId(`own-${writer}`, `conv-${writer}-${written}`);
  }
  await store.flush();
  say({ acked: written });
}
await store.close();
say({ done: written });
lines.close();
