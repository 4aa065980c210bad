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
/** Journals whose beforeExit flush failed: trying again would keep the process alive forever. */
const failedBeforeExit = new WeakSet<ExitFlushable>();
let hooked = false;

export function registerForExit(journal: ExitFlushable): void {
  open.add(journal);
  if (hooked) return;
  hooked = true;
  process.on('beforeExit', () => {
    for (const j of open) {
      if (j.pendingCount === 0 || failedBeforeExit.has(j)) continue;
      j.flush().catch(() => failedBeforeExit.add(j)); // the exit hook reports what stays unwritten
    }
  });
  process.on('exit', () => {
    for (const j of open) j.flushAtExit();
  });
}

export function unregisterForExit(journal: ExitFlushable): void {
  open.delete(journal);
}
