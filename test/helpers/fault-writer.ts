/**
 * A child for the real-fault tests (test/faults/): it opens a SessionStore on
 * an explicit clock and writes numbered turns, one session per writer,
 * reporting on stdout (JSON lines, read by LineChild) exactly what is
 * acknowledged: "acked N" only after flush() resolved for turns 0..N. A flush
 * that fails (a full disk) is retried until it succeeds; nothing is acked
 * before. With `stopAtCommitWrite: K`, the process stops itself (SIGSTOP)
 * right before the K-th write of a commit into a segment, while it holds the
 * lock: the parent decides when it goes on (SIGCONT).
 *
 * In `read` mode it only reads, lock-free, until told "stop" on stdin, and
 * then reports the prompts it sees per session.
 */
import readline from 'node:readline';
import { installFsHook, setFsHook } from './crash-fs-hook.js';

export interface FaultWriterConfig {
  dir: string;
  name: string;
  mode: 'write' | 'read';
  /** Turns to write (write mode). */
  count?: number;
  /** Bytes of each turn's response. */
  payloadBytes?: number;
  /** A flush after every this many turns. */
  flushEvery?: number;
  /** The store's clock starts here (epoch ms) and moves 1 ms per turn. */
  clockStart: number;
  lockStaleMs?: number;
  stopAtCommitWrite?: number;
  /** The store's maxLineBytes: below payloadBytes, every turn is spread over several lines. */
  maxLineBytes?: number;
}

const config = JSON.parse(process.argv[2]!) as FaultWriterConfig;
const send = (message: Record<string, unknown>): void => void process.stdout.write(JSON.stringify(message) + '\n');

if (config.stopAtCommitWrite !== undefined) {
  installFsHook(config.dir);
  let writes = 0;
  setFsHook((call) => {
    if (call.name !== 'writeSync' || !/journal-\d+\.ndjson$/.test(call.target)) return undefined;
    return ++writes === config.stopAtCommitWrite ? 'stop' : undefined;
  });
}
const { SessionStore } = await import('../../src/index.js');

let now = config.clockStart;
const store = SessionStore.openSync({
  dir: config.dir,
  clock: () => now,
  ttlMs: 365 * 24 * 3_600_000,
  maxSessions: 10_000,
  autoCompact: false,
  lockStaleMs: config.lockStaleMs ?? 10_000,
  lockTimeoutMs: 60_000,
  ...(config.maxLineBytes !== undefined && { maxLineBytes: config.maxLineBytes }),
  onWarning: (w) => send({ type: 'warning', code: w.code, message: w.message }),
});
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function flushUntilDone(): Promise<void> {
  for (;;) {
    try {
      await store.flush();
      return;
    } catch (err) {
      send({ type: 'flush-failed', code: (err as { code?: string }).code, message: (err as Error).message });
      await pause(20);
    }
  }
}

if (config.mode === 'write') {
  const session = `${config.name}-session`;
  store.ensureSession(session);
  await flushUntilDone();
  const response = 'r'.repeat(config.payloadBytes ?? 200);
  const every = config.flushEvery ?? 1;
  const count = config.count ?? 100;
  for (let i = 0; i < count; i++) {
    now++;
    store.addTurn(session, { prompt: `${config.name}:${i}`, response, timestamp: new Date(now) });
    if ((i + 1) % every === 0 || i === count - 1) {
      await flushUntilDone();
      send({ type: 'acked', upTo: i });
    }
  }
  const view: Record<string, string[]> = {};
  for (const s of store.listSessions()) view[s.id] = s.turns.map((t) => t.prompt);
  await store.close();
  send({ type: 'done', view });
} else {
  let stop = false;
  readline.createInterface({ input: process.stdin }).on('line', () => (stop = true));
  let reads = 0;
  while (!stop) {
    store.listSessions();
    reads++;
    await pause(2);
  }
  const view: Record<string, string[]> = {};
  for (const s of store.listSessions()) view[s.id] = s.turns.map((t) => t.prompt);
  send({ type: 'view', reads, view });
  await store.close();
}
