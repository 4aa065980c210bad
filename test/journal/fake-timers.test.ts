/**
 * The stores under the fake timers test frameworks install (a server's own
 * test suite runs with them on): @sinonjs/fake-timers with its defaults
 * (every timer, nextTick, queueMicrotask, hrtime, performance and Date), and
 * the set vitest's useFakeTimers fakes by default. No timer ever advances,
 * so whatever the stores wait on must be real I/O or promise jobs. Each wait
 * is bounded by a real timer captured before faking: a hang fails the test
 * in seconds instead of at ava's timeout.
 */
import test, { type ExecutionContext } from 'ava';
import FakeTimers from '@sinonjs/fake-timers';
import { JournalEventStore, SessionStore } from '../../src/index.js';
import { tempStoreDir } from '../helpers/temp-store.js';

const realSetTimeout = setTimeout;
const realClearTimeout = clearTimeout;

type FakeTimersConfig = NonNullable<Parameters<typeof FakeTimers.install>[0]>;

const FAKE_TIMER_SETS: Array<[string, FakeTimersConfig]> = [
  ['@sinonjs/fake-timers defaults', {}],
  ["vitest's default toFake", { toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval', 'Date'] }],
];

/** `promise`, or a rejection naming `what` once 5 s of real time have passed. */
async function settles<T>(what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = realSetTimeout(() => reject(new Error(`${what} did not settle within 5 s of real time under fake timers`)), 5000);
  });
  try {
    return await Promise.race([promise, hang]);
  } finally {
    realClearTimeout(timer);
  }
}

/** Runs `body` with fake timers installed, and always uninstalls them before the test ends. */
async function underFakeTimers(config: FakeTimersConfig, body: (clock: ReturnType<typeof FakeTimers.install>) => Promise<void>): Promise<void> {
  const clock = FakeTimers.install(config);
  try {
    await body(clock);
  } finally {
    clock.uninstall();
  }
}

const note = (i: number) => ({ jsonrpc: '2.0' as const, method: 'notifications/message', params: { i } });

for (const [name, config] of FAKE_TIMER_SETS) {
  test.serial(`JournalEventStore: storeEvent, replay, flush and close resolve under fake timers (${name})`, async (t: ExecutionContext) => {
    const dir = tempStoreDir(t);
    await underFakeTimers(config, async () => {
      // Defaults, as a server under test would open it: fsync on, auto-compaction on.
      const store = await settles('open', JournalEventStore.open({ dir }));
      const view = store.forSession('session-under-test');
      const first = await settles('storeEvent', view.storeEvent('_GET_stream', note(1)));
      const [second, third] = await settles('concurrent storeEvents', Promise.all([view.storeEvent('_GET_stream', note(2)), view.storeEvent('_GET_stream', note(3))]));
      const sent: string[] = [];
      t.is(await settles('replayEventsAfter', view.replayEventsAfter(first, { send: async (id) => void sent.push(id) })), '_GET_stream');
      t.deepEqual(sent, [second, third]);
      await settles('flush', store.flush());
      await settles('close', store.close());
    });
  });

  test.serial(`SessionStore: mutations, flush and close resolve under fake timers (${name})`, async (t: ExecutionContext) => {
    const dir = tempStoreDir(t);
    let id = '';
    await underFakeTimers(config, async (clock) => {
      const store = SessionStore.openSync({ dir });
      id = store.createSession();
      store.addTurn(id, { prompt: 'p', response: 'r', timestamp: new Date(clock.now) });
      await settles('flush', store.flush());
      store.getSession(id); // a deferred access-time refresh: flush writes it without its timer
      await settles('flush of a deferred refresh', store.flush());
      await settles('close', store.close());
    });
    const reopened = SessionStore.openSync({ dir });
    t.is(reopened.getSession(id)?.turns.length, 1, 'written'); // (not listSessions: the faked Date may be 1970, long expired)
    await reopened.close();
  });
}

/**
 * Compaction reads and gzips through Node's streams, which need the real
 * process.nextTick: so under vitest's defaults, not under sinon's (which fake
 * nextTick too); README.md, "Testing a server with fake timers".
 */
test.serial(`JournalEventStore.compact() resolves under fake timers (${FAKE_TIMER_SETS[1]![0]})`, async (t: ExecutionContext) => {
  const dir = tempStoreDir(t);
  await underFakeTimers(FAKE_TIMER_SETS[1]![1], async () => {
    const store = await settles('open', JournalEventStore.open({ dir, autoCompact: false }));
    const id = await settles('storeEvent', store.storeEvent('s', note(1)));
    await settles('storeEvent', store.storeEvent('s', note(2)));
    t.is((await settles('compact', store.compact())).status, 'compacted');
    t.is(await settles('getStreamIdForEventId', store.getStreamIdForEventId(id)), 's');
    await settles('close', store.close());
  });
});
