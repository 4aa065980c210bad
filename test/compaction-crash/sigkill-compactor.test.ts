/**
 * A compactor SIGKILLed anywhere in the compaction protocol leaves a store
 * that opens, holds every acknowledged mutation, takes new appends, and is
 * brought to the canonical layout by the next compaction.
 *
 * (a) 100+ trials: a compactor child (crash-compactor.js, started ahead of
 *     time so the kill lands in the compaction, not in Node's start-up) is
 *     killed at a random moment while 3 writer children keep appending.
 *     Writers run with fsync: false: SIGKILL of another process does not lose
 *     the page cache, so what is tested is the protocol, not the disk.
 * (b) deterministic kills, no concurrent writers: in onStep at each protocol
 *     step, and just before each file-system call one compaction makes
 *     (crash-fs-hook.ts counts them: opens, reads, writes, fsyncs, renames,
 *     unlinks, stream I/O of the gzip archive, and the lock directories).
 *
 * Locks of the dead compactor: `compact.lock` is removed by the test once the
 * compactor is dead (it would only go stale after 30 s). `journal.lock` is
 * removed when it is the dead process's: in (a) when the same lock directory
 * stays unchanged for 300 ms (live writers hold it for a few ms), in (b)
 * unconditionally (no other process runs). That stands in for the 10 s
 * stale takeover, which test/conformance/sessions-sigkill.test.ts and the lock tests cover.
 *
 * Time: every store, writer and compactor here runs at TEST_T0 (writers on a
 * clock anchored there, compactors fixed there), and (a)'s kill times come
 * from a fixed seed, DEFAULT_CRASH_SEED; CRASH_SEED=n explores another one.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SessionStore, compactSessions } from '../../src/index.js';
import { seededRandom, type PlainSession } from '../helpers/child-protocol.js';
import {
  buildSeedStore,
  checkAcked,
  checkCompactedLayout,
  copyStore,
  CrashCompactor,
  CrashWriter,
  evictedBy,
  removeCompactLock,
  removeDeadJournalLock,
  replay,
  SEED_MAX_SESSIONS,
  SEED_TTL_MS,
} from '../helpers/crash-procs.js';
import type { CrashCompactorConfig } from '../helpers/crash-compactor.js';
import type { CompactionStep } from '../../src/index.js';
import { TEST_T0 } from '../helpers/fixture-now.js';
import { timeline } from '../helpers/child-clock.js';

const STEPS: CompactionStep[] = ['replayed', 'rotated', 'retained', 'snapshot-written', 'archived'];
const TRIALS = 100;
const WEEK = 7 * 24 * 3600 * 1000;
/** The seed of (a)'s batch sizes, pauses and kill delays unless CRASH_SEED gives another (to explore, or to replay a CI failure). */
const DEFAULT_CRASH_SEED = 0x5eed_c0;
/** The clock every child and every in-process compaction here reads. */
const CLOCK = timeline(TEST_T0);
const atT0 = () => TEST_T0;

function tempRoot(t: { teardown: (fn: () => void) => void }): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sj-crash-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  return root;
}

