/**
 * A process that holds a Redis connection, for test/redis/connection.test.ts:
 * does the process end by itself? `node redis-lifetime-child.js URL MODE`:
 *
 *   idle      connect, PING, print "ready", and do nothing more (no close)
 *   close     connect, PING, close, print "closed"
 *   inflight  connect, BLPOP on an empty key for 0.5 s, print "replied"
 *   down      connect, print "ready", wait until the connection is lost
 *             (the parent kills the server), print "down", do nothing more
 *
 * Every mode must end with the process exiting on its own, code 0.
 */
import { RedisConnection } from '../../src/storage/redis/connection.js';

const [url, mode] = process.argv.slice(2);
const conn = await RedisConnection.open({ url: url!, prefix: `lifetime:${process.pid}`, onWarning: () => undefined });
switch (mode) {
  case 'idle':
    await conn.command(['PING']);
    process.stdout.write('ready\n');
    break;
  case 'close':
    await conn.command(['PING']);
    await conn.close();
    process.stdout.write('closed\n');
    break;
  case 'inflight':
    await conn.command(['BLPOP', `{lifetime:${process.pid}}:nothing`, '0.5']);
    process.stdout.write('replied\n');
    break;
  case 'down': {
    process.stdout.write('ready\n');
    // Polling holds the process until the loss is seen; after that only the connection's own timers remain.
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (conn.isReady) return;
        clearInterval(poll);
        resolve();
      }, 10);
    });
    process.stdout.write('down\n');
    break;
  }
  default:
    throw new Error(`unknown mode ${mode}`);
}
