/**
 * The Redis compactor killed or stopped in the middle of its protocol
 * (docs/FORMAT.md, "Compaction on Redis"), beside a writer process:
 *
 * - SIGKILLed at each step (onStep): the store stays whole (every
 *   acknowledged turn there once, retention either journaled or not at all),
 *   the dead compactor's lock stays until its time to live (lockTtlMs) runs
 *   out, and the next compaction then takes it and succeeds;
 * - stopped (SIGSTOP) past its lock's time to live while another compaction
 *   takes over and finishes: when it goes on it can neither append, nor
 *   install its snapshot, nor trim (LOCK_COMPROMISED, the fence), and it
 *   leaves no chunk behind.
 */
import test, { type ExecutionContext } from 'ava';
import { SessionStore, compactSessions, type CompactionStep } from '../../src/index.js';
import { StoreChild } from '../helpers/child-protocol.js';
import { clockOf, timeline, type ChildClock } from '../helpers/child-clock.js';
import { LineChild } from '../helpers/crash-procs.js';
import { TEST_T0 } from '../helpers/fixture-now.js';
import type { RedisCompactorConfig } from '../helpers/redis-compactor-child.js';
import { sharedRedisUrl, uniquePrefix } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/redis-conn.js';
import { dropStoreAtEnd, exactlyOnce, freshView, promptsOf, readStream, viewTurnCounts, withStore } from '../helpers/redis-faults.js';

const SEEDED = 8;
const MAX_SESSIONS = 5;
/** The writer's session is the newest, so LRU keeps it and the 4 newest seeded ones. */
const EVICTED = ['s0', 's1', 's2', 's3'];
/** Short enough to wait for, long enough that a loaded machine renews it in time (every third of it). */
const LOCK_TTL_MS = 4000;
const STEPS: CompactionStep[] = ['replayed', 'retained', 'snapshot-written', 'archived'];

interface Trial {
  url: string;
  prefix: string;
  redis: { url: string; prefix: string };
  writer: StoreChild;
  /** The time line of the writer and the compactors: after every seeded access. */
  clock: ChildClock;
}

/** 8 sessions accessed one second apart, then a writer process appending to its own session until stopped. */
async function seeded(t: ExecutionContext, name: string): Promise<Trial> {
  const url = await sharedRedisUrl();
  const prefix = uniquePrefix(name);
  dropStoreAtEnd(t, () => url, prefix);
  const redis = { url, prefix };
  let now = TEST_T0;
  const seed = await SessionStore.open({ redis, clock: () => now });
  for (let i = 0; i < SEEDED; i++) {
    now += 1000;
    seed.ensureSession(`s${i}`);
    seed.addTurn(`s${i}`, { prompt: `s${i}:0`, response: 'r', timestamp: new Date(now) });
  }
  await seed.close();
  const clock = timeline(TEST_T0 + 60_000);
  const writer = new StoreChild('writer');
  t.teardown(() => writer.kill());
  await writer.request({ op: 'open', redis, fsync: true, clock }, 'opened');
  writer.send({ op: 'write', writer: 'w', sessions: ['live'], count: 1_000_000, flushEvery: 2, pauseMs: 20, untilStopped: true });
  await waitFor('the writer under way', () => writer.acked >= 10, 30_000);
  return { url, prefix, redis, writer, clock };
}

/** Steps a compactor child reported, in order. */
const stepsOf = (child: LineChild): string[] => child.messages.filter((m) => m.type === 'step').map((m) => String(m.step));

function compactorChild(t: ExecutionContext, trial: Trial, extra: Partial<RedisCompactorConfig>): LineChild {
  const config: RedisCompactorConfig = { redis: trial.redis, ttlMs: 1e12, maxSessions: MAX_SESSIONS, clock: trial.clock, lockTtlMs: LOCK_TTL_MS, ...extra };
  const child = new LineChild('compactor', 'redis-compactor-child.js', [JSON.stringify(config)]);
  t.teardown(() => child.kill());
  return child;
}

/** The lock's holder and its time to live left (ms; -2: no lock). */
const lockOf = (trial: Trial) => withStore(trial.url, trial.prefix, async (conn) => ({ holder: await conn.command(['GET', conn.keys.lock]), pttl: Number(await conn.command(['PTTL', conn.keys.lock])) }));

/** Chunk keys that are not the installed generation's and do not expire: left for ever. */
const strayChunks = (trial: Trial) =>
  withStore(trial.url, trial.prefix, async (conn) => {
    const gen = await conn.command(['HGET', conn.keys.snap, 'gen']);
    const stray: string[] = [];
    for (const key of (await conn.command(['KEYS', `${conn.keys.snap}:*`])) as string[]) {
      if (gen !== null && key.startsWith(conn.keys.chunkPrefix(Number(gen)))) continue;
      if (Number(await conn.command(['PTTL', key])) < 0) stray.push(key);
    }
    return stray;
  });

/** Chunk keys of generation `gen`, whatever their time to live. */
const chunksOf = (trial: Trial, gen: number) => withStore(trial.url, trial.prefix, async (conn) => (await conn.command(['KEYS', `${conn.keys.chunkPrefix(gen)}*`])) as string[]);

