import { once } from 'node:events';
import type { Transform, Writable } from 'node:stream';
import ndjson from 'ndjson';
import { ExitCodes } from './output.js';

/** A reader that went away (`| head`): not an error of ours. */
const isClosedReader = (err: NodeJS.ErrnoException) => err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED';

/**
 * For every command: a closed reader on stdout (`session-journal stats | head -1`)
 * is ignored instead of crashing the process with an unhandled 'error'. A
 * command that streams uses a StdoutSink, which also stops writing; any other
 * failure of stdout is left to that sink, or, without one, thrown as before.
 */
export function closedStdoutIsQuiet(stdout: Writable): void {
  stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (!isClosedReader(err) && stdout.listenerCount('error') === 1) throw err;
  });
}

/**
 * stdout, with a closed reader (EPIPE: `| head`) turned into a quiet stop.
 * With `machine`, objects go through the ndjson package's stringify stream.
 */
export class StdoutSink {
  closed = false;
  private failure: Error | undefined;
  private readonly serializer: Transform | undefined;
  private readonly closedPromise: Promise<void>;
  private markClosed!: () => void;
  private readonly closeListeners: (() => void)[] = [];

  constructor(
    private readonly stdout: Writable,
    machine: boolean,
  ) {
    this.closedPromise = new Promise((resolve) => (this.markClosed = resolve));
    stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (!isClosedReader(err)) this.failure ??= err;
      this.close();
    });
    if (machine) {
      this.serializer = ndjson.stringify();
      this.serializer.pipe(stdout, { end: false });
    }
  }

  onClose(listener: () => void): void {
    this.closeListeners.push(listener);
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.serializer?.unpipe(this.stdout);
    this.markClosed();
    for (const listener of this.closeListeners) listener();
  }

  async write(chunk: string | object): Promise<void> {
    if (this.closed) return;
    const target = this.serializer ?? this.stdout;
    if (!target.write(chunk)) await Promise.race([once(target, 'drain'), this.closedPromise]);
  }

  /** Waits until everything written reached stdout (or the reader went away). */
  async end(): Promise<void> {
    if (this.serializer && !this.closed) {
      const ended = once(this.serializer, 'end');
      this.serializer.end();
      await Promise.race([ended, this.closedPromise]);
    }
    if (!this.closed && this.stdout.writableNeedDrain) await Promise.race([once(this.stdout, 'drain'), this.closedPromise]);
  }

  /**
   * 0, or 4 after saying why on stderr when stdout failed for another reason
   * than a closed reader; `command` names who failed, as reportError does.
   */
  exitCode(stderr: Writable, command: string): number {
    if (!this.failure) return ExitCodes.OK;
    const code = (this.failure as NodeJS.ErrnoException).code ?? this.failure.message;
    stderr.write(`session-journal ${command}: IO_ERROR: writing to stdout failed: ${code}\nhint: check where stdout goes (disk full, a closed terminal)\n`);
    return ExitCodes.STORE_ERROR;
  }
}
