/**
 * Lets the event loop run (I/O callbacks, the thread pool's completions,
 * setImmediate callbacks) before going on, without a timer: setImmediate and
 * setTimeout are what test frameworks fake (vitest's useFakeTimers,
 * @sinonjs/fake-timers), and a faked one never fires unless the test
 * advances its clock. A message to oneself on a MessagePort is delivered by
 * the real event loop, in the same poll phase as I/O.
 *
 * Two ports, taken in turn: a port delivers the messages posted while it
 * delivers (up to 1000) in the same callback, so yields that follow one
 * another on one port (a replay pausing every 64 KiB) would give the rest of
 * the loop a turn only every 1000th time. A message to the other port waits
 * for the next turn of the loop instead. A port holds the process open only
 * while a yield on it is pending.
 */
const fs = process.getBuiltinModule('node:fs');

// The global MessageChannel is node:worker_threads' own; not importing that module keeps it off a cold start (src/lazy.ts).

interface Port {
  channel: InstanceType<typeof MessageChannel>;
  waiting: Array<() => void>;
}

let ports: [Port, Port] | undefined;
let next = 0;

function makePort(): Port {
  const port: Port = { channel: new MessageChannel(), waiting: [] };
  port.channel.port1.on('message', () => {
    port.channel.port1.unref();
    for (const resolve of port.waiting.splice(0)) resolve();
  });
  port.channel.port1.unref();
  return port;
}

/**
 * A process's first yields go through the thread pool instead (a stat whose
 * answer is ignored): its callback is real I/O too. The first costs about
 * 0.7 ms at a cold start, where making the ports costs about 3 ms (loading
 * the messaging internals), so a short-lived process that commits once, or
 * replays a small journal, never makes them. A round trip through the pool
 * costs about 90 µs warm and a message about 5 µs, and waits for a free
 * pool thread (behind a user's long fs or crypto calls), so a process that
 * keeps yielding takes the ports from its POOL_YIELDS-th yield on.
 */
const POOL_YIELDS = 16;
let yields = 0;

export function yieldToEventLoop(): Promise<void> {
  if (yields < POOL_YIELDS) {
    yields++;
    return new Promise((resolve) => fs.stat('/', () => resolve()));
  }
  return new Promise((resolve) => {
    ports ??= [makePort(), makePort()];
    const port = ports[next]!;
    next ^= 1;
    if (port.waiting.push(resolve) === 1) {
      port.channel.port1.ref();
      port.channel.port2.postMessage(null);
    }
  });
}
