import { spawn } from 'node:child_process';
import os from 'node:os';
import { ExitCodes } from './output.js';

/**
 * The signals that ask a command to stop. Ctrl-C (and a closed terminal's
 * SIGHUP) reach the whole foreground process group, the restarted process
 * included; `kill PID`, systemd and timeout(1) reach only the process they
 * started. So each is passed on: the restarted process may hear one twice,
 * and stops once.
 */
const PASSED_ON = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Runs this command again in a child process with a V8 flag that cannot be
 * set at run time (see main.ts), without blocking: signals are passed on
 * while it runs. Resolves to its exit code, or 128 + the signal's number
 * when a signal ended it, as a shell reports it.
 */
export function runWithFlag(flag: string, script: string): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [flag, ...process.execArgv, script, ...process.argv.slice(2)], { stdio: 'inherit' });
    const passOn = (signal: NodeJS.Signals) => {
      child.kill(signal);
    };
    for (const signal of PASSED_ON) process.on(signal, passOn);
    const done = (code: number) => {
      for (const signal of PASSED_ON) process.off(signal, passOn);
      resolve(code);
    };
    child.once('error', (err) => {
      process.stderr.write(`session-journal: internal error: could not start ${process.execPath}: ${err.message}\n`);
      done(ExitCodes.INTERNAL);
    });
    child.once('exit', (code, signal) => done(code ?? 128 + (signal ? os.constants.signals[signal] : 0)));
  });
}
