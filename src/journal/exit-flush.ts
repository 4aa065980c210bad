/**
 * Open journals write what they still have queued when the process ends
 * normally: asynchronously on 'beforeExit' (the event loop drained), and
 * synchronously on 'exit' (process.exit was called). Signals that kill the
 * process are the host's to handle; a SIGKILL loses only unacknowledged entries.
 */
interface ExitFlushable {
  readonly pendingCount: number;
  flush(): Promise<void>;
  flushAtExit(): void;
}

const open = new Set<ExitFlushable>();
let hooked = false;

export function registerForExit(journal: ExitFlushable): void {
  open.add(journal);
  if (hooked) return;
  hooked = true;
  process.on('beforeExit', () => {
    for (const j of open) if (j.pendingCount > 0) j.flush().catch(() => undefined);
  });
  process.on('exit', () => {
    for (const j of open) j.flushAtExit();
  });
}

export function unregisterForExit(journal: ExitFlushable): void {
  open.delete(journal);
}
