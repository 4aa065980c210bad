import os from 'node:os';

/** The signals that ask a command to stop: Ctrl-C, kill(1)'s default, a closed terminal. */
export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** The signal a SignalAbort of this process received: main.ts ends the process by it once the command returned. */
let received: NodeJS.Signals | undefined;

export function stoppedBySignal(): NodeJS.Signals | undefined {
  return received;
}

/**
 * Ends this process by `signal`, as if it had not been caught, once the
 * clean-up is done: its parent then sees the signal, not an exit code. A
 * shell reports 128 + its number (130, 143) all the same, but a script that
 * ran the command stops too on Ctrl-C (a shell goes on after a command that
 * merely exited 130), and systemd counts a SIGTERM death as a clean stop.
 */
export function endBySignal(signal: NodeJS.Signals): never {
  process.removeAllListeners(signal); // the default action again
  process.kill(process.pid, signal);
  // Not reached where the default action ends the process.
  process.exit(128 + os.constants.signals[signal]);
}

/**
 * The stop signals as an AbortSignal, for a command that stops cleanly
 * (compact): the first one aborts, the rest are ignored (Ctrl-C reaches a
 * restarted command twice: see restart.ts). The command returns the shell's
 * code for that signal, 128 + its number (130 for SIGINT, 143 for SIGTERM),
 * and main.ts then ends the process by the signal itself (endBySignal).
 */
export class SignalAbort {
  received: NodeJS.Signals | undefined;
  private readonly controller = new AbortController();
  private readonly onSignal = (signal: NodeJS.Signals) => {
    if (this.received) return;
    this.received = signal;
    received = signal;
    this.controller.abort(Object.assign(new Error(`stopped by ${signal}`), { name: 'AbortError', signal }));
  };

  constructor() {
    for (const signal of STOP_SIGNALS) process.on(signal, this.onSignal);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get exitCode(): number {
    return 128 + (this.received ? os.constants.signals[this.received] : 0);
  }

  /**
   * Gives the signals back. Not once one was received: the command is then
   * ending, and a repeated Ctrl-C must not kill it half-way through its
   * clean-up.
   */
  dispose(): void {
    if (this.received) return;
    for (const signal of STOP_SIGNALS) process.off(signal, this.onSignal);
  }
}