const debug = (...a: unknown[]) => { if (process.env.CRASH_DEBUG) console.error(...a); };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test.serial(`(a) ${TRIALS} compactors SIGKILLed at random moments while 3 writers append`, async (t) => {
  const root = tempRoot(t);
  const seed = Number(process.env.CRASH_SEED ?? DEFAULT_CRASH_SEED);
  const random = seededRandom(seed);
  t.log(`seed ${seed} (CRASH_SEED=${seed} replays the kill times)`);
  const writers = Array.from({ length: 3 }, (_, i) => new CrashWriter(`w${i}`));
  const compactors: CrashCompactor[] = [];
  t.teardown(() => {
    writers.forEach((w) => w.kill());
    compactors.forEach((c) => c.kill());
  });
  const dirOf = (trial: number) => path.join(root, `t${trial}`);
  const configOf = (trial: number): CrashCompactorConfig => ({ dir: dirOf(trial), ttlMs: WEEK, maxSessions: 1000, nowMs: TEST_T0, waitForGo: true });
  // Two compactors ahead: Node's start-up (~0.3 s here) overlaps the previous trials.
  const pool = new Map<number, CrashCompactor>();
  const prewarm = (trial: number) => {
    if (trial >= TRIALS || pool.has(trial)) return;
    const c = new CrashCompactor(configOf(trial));
    compactors.push(c);
    pool.set(trial, c);
  };

  // Calibration: how long does a whole compaction take here, from "go"?
  const calibration: number[] = [];
  {
    const dir = path.join(root, 'calibrate');
    fs.mkdirSync(dir, { mode: 0o700 });
    await Promise.all(writers.map((w) => w.open(dir, false, CLOCK)));
    writers.forEach((w) => w.start({ writer: w.name, shared: ['s1', 's2'], own: `own-${w.name}`, batch: 3, pauseMs: 2 }));
    for (let i = 0; i < 4; i++) {
      const c = new CrashCompactor({ dir, ttlMs: WEEK, maxSessions: 1000, nowMs: TEST_T0, waitForGo: true });
      compactors.push(c);
      await c.next('ready');
      const started = Date.now();
      c.go();
      await c.next('done');
      calibration.push(Date.now() - started);
      debug("calibration", i, calibration);
      await c.exited;
    }
    await Promise.all(writers.map((w) => w.stop()));
  }
  calibration.sort((a, b) => a - b);
  // Kill delays spread over the whole compaction (and a little past it). The window
  // follows what the trials show: a compaction's length depends on the machine's load,
  // so it shrinks after a compaction that finished first and grows after a kill that
  // came before the replay ended (no fixed bound that fits a quiet and a busy machine).
  let maxDelay = Math.max(10, Math.round(calibration[calibration.length >> 1]! * 1.2));
  const windows: number[] = [];
  t.log(`a compaction takes ${calibration.join(', ')} ms from "go" beside the writers; kills from 0-${maxDelay} ms on`);

  const reached = new Map<string, number>(); // last step reported before death -> trials
  const problems: string[] = [];
  let journalLocksRemoved = 0;
  let finishedBeforeKill = 0;
  let spuriousTails = 0;
  const started = Date.now();
  prewarm(0);
  prewarm(1);
  for (let trial = 0; trial < TRIALS; trial++) {
    const label = `trial ${trial}`;
    debug(label);
    const dir = dirOf(trial);
    fs.mkdirSync(dir, { mode: 0o700 });
    await Promise.all(writers.map((w) => w.open(dir, false, CLOCK)));
    writers.forEach((w) => w.start({ writer: w.name, shared: ['s1', 's2'], own: `own-${w.name}`, batch: 1 + Math.floor(random() * 4), pauseMs: 1 + Math.floor(random() * 3) }));
    while (writers.some((w) => w.acked < 6)) await sleep(2);
    // Half the trials start from a store that already has a snapshot and an archive.
    if (trial % 2 === 1) {
      await compactSessions({ dir, ttlMs: WEEK, maxSessions: 1000, lockTimeoutMs: 10_000, now: atT0 });
      while (writers.some((w) => w.acked < 12)) await sleep(2);
    }

    const compactor = pool.get(trial)!;
    pool.delete(trial);
    await compactor.next('ready');
    const delay = random() * maxDelay;
    compactor.go();
    await sleep(delay);
    compactor.kill('SIGKILL');
    const exit = await compactor.exited;
    prewarm(trial + 2);
    const finished = compactor.messages.some((m) => m.type === 'done');
    const failedMessage = compactor.messages.find((m) => m.type === 'error');
    if (failedMessage) problems.push(`${label}: the compactor failed before the kill: ${String(failedMessage.message)}`);
    if (finished) finishedBeforeKill++;
    const steps = compactor.steps;
    const phase = finished ? 'finished' : steps.length === 0 ? 'before replayed' : `after ${steps[steps.length - 1]}`;
    reached.set(phase, (reached.get(phase) ?? 0) + 1);
    windows.push(Math.round(maxDelay));
    if (finished) maxDelay = Math.max(10, maxDelay * 0.85);
    else if (phase === 'before replayed') maxDelay = Math.min(10_000, maxDelay * 1.1);
    if (!finished && exit.signal !== 'SIGKILL') problems.push(`${label}: the compactor exited with ${exit.code}/${exit.signal}`);

    removeCompactLock(dir);
    if (await removeDeadJournalLock(dir)) journalLocksRemoved++;

    // The store opens, and every mutation acknowledged so far is in it.
    const acked = new Map(writers.map((w) => [w.name, { run: w.run!, acked: w.acked }]));
    let now;
    try {
      now = replay(dir);
    } catch (err) {
      problems.push(`${label} (${phase}): the store does not open: ${(err as Error).message}`);
      continue;
    }
    // INCOMPLETE_TAIL is tolerated only here, writers appending: open mistakes a line
    // completed during its read for a torn one (see open-beside-writers.test.ts).
    for (const w of now.warnings) {
      if (w.code === 'INCOMPLETE_TAIL') spuriousTails++;
      else problems.push(`${label} (${phase}): warning ${w.code} ${w.message}`);
    }
    for (const p of checkAcked(now.sessions, acked)) problems.push(`${label} (${phase}): ${p}`);

    // A follow-up compaction succeeds, writers still appending.
    try {
      const result = await compactSessions({ dir, ttlMs: WEEK, maxSessions: 1000, lockTimeoutMs: 10_000, now: atT0 });
      if (result.status !== 'compacted') problems.push(`${label} (${phase}): follow-up compaction: ${result.status}`);
    } catch (err) {
      problems.push(`${label} (${phase}): follow-up compaction failed: ${(err as Error).message}`);
    }

    const counts = await Promise.all(writers.map((w) => w.stop()));
    const views = await Promise.all(writers.map((w) => w.view()));
    const after = replay(dir);
    for (const w of after.warnings) problems.push(`${label} (${phase}), at the end: warning ${w.code} ${w.message}`);
    const exact = new Map(writers.map((w, i) => [w.name, { run: w.run!, acked: w.acked, exact: counts[i]! }]));
    for (const p of checkAcked(after.sessions, exact)) problems.push(`${label} (${phase}), at the end: ${p}`);
    views.forEach((v, i) => {
      if (JSON.stringify(v) !== JSON.stringify(after.sessions)) problems.push(`${label} (${phase}): ${writers[i]!.name}'s view differs from a fresh replay`);
    });
    for (const p of checkCompactedLayout(dir).filter((x) => !x.startsWith('snapshots') && !x.startsWith('segments'))) problems.push(`${label} (${phase}): ${p}`);
    if (problems.length > 20) break;
  }
  for (const w of writers) for (const x of w.warnings) problems.push(`${w.name} warned ${x.code}: ${x.message}`);
  await Promise.all(writers.map((w) => w.close()));
  const summary = [...reached].map(([k, v]) => `${k}: ${v}`).join(', ');
  t.log(`kill windows ${Math.min(...windows)}-${Math.max(...windows)} ms`);
  t.log(`${TRIALS} trials in ${Date.now() - started} ms; killed ${summary}; dead compactor's journal.lock removed ${journalLocksRemoved} times; INCOMPLETE_TAIL beside live writers ${spuriousTails} times`);
  t.deepEqual(problems, []);
  t.true(finishedBeforeKill < TRIALS / 2, `most kills land inside the compaction (${summary})`);
  for (const phase of ['before replayed', 'after replayed', 'after rotated', 'after retained', 'after snapshot-written']) {
    // Retention journals nothing here (no TTL or LRU hits), so 'after rotated' -> 'after retained' is short.
    if (phase === 'after rotated') continue;
    t.true((reached.get(phase) ?? 0) > 0, `some kill landed ${phase} (${summary})`);
  }
});

