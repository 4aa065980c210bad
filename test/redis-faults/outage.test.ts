/**
 * A Redis outage under a writer process: first the server stops answering
 * (SIGSTOP: its connections stay open, nothing comes back), then it dies
 * (SIGKILL) and is started again later on its append-only file.
 *
 * - flush() rejects with REDIS_UNAVAILABLE within the command timeout (a
 *   stopped server used to hold it for ever: node-redis stops timing a
 *   command once it is written to the socket);
 * - reads keep answering from the process's view, which holds its own
 *   mutations, acknowledged or not;
 * - COMMIT_FAILED and REDIS_DISCONNECTED are warned collapsed (the 1st,
 *   2nd, 4th... time of each message), then RECOVERED;
 * - once the server is back, the engine's own retry commits what was
 *   queued (the writer does not flush meanwhile), then flush() resolves;
 * - every turn is stored exactly once, the commit that was in doubt when
 *   the server stopped included.
 */
import test from 'ava';
import { StoreChild } from '../helpers/child-protocol.js';
import { clockOf, timeline } from '../helpers/child-clock.js';
import { TEST_T0 } from '../helpers/fixture-now.js';
import { startRedisServer, uniquePrefix } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/redis-conn.js';
import { exactlyOnce, freshView, readStream, turnCounts } from '../helpers/redis-faults.js';

/** Short enough to wait for, long enough that a loaded machine's commands do not time out. */
const COMMAND_TIMEOUT_MS = 3000;
/** Turns appended without flush() while the server is gone: each starts a background commit that fails. */
const DOWN_TURNS = 12;

/** "N times in a row" of the last collapsed warning with `code`, 1 when it was warned once. */
function failuresInARow(warnings: readonly { code: string; message: string }[], code: string): number {
  const last = warnings.filter((w) => w.code === code).pop();
  const m = last && /(\d+) times in a row/.exec(last.message);
  return m ? Number(m[1]) : last ? 1 : 0;
}

test('an outage (SIGSTOP, then SIGKILL and a restart): flush() rejects REDIS_UNAVAILABLE, reads answer from the view, warnings collapse, the engine commits the queue once the server is back', async (t) => {
  t.timeout(90_000);
  const server = await startRedisServer(t);
  const prefix = uniquePrefix('outage');
  const clock = timeline(TEST_T0);
  const writer = new StoreChild('w');
  t.teardown(() => writer.kill());
  t.teardown(() => server.resume());
  await writer.request({ op: 'open', redis: { url: server.url, prefix, commandTimeoutMs: COMMAND_TIMEOUT_MS }, fsync: true, clock }, 'opened');
  await writer.request({ op: 'ops', ops: [{ k: 'ensure', id: 'a' }, { k: 'turn', id: 'a', prompt: 'before' }] }, 'flushed');

  // The server stops answering: the commit is sent, no reply comes.
  server.pause();
  const started = performance.now();
  const failed = await writer.request({ op: 'ops', ops: [{ k: 'turn', id: 'a', prompt: 'stopped-1' }], tolerateFlushFailure: true, noCatchUp: true }, 'flush-failed');
  const waitedMs = performance.now() - started;
  t.is(failed.code, 'REDIS_UNAVAILABLE');
  t.regex(failed.message, new RegExp(`no reply within ${COMMAND_TIMEOUT_MS} ms`));
  t.true(waitedMs < 8000, `flush() rejected after ${Math.round(waitedMs)} ms, bounded by the command timeout`);
  const during = await writer.request({ op: 'list' }, 'list');
  t.deepEqual(during.sessions.find((s) => s.id === 'a')?.turns.map((x) => x.prompt), ['before', 'stopped-1'], 'reads answer from the view, own unacknowledged turn included');

  // Then it dies with what its socket held (the commit in doubt never ran), and stays down for a while.
  await server.kill();
  for (let i = 0; i < DOWN_TURNS; i++) await writer.request({ op: 'ops', ops: [{ k: 'turn', id: 'a', prompt: `down-${i}` }], flush: false }, 'applied');
  // Long enough for the same failure to repeat (ECONNREFUSED), so that its warnings collapse.
  await waitFor('failed reconnections', () => failuresInARow(writer.warnings, 'REDIS_DISCONNECTED') >= 8, 30_000);
  const read = await writer.request({ op: 'get', id: 'a' }, 'session');
  t.is(read.session?.turns.length, 2 + DOWN_TURNS, 'still answering from the view');

  const restarted = performance.now();
  await server.restart();
  // No flush() from the writer: its engine retries by itself.
  const expected = ['before', 'stopped-1', ...Array.from({ length: DOWN_TURNS }, (_, i) => `down-${i}`)];
  await waitFor('the queued turns committed by the retry', async () => exactlyOnce(turnCounts((await readStream(server.url, prefix)).records), expected).length === 0, 60_000);
  t.log(`the retry committed the queue ${Math.round(performance.now() - restarted)} ms after the restart`);
  await writer.request({ op: 'ops', ops: [] }, 'flushed');

  const stream = await readStream(server.url, prefix);
  t.deepEqual(stream.problems, []);
  const counts = turnCounts(stream.records);
  t.deepEqual(exactlyOnce(counts, expected), [], 'every turn exactly once, the one in doubt included');
  t.is(counts.size, expected.length);

  const codes = writer.warnings.map((w) => w.code);
  for (const code of ['COMMIT_FAILED', 'REDIS_DISCONNECTED']) {
    const warned = codes.filter((c) => c === code).length;
    const failures = failuresInARow(writer.warnings, code);
    t.true(warned >= 1, `${code} warned`);
    t.true(failures > warned, `${code}: ${warned} warnings for ${failures} failures in a row (collapsed)`);
    t.true(warned <= 4 * Math.log2(failures) + 4, `${code}: ${warned} warnings for ${failures} failures`);
  }
  const recovered = writer.warnings.filter((w) => w.code === 'RECOVERED').map((w) => w.message);
  t.true(recovered.some((m) => /^the connection to Redis works again/.test(m)), recovered.join('\n'));
  t.true(recovered.some((m) => /^background commit works again/.test(m)), recovered.join('\n'));
  t.is(codes.lastIndexOf('COMMIT_FAILED') < codes.lastIndexOf('RECOVERED'), true);

  const fresh = await freshView(server.url, prefix, { clock: clockOf(clock) });
  const mine = await writer.request({ op: 'list' }, 'list');
  t.deepEqual(mine.sessions, fresh.sessions, "the writer's view is a fresh process's");
  await writer.close();
});
