/**
 * SIGINT/SIGTERM (or a closed stdout) end --follow; listening from the start,
 * so a Ctrl-C during the history also exits 0. The sleep is interruptible so
 * that a stop does not wait out a poll interval.
 */
export class Stopper {
  stopped = false;
  private wake: (() => void) | undefined;
  private readonly onSignal = () => this.stop();

  constructor() {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  /** Sleeps `ms`, or less when stopped meanwhile. */
  sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  /** Gives the signals back: the process must still die of a SIGINT after the command. */
  dispose(): void {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }
}
