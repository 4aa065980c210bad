/**
 * Lets the event loop run (I/O callbacks, the thread pool's completions)
 * before going on, without a timer: setImmediate and setTimeout are what
 * test frameworks fake (vitest's useFakeTimers, @sinonjs/fake-timers), and a
 * faked one never fires unless the test advances its clock. A message to
 * oneself on a MessagePort is delivered by the real event loop, in the same
 * poll phase as I/O. The port holds the process open only while a yield is
 * pending.
 */
// The global MessageChannel is node:worker_threads' own; not importing that module keeps it off a cold start (src/lazy.ts).

let channel: InstanceType<typeof MessageChannel> | undefined;
const waiting: Array<() => void> = [];

export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => {
    if (!channel) {
      channel = new MessageChannel();
      channel.port1.on('message', wake);
      channel.port1.unref();
    }
    if (waiting.push(resolve) === 1) {
      channel.port1.ref();
      channel.port2.postMessage(null);
    }
  });
}

function wake(): void {
  channel!.port1.unref();
  for (const resolve of waiting.splice(0)) resolve();
}
