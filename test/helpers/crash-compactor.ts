/**
 * A compactor child for the compaction crash tests. argv[2] is a JSON
 * CrashCompactorConfig. Replies on stdout, one JSON document a line:
 *
 *   {"type":"ready"}                 library loaded (and, with waitForGo, waiting
 *                                    for any line on stdin before starting)
 *   {"type":"step","step":S}         after each protocol step (onStep)
 *   {"type":"done","result":R,"calls":[...]}   compaction finished
 *   {"type":"error","code":C,"causeCode":CC,"message":M}
 *
 * With killAtStep it SIGKILLs itself inside onStep(killAtStep); with
 * killAtCall = k it SIGKILLs itself just before the k-th file-system call
 * (counted from the start of the compaction, see crash-fs-hook.ts) runs.
 */
import readline from 'node:readline';
import { installFsHook, setFsHook, type FsCall } from './crash-fs-hook.js';

export interface CrashCompactorConfig {
  dir: string;
  ttlMs: number;
  maxSessions: number;
  /** Retention clock: a documented "now" (fixed for the whole compaction), never the wall clock. */
  nowMs: number;
  lockTimeoutMs?: number;
  killAtStep?: string;
  killAtCall?: number;
  /** Report every counted file-system call in `done`. */
  countCalls?: boolean;
  waitForGo?: boolean;
}

const config = JSON.parse(process.argv[2] ?? '{}') as CrashCompactorConfig;
const reply = (message: Record<string, unknown>) => process.stdout.write(JSON.stringify(message) + '\n');

// The hook goes in before the library is loaded (see crash-fs-hook.ts).
installFsHook(config.dir);
const { compactSessions } = await import('../../src/index.js');
reply({ type: 'ready' });
if (config.waitForGo) {
  await new Promise<void>((resolve) => {
    const lines = readline.createInterface({ input: process.stdin });
    lines.once('line', () => {
      lines.close();
      process.stdin.destroy(); // or it keeps the process alive
      resolve();
    });
  });
}

const calls: FsCall[] = [];
setFsHook((call) => {
  if (config.countCalls) calls.push({ ...call });
  return config.killAtCall !== undefined && call.n === config.killAtCall ? 'kill' : undefined;
});
try {
  const result = await compactSessions({
    dir: config.dir,
    ttlMs: config.ttlMs,
    maxSessions: config.maxSessions,
    lockTimeoutMs: config.lockTimeoutMs ?? 30_000,
    now: () => config.nowMs,
    onWarning: (w) => reply({ type: 'warning', code: w.code, message: w.message }),
    onStep: (step) => {
      reply({ type: 'step', step });
      if (step === config.killAtStep) {
        process.kill(process.pid, 'SIGKILL');
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
      }
    },
  });
  setFsHook(undefined);
  reply({ type: 'done', result, calls });
} catch (err) {
  setFsHook(undefined);
  const e = err as Error & { code?: string; cause?: { code?: string } };
  reply({ type: 'error', code: e.code, causeCode: e.cause?.code, message: e.message, stack: e.stack });
  process.exitCode = 1;
}
