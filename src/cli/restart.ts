import { spawn } from 'node:child_process';
import { ExitCodes } from './output.js';

/**
 * The signals that ask a command to stop. Ctrl-C (and a closed terminal's
 * SIGHUP) reach the whole foreground process group, the restarted process
 * included; `kill PID`, systemd and timeout(1) reach only the process they
 * started. So each is passed on: the restarted process may hear one twice,
 * and stops once.
 */
const PASSED_ON = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** How the restarted process ended: its exit code, or the signal that ended it. */
export type Ended = { code: number; signal?: undefined } | { code?: undefined; signal: NodeJS.Signals };

/**
 * Runs this command again in a child process with V8 flags that cannot be
 * set at run time (see main.ts), without blocking: signals are passed on
 * while it runs. Resolves to how it ended, which main.ts passes on.
 */
export function runWithFlags(flags: readonly string[], script: string): Promise<Ended> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...flags, ...process.execArgv, script, ...process.argv.slice(2)], { stdio: 'inherit' });
    const passOn = (signal: NodeJS.Signals) => {
      child.kill(signal);
    };
    for (const signal of PASSED_ON) process.on(signal, passOn);
    const done = (ended: Ended) => {
      for (const signal of PASSED_ON) process.off(signal, passOn);
      resolve(ended);
    };
    child.once('error', (err) => {
      process.stderr.write(`session-journal: internal error: could not start ${process.execPath}: ${err.message}\n`);
      done({ code: ExitCodes.INTERNAL });
    });
    child.once('exit', (code, signal) => done(signal ? { signal } : { code: code ?? ExitCodes.INTERNAL }));
  });
}
