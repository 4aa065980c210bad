/**
 * A KeyValueStore child process for test/kv/ (JSON lines on stdin/stdout,
 * driven through LineChild of crash-procs.ts). Commands, one per line:
 *
 *   {"op":"open","dir":D,"clockMs":T,"lockStaleMs":S?}   -> {"type":"opened","pid":P}
 *        ("redis":{"url":U,"prefix":P} instead of "dir": a store on Redis, opened with the async open)
 *   {"op":"set","prefix":K,"count":N,"flushEvery":F}
 *        sets K-0 .. K-(N-1) to {"by":K,"i":i}; after every F sets (and the
 *        last) awaits flush() and answers {"type":"acked","upTo":i}; then
 *        {"type":"done","count":N}
 *   {"op":"close"}                      -> {"type":"closed"}, then exits
 *
 * "acked" is sent only after flush() resolved: the parent knows exactly what
 * is durable when it SIGKILLs this process.
 */
import readline from 'node:readline';
import { KeyValueStore } from '../../src/index.js';

let store: KeyValueStore | undefined;
const send = (m: Record<string, unknown>) => process.stdout.write(JSON.stringify(m) + '\n');

async function run(c: Record<string, unknown>): Promise<void> {
  switch (c.op) {
    case 'open':
      {
        const options = {
          clock: () => Number(c.clockMs),
          lockTimeoutMs: 30_000,
          ...(c.lockStaleMs !== undefined && { lockStaleMs: Number(c.lockStaleMs) }),
          autoCompact: false as const,
          onWarning: (w: { code: string; message: string }) => send({ type: 'warning', code: w.code, message: w.message }),
        };
        const redis = c.redis as { url: string; prefix: string } | undefined;
        store = redis ? await KeyValueStore.open({ redis, ...options }) : KeyValueStore.openSync({ dir: String(c.dir), ...options });
      }
      send({ type: 'opened', pid: process.pid });
      return;
    case 'set': {
      const s = store!;
      const count = Number(c.count);
      const every = Number(c.flushEvery);
      for (let i = 0; i < count; i++) {
        s.set(`${String(c.prefix)}-${i}`, { by: c.prefix, i });
        if ((i + 1) % every === 0 || i === count - 1) {
          await s.flush();
          send({ type: 'acked', upTo: i });
        }
      }
      send({ type: 'done', count });
      return;
    }
    case 'close':
      await store?.close();
      send({ type: 'closed' });
      process.exit(0);
  }
}

let chain = Promise.resolve();
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() === '') return;
  const command = JSON.parse(line) as Record<string, unknown>;
  chain = chain
    .then(() => run(command))
    .catch((err: Error) => {
      send({ type: 'error', message: err.message, stack: err.stack });
      process.exit(1);
    });
});