/** Every turn the writer acknowledged, and each seeded one, once; `evicted`: the seeded sessions that must be gone. */
async function checkWhole(t: ExecutionContext, trial: Trial, evicted: readonly string[], label: string): Promise<void> {
  const acked = trial.writer.acked; // before reading: the writer may still be writing
  const stream = await readStream(trial.url, trial.prefix);
  t.deepEqual(stream.problems, [], `${label}: the stream goes on gapless from the snapshot`);
  const fresh = await freshView(trial.url, trial.prefix, { clock: clockOf(trial.clock) });
  t.deepEqual(fresh.warnings, [], label);
  const counts = viewTurnCounts(fresh.sessions);
  t.deepEqual(exactlyOnce(counts, promptsOf('w', acked + 1)), [], `${label}: every acknowledged turn once`);
  const ids = fresh.sessions.map((s) => s.id);
  const seededLeft = Array.from({ length: SEEDED }, (_, i) => `s${i}`).filter((id) => !evicted.includes(id));
  t.deepEqual(ids.filter((id) => id.startsWith('s')).sort(), seededLeft, `${label}: the seeded sessions retention left`);
  t.true(ids.includes('live'), label);
  for (const id of seededLeft) t.is(counts.get(`${id}:0`), 1, `${label}: ${id} whole`);
}

for (const step of STEPS) {
  test(`SIGKILL of the compactor at "${step}": the store stays whole; its lock expires and the next compaction succeeds`, async (t) => {
    const trial = await seeded(t, `kill-${step}`);
    const compactor = compactorChild(t, trial, { killAtStep: step });
    const exit = await compactor.exited;
    t.is(exit.signal, 'SIGKILL', `${JSON.stringify(compactor.messages.filter((m) => m.type === 'error'))} ${compactor.stderr}`);
    t.is(stepsOf(compactor).pop(), step);
    const lock = await lockOf(trial);
    const started = performance.now();
    t.not(lock.holder, null, 'the dead compactor still holds the lock');
    t.true(lock.pttl > 0 && lock.pttl <= LOCK_TTL_MS, `until its time to live runs out (${lock.pttl} ms left)`);
    // Retention is journaled at "retained": before it, nothing was removed.
    await checkWhole(t, trial, step === 'replayed' ? [] : EVICTED, `killed at ${step}`);

    const next = await compactSessions({ redis: trial.redis, ttlMs: 1e12, maxSessions: MAX_SESSIONS, now: clockOf(trial.clock), lockTimeoutMs: 10_000, lockTtlMs: LOCK_TTL_MS, onWarning: (w) => t.fail(`${w.code}: ${w.message}`) });
    t.is(next.status, 'compacted');
    t.true(performance.now() - started >= lock.pttl - 50, 'it waited for the stale lock to expire');
    t.deepEqual((await lockOf(trial)).holder, null, 'released');
    t.deepEqual(await strayChunks(trial), [], 'no chunk left that would never expire');

    trial.writer.send({ op: 'stop-writing' });
    await trial.writer.next('done');
    await checkWhole(t, trial, EVICTED, `after the next compaction`);
    const view = await trial.writer.request({ op: 'list' }, 'list');
    t.deepEqual(view.sessions, (await freshView(trial.url, trial.prefix, { clock: clockOf(trial.clock) })).sessions, "the writer's view is a fresh open's");
    await trial.writer.close();
  });
}

for (const step of ['replayed', 'retained'] as const) {
  test(`a compactor stopped (SIGSTOP) at "${step}" past its lock's time to live: another takes over; when it goes on it installs and trims nothing (LOCK_COMPROMISED)`, async (t) => {
    const trial = await seeded(t, `stop-${step}`);
    const stale = compactorChild(t, trial, { stopAtStep: step });
    t.teardown(() => stale.kill('SIGCONT'));
    await stale.next('step');
    await waitFor('the stale compactor at its step', () => stepsOf(stale).includes(step), 10_000);
    const staleToken = Number((await lockOf(trial)).holder);
    t.true(staleToken > 0);
    await waitFor("the stopped compactor's lock to expire", async () => (await lockOf(trial)).holder === null, 10_000);

    const taker = await compactSessions({ redis: trial.redis, ttlMs: 1e12, maxSessions: MAX_SESSIONS, now: clockOf(trial.clock), lockTimeoutMs: 10_000, lockTtlMs: LOCK_TTL_MS });
    t.is(taker.status, 'compacted');
    const after = await readStream(trial.url, trial.prefix);
    const gen = await withStore(trial.url, trial.prefix, async (conn) => Number(await conn.command(['HGET', conn.keys.snap, 'gen'])));
    t.true(gen > staleToken, 'the snapshot is the new holder\'s');

    stale.kill('SIGCONT');
    const failure = await stale.next('error', 30_000);
    t.is(failure.code, 'LOCK_COMPROMISED', String(failure.message));
    await stale.exited;
    t.is(await withStore(trial.url, trial.prefix, async (conn) => Number(await conn.command(['HGET', conn.keys.snap, 'gen']))), gen, 'its snapshot was not installed');
    t.deepEqual(await chunksOf(trial, staleToken), [], 'its chunks are gone');
    const now = await readStream(trial.url, trial.prefix);
    // The writer goes on appending, so the stream may have been empty right after the takeover: what it held then is all still there.
    t.deepEqual(
      now.records.slice(0, after.records.length).map((r) => r.seq),
      after.records.map((r) => r.seq),
      'it trimmed nothing',
    );
    t.is(now.snapshotSeq, after.snapshotSeq);
    t.deepEqual(await strayChunks(trial), []);

    trial.writer.send({ op: 'stop-writing' });
    await trial.writer.next('done');
    await checkWhole(t, trial, EVICTED, `after the takeover`);
    await trial.writer.close();
  });
}