// ---- (b) deterministic kills --------------------------------------------------

interface Seed {
  dir: string;
  pre: PlainSession[];
  evicted: Set<string>;
  /** The state after a clean run of: compaction under test, one more append, one more compaction. */
  final: PlainSession[];
  nowMs: number;
}

const EXTRA_TURN = { prompt: 'after the crash', response: 'appended by a fresh writer', timestamp: new Date('2030-01-01T00:00:00.000Z') };

async function buildSeed(root: string): Promise<Seed> {
  const dir = path.join(root, 'seed');
  const base = TEST_T0 - 3600_000;
  await buildSeedStore(dir, base, (d) => compactSessions({ dir: d, maxSessions: 1000, now: atT0 }));
  const pre = replay(dir).sessions;
  const evicted = evictedBy(pre, SEED_MAX_SESSIONS);
  const nowMs = TEST_T0;
  const reference = path.join(root, 'reference');
  copyStore(dir, reference);
  await compactSessions({ dir: reference, ttlMs: SEED_TTL_MS, maxSessions: SEED_MAX_SESSIONS, now: () => nowMs });
  const final = await appendAndCompact(reference, pre, nowMs);
  return { dir, pre, evicted, final, nowMs };
}

/** The newest session (never evicted) gets one more turn from a fresh writer; then a compaction runs. */
async function appendAndCompact(dir: string, pre: PlainSession[], nowMs: number): Promise<PlainSession[]> {
  const newest = [...pre].sort((a, b) => Date.parse(String(b.lastAccessedAt)) - Date.parse(String(a.lastAccessedAt)))[0]!.id;
  const writer = SessionStore.openSync({ dir, clock: () => nowMs - 1000, autoCompact: false, lockTimeoutMs: 2000 });
  writer.addTurn(newest, EXTRA_TURN);
  await writer.flush();
  await writer.close();
  const result = await compactSessions({ dir, ttlMs: SEED_TTL_MS, maxSessions: SEED_MAX_SESSIONS, now: () => nowMs, lockTimeoutMs: 2000 });
  if (result.status !== 'compacted') throw new Error(`follow-up compaction: ${result.status}`);
  return replay(dir).sessions;
}

