/**
 * A compactor child for the Redis fault tests (test/redis-faults/): it runs
 * compactSessions({ redis }) once, or again and again until told to stop.
 * argv[2] is a JSON RedisCompactorConfig. Replies on stdout, one JSON
 * document a line (read by LineChild, crash-procs.ts):
 *
 *   {"type":"ready"}                       loaded (and, with waitForGo, waiting for a line on stdin)
 *   {"type":"step","step":S,"run":N}       after each protocol step (onStep)
 *   {"type":"done","result":R,"run":N}     a compaction finished
 *   {"type":"error","code":C,"message":M,"run":N}
 *   {"type":"warning","code":C,"message":M}
 *   {"type":"stopped","runs":N}            loop mode, after "stop" on stdin
 *
 * killAtStep: it SIGKILLs itself inside onStep(killAtStep). stopAtStep: it
 * SIGSTOPs itself there (the parent decides when it goes on, with SIGCONT).
 */
import readline from 'node:readline';
import type { RedisLocation } from '../../src/storage/redis/redis-location.js';
import { clockOf, type ChildClock } from './child-clock.js';

export interface RedisCompactorConfig {
  redis: RedisLocation;
  ttlMs: number;
  maxSessions: number;
  /** Retention's clock: a time line from a documented "now" (child-clock.ts). */
  clock: ChildClock;
  lockTimeoutMs?: number;
  lockTtlMs?: number;
  killAtStep?: string;
  stopAtStep?: string;
  /** Compact until "stop" arrives on stdin (each run reports done or error). */
  loop?: boolean;
  waitForGo?: boolean;
}

const config = JSON.parse(process.argv[2] ?? '{}') as RedisCompactorConfig;
const reply = (message: Record<string, unknown>) => process.stdout.write(JSON.stringify(message) + '\n');
const { compactSessions } = await import('../../src/index.js');

let stopRequested = false;
let goSeen: () => void = () => undefined;
const go = new Promise<void>((resolve) => (goSeen = resolve));
const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line.includes('stop')) stopRequested = true;
  goSeen();
});
process.stdin.on('end', () => (stopRequested = true)); // the parent went away
reply({ type: 'ready' });
if (config.waitForGo) await go;

const now = clockOf(config.clock);
let runs = 0;
do {
  const run = ++runs;
  try {
    const result = await compactSessions({
      redis: config.redis,
      ttlMs: config.ttlMs,
      maxSessions: config.maxSessions,
      lockTimeoutMs: config.lockTimeoutMs ?? 30_000,
      ...(config.lockTtlMs !== undefined && { lockTtlMs: config.lockTtlMs }),
      now,
      onWarning: (w) => reply({ type: 'warning', code: w.code, message: w.message }),
      onStep: (step) => {
        reply({ type: 'step', step, run });
        if (step === config.killAtStep) {
          process.kill(process.pid, 'SIGKILL');
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
        }
        if (step === config.stopAtStep) process.kill(process.pid, 'SIGSTOP'); // goes on here after SIGCONT
      },
    });
    reply({ type: 'done', result, run });
  } catch (err) {
    const e = err as Error & { code?: string };
    reply({ type: 'error', code: e.code, message: e.message, stack: e.stack, run });
    if (!config.loop) process.exitCode = 1;
  }
  // Between runs: a turn of the event loop, so "stop" is read.
  await new Promise((resolve) => setImmediate(resolve));
} while (config.loop && !stopRequested);
if (config.loop) reply({ type: 'stopped', runs });
lines.close();
process.stdin.destroy();
