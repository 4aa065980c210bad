import os from 'node:os';

/** The signals that ask a command to stop: Ctrl-C, kill(1)'s default, a closed terminal. */
export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * The stop signals as an AbortSignal, for a command that stops cleanly
 * (compact): the first one aborts, the rest are ignored (Ctrl-C reaches a
 * restarted command twice: see restart.ts). The exit code is then the
 * shell's for that signal, 128 + its number: 130 for SIGINT, 143 for SIGTERM.
 */
export class SignalAbort {
  received: NodeJS.Signals | undefined;
  private readonly controller = new AbortController();
  private readonly onSignal = (signal: NodeJS.Signals) => {
    if (this.received) return;
    this.received = signal;
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