/** After a kill: the store opens with the old or the retained state, takes an append, and compacts to the reference. */
async function checkAfterKill(dir: string, seed: Seed, label: string): Promise<string[]> {
  const problems: string[] = [];
  removeCompactLock(dir);
  fs.rmSync(path.join(dir, 'journal.lock'), { recursive: true, force: true });
  let now;
  try {
    now = replay(dir);
  } catch (err) {
    return [`${label}: the store does not open: ${(err as Error).message}`];
  }
  for (const w of now.warnings) problems.push(`${label}: warning ${w.code} ${w.message}`);
  const retained = seed.pre.filter((s) => !seed.evicted.has(s.id));
  const same = JSON.stringify(now.sessions);
  if (same !== JSON.stringify(seed.pre) && same !== JSON.stringify(retained)) {
    problems.push(`${label}: the state is neither the one before the compaction nor it minus the evicted sessions: ${now.sessions.map((s) => `${s.id}(${s.turns.length})`).join(' ')}`);
  }
  try {
    const final = await appendAndCompact(dir, seed.pre, seed.nowMs);
    if (JSON.stringify(final) !== JSON.stringify(seed.final)) problems.push(`${label}: after an append and a compaction the state differs from a run without the crash`);
  } catch (err) {
    problems.push(`${label}: append + follow-up compaction failed: ${(err as Error).message}`);
  }
  problems.push(...checkCompactedLayout(dir).map((p) => `${label}: after the follow-up compaction: ${p}`));
  return problems;
}

/** Runs one compactor child on a fresh copy of the seed; returns the copy and how the child ended. */
async function runCompactor(seed: Seed, dir: string, config: Partial<CrashCompactorConfig>) {
  copyStore(seed.dir, dir);
  const child = new CrashCompactor({ dir, ttlMs: SEED_TTL_MS, maxSessions: SEED_MAX_SESSIONS, nowMs: seed.nowMs, lockTimeoutMs: 2000, ...config });
  const exit = await child.exited;
  return { child, exit };
}

/** Runs `jobs` with at most `limit` at once (children mostly wait on Node's start-up, not the CPU). */
async function pooled<T>(jobs: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < jobs.length) {
        const i = next++;
        out[i] = await jobs[i]!();
      }
    }),
  );
  return out;
}

test.serial('(b) a compactor killed at each protocol step and before each file-system call leaves a recoverable store', async (t) => {
  const root = tempRoot(t);
  const seed = await buildSeed(root);
  t.is(seed.evicted.size, 3, 'the compaction under test evicts 3 sessions');
  t.is(seed.final.length, SEED_MAX_SESSIONS);

  // Count the calls of one compaction (pass-through).
  const counted = await runCompactor(seed, path.join(root, 'count'), { countCalls: true });
  const done = counted.child.messages.find((m) => m.type === 'done');
  t.truthy(done, `the counting run completes: ${counted.child.stderr}`);
  const calls = (done?.calls ?? []) as { n: number; name: string; target: string }[];
  t.true(calls.length > 50, `${calls.length} file-system calls counted`);
  const byName = new Map<string, number>();
  for (const c of calls) byName.set(c.name, (byName.get(c.name) ?? 0) + 1);
  t.log(`one compaction: ${calls.length} file-system calls: ${[...byName].map(([n, k]) => `${n}×${k}`).join(' ')}`);
  for (const name of ['renameSync', 'writeSync', 'fsyncSync', 'fdatasyncSync', 'fdatasync', 'unlinkSync', 'openSync', 'readSync', 'mkdirSync']) {
    t.true(byName.has(name), `${name} is among the calls killed at`);
  }

  const started = Date.now();
  const jobs: (() => Promise<string[]>)[] = [];
  for (const step of STEPS) {
    jobs.push(async () => {
      const dir = path.join(root, `step-${step}`);
      const { child, exit } = await runCompactor(seed, dir, { killAtStep: step });
      if (exit.signal !== 'SIGKILL') return [`step ${step}: the compactor was not killed (${exit.code}): ${child.stderr}`];
      return checkAfterKill(dir, seed, `killed at step ${step}`);
    });
  }
  for (const call of calls) {
    jobs.push(async () => {
      const dir = path.join(root, `call-${call.n}`);
      const label = `killed before call ${call.n} (${call.name} ${path.relative(dir, call.target.replace(path.join(root, 'count'), dir)) || '.'})`;
      const { child, exit } = await runCompactor(seed, dir, { killAtCall: call.n });
      if (exit.signal !== 'SIGKILL') return [`${label}: the compactor was not killed (${exit.code}): ${child.stderr}`];
      const problems = await checkAfterKill(dir, seed, label);
      fs.rmSync(dir, { recursive: true, force: true });
      return problems;
    });
  }
  const problems = (await pooled(jobs, 4)).flat();
  t.log(`${jobs.length} kills (${STEPS.length} steps, ${calls.length} calls) checked in ${Date.now() - started} ms`);
  t.deepEqual(problems, []);
});
