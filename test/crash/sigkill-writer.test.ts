/**
 * A writer process is SIGKILLed mid-run while others keep writing. After-
 * wards the store opens without throwing and every mutation a process saw
 * acknowledged (flush() resolved, then "acked" sent) is in a fresh replay,
 * exactly once; the survivors lose nothing, even when they append after a
 * torn last line.
 *
 * fsync: false here (speed): SIGKILL does not lose the page cache, so what
 * is tested is the write protocol, not the disk. (concurrent-writers runs
 * with fsync on.)
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { SessionStore, type JournalWarning } from '../../src/index.js';
import { journalSeqs, killAll, openChildren, readJournalLines, seededRandom, type StoreChild } from '../helpers/child-protocol.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';
import { TEST_T0 } from '../helpers/fixture-now.js';
import { timeline } from '../helpers/child-clock.js';

/** The writers' time line, from TEST_T0 (child-clock.ts); the replay reads at TEST_T0. */
const CLOCK = timeline(TEST_T0);

const SHARED = ['shared-1', 'shared-2'];
const sessionsOf = (writer: string) => [...SHARED, `own-${writer}`];
/** What a torn record may leave behind; anything else is a failure. */
const ACCEPTABLE = new Set(['INCOMPLETE_TAIL', 'UNPARSABLE_LINE']);

interface Expectation {
  writer: string;
  /** Mutations written in all (the workload size). */
  count: number;
  /** Highest index acknowledged. */
  acked: number;
  /** Killed: mutations past `acked` may be missing, but only as a suffix. */
  killed: boolean;
}

/** Replays the store and checks every expectation; returns the replay's warnings. */
function checkStore(t: ExecutionContext, dir: string, label: string, expectations: Expectation[]): JournalWarning[] {
  const { warnings, onWarning } = collectWarnings();
  let store: SessionStore | undefined;
  t.notThrows(() => {
    store = SessionStore.openSync({ dir, fsync: false, onWarning, clock: () => TEST_T0 });
  }, `${label}: the store opens`);
  if (!store) return warnings;
  const sessions = store.listSessions();
  store.closeSync();

  const unexpected = warnings.filter((w) => !ACCEPTABLE.has(w.code));
  t.deepEqual(unexpected, [], `${label}: only torn-line warnings`);

  const found = new Map<string, number[]>(); // writer -> indexes found
  for (const session of sessions) {
    const perWriter = new Map<string, number[]>();
    for (const turn of session.turns) {
      const [writer, index] = turn.prompt.split(':') as [string, string];
      const i = Number(index);
      const cycle = sessionsOf(writer);
      if (cycle[i % cycle.length] !== session.id) t.fail(`${label}: ${turn.prompt} on ${session.id}`);
      found.set(writer, [...(found.get(writer) ?? []), i]);
      perWriter.set(writer, [...(perWriter.get(writer) ?? []), i]);
    }
    for (const [writer, order] of perWriter) {
      if (order.some((x, k) => k > 0 && x <= order[k - 1]!)) t.fail(`${label}: ${writer}'s turns on ${session.id} out of order or duplicated`);
    }
  }
  for (const e of expectations) {
    const indexes = (found.get(e.writer) ?? []).sort((a, b) => a - b);
    t.is(new Set(indexes).size, indexes.length, `${label}: ${e.writer} has no duplicated turn`);
    if (e.killed) {
      // Commits are written in order, so what survives is a prefix 0..k with k >= the last acknowledgement.
      t.deepEqual(indexes, Array.from({ length: indexes.length }, (_, i) => i), `${label}: ${e.writer} (killed) left a prefix of its writes`);
      t.true(indexes.length >= e.acked + 1, `${label}: every acknowledged mutation of ${e.writer} (killed) is there: acked 0..${e.acked}, found ${indexes.length}`);
    } else {
      t.is(e.acked, e.count - 1, `${label}: ${e.writer} finished`);
      t.deepEqual(indexes, Array.from({ length: e.count }, (_, i) => i), `${label}: all of ${e.writer}'s mutations are there`);
    }
  }
  const seqs = journalSeqs(dir);
  t.deepEqual(
    seqs,
    Array.from({ length: seqs.length }, (_, i) => i + 1),
    `${label}: the parsable records' seq numbers are 1..K`,
  );
  return warnings;
}

/**
 * A writer killed inside its locked section leaves proper-lockfile's lock
 * directory behind, and the survivors wait until it is stale (10 s, the
 * SessionStore default, not configurable there). This watches for such an
 * orphan: a lock directory taken before the victim was dead that stays the same for a
 * full second, which no live holder does (its section is synchronous and takes
 * milliseconds). It then fast-forwards time for that lock by backdating its
 * mtime past the stale limit, which is exactly what proper-lockfile's
 * staleness check reads. Returns whether it did.
 */
async function fastForwardOrphanLock(dir: string, deadAt: number, until: Promise<unknown>): Promise<boolean> {
  const lockPath = path.join(dir, 'journal.lock');
  let finished = false;
  void until.finally(() => {
    finished = true;
  });
  let seen: { key: string; since: number } | undefined;
  while (!finished) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    let stat: fs.Stats;
    try {
      stat = fs.statSync(lockPath);
    } catch {
      seen = undefined;
      continue;
    }
    // Not mtime alone: proper-lockfile's lockSync sets every new lock's mtime to the next whole
    // second + 5 ms (its precision probe), so successive locks can share it (and the inode).
    // ctime is when that utimes ran: it tells one lock directory from the next.
    const key = `${stat.ino}:${stat.ctimeMs}:${stat.mtimeMs}`;
    if (seen?.key !== key) {
      seen = { key, since: Date.now() };
      continue;
    }
    // Taken before the kill and held for a second since: the dead process's.
    if (stat.ctimeMs <= deadAt && Date.now() - seen.since >= 1000) {
      const past = new Date(Date.now() - 11_000);
      fs.utimesSync(lockPath, past, past);
      return true;
    }
  }
  return false;
}

const TRIALS = 10;
const SURVIVORS = 2;
const COUNT = 100;

test(`SIGKILL of one writer at a random moment (${TRIALS} trials): every acknowledged mutation survives`, async (t) => {
  const rnd = seededRandom(0xdead);
  let children: StoreChild[] = [];
  t.teardown(() => killAll(children));
  let stalls = 0;
  for (let trial = 0; trial < TRIALS; trial++) {
    const label = `trial ${trial}`;
    const dir = tempStoreDir(t);
    children = await openChildren(SURVIVORS + 1, `t${trial}-`, { dir, fsync: false, clock: CLOCK });
    const [victim, ...survivors] = children as [StoreChild, ...StoreChild[]];
    const names = children.map((_, i) => `w${i}`);
    const runs = children.map((c, i) =>
      c.request({ op: 'write', writer: names[i]!, sessions: sessionsOf(names[i]!), count: i === 0 ? 100_000 : COUNT, flushEvery: 1 + Math.floor(rnd() * 4), pauseMs: i === 0 ? 0 : 1 }, 'done', 45_000),
    );
    runs[0]!.catch(() => undefined); // the victim never finishes
    await victim.next('acked');
    await new Promise((resolve) => setTimeout(resolve, 5 + Math.floor(rnd() * 60)));
    const survivorsAckedAtKill = survivors.map((s) => s.acked);
    const started = Date.now();
    victim.kill('SIGKILL');
    const exit = await victim.exited;
    t.is(exit.signal, 'SIGKILL');
    const deadAt = Date.now(); // a SIGKILLed process may still run briefly after kill(); it is gone now
    const survivorsDone = Promise.all(runs.slice(1));
    const orphan = await fastForwardOrphanLock(dir, deadAt, survivorsDone);
    await survivorsDone;
    if (orphan) stalls++;
    t.true(
      survivors.some((s, i) => survivorsAckedAtKill[i]! < COUNT - 1),
      `${label}: survivors were still writing when the victim died`,
    );
    await Promise.all(survivors.map((s) => s.close()));
    for (const s of survivors) t.deepEqual(s.warnings.filter((w) => !ACCEPTABLE.has(w.code)), [], `${label}: ${s.name} warnings`);
    const warnings = checkStore(
      t,
      dir,
      label,
      children.map((c, i) => ({ writer: names[i]!, count: i === 0 ? 100_000 : COUNT, acked: c.acked, killed: i === 0 })),
    );
    t.log(`${label}: victim acked 0..${victim.acked}; survivors done ${Date.now() - started} ms after the kill${orphan ? ' (the victim died holding the lock: stale takeover)' : ''}${warnings.length ? `; replay warnings: ${warnings.map((w) => w.code).join(', ')}` : ''}`);
  }
  t.log(`${stalls} of ${TRIALS} victims died holding the lock`);
});

test('writers that append after a torn last line are not glued to it', async (t) => {
  const dir = tempStoreDir(t);
  let children: StoreChild[] = [];
  t.teardown(() => killAll(children));
  children = await openChildren(3, 'torn-', { dir, fsync: false, clock: CLOCK });
  const [victim, ...survivors] = children as [StoreChild, ...StoreChild[]];
  const names = ['v', 's1', 's2'];
  const SURVIVOR_COUNT = 150;
  const runs = survivors.map((c, i) =>
    c.request({ op: 'write', writer: names[i + 1]!, sessions: sessionsOf(names[i + 1]!), count: SURVIVOR_COUNT, flushEvery: 2, pauseMs: 2 }, 'done', 45_000),
  );
  await victim.request({ op: 'write', writer: 'v', sessions: sessionsOf('v'), count: 30, flushEvery: 1 }, 'done');

  // The victim dies with half a record at the end of the live segment.
  const torn = '{"v":1,"seq":999999,"ts":"2026-01-01T00:00:00.000Z","w":"1@dead","t":"session.turn","p":{"id":"shared-1","turn":{"prompt":"v:torn","resp';
  await victim.request({ op: 'tear', text: torn }, 'torn');
  victim.kill('SIGKILL');
  await victim.exited;
  const ackedAtTear = survivors.map((s) => s.acked);
  await Promise.all(runs);
  t.true(
    survivors.every((s, i) => ackedAtTear[i]! < SURVIVOR_COUNT - 1),
    `both survivors appended after the torn line (acked at tear: ${ackedAtTear.join(', ')})`,
  );
  await Promise.all(survivors.map((s) => s.close()));

  // In the file: the torn line ended by a newline, then a whole record.
  const raw = readJournalLines(dir);
  const at = raw.findIndex((l) => l.text === `${torn}\x1e`);
  t.true(at >= 0, 'the torn bytes are a line of their own, sealed (record separator before the newline)');
  t.truthy(raw[at + 1]?.record, 'a whole record follows the torn line');
  t.true(
    raw.every((l, i) => i === at || l.record !== undefined),
    'no other unparsable line (nothing glued)',
  );

  const warnings = checkStore(t, dir, 'torn tail', [
    { writer: 'v', count: 30, acked: victim.acked, killed: true },
    ...survivors.map((s, i) => ({ writer: names[i + 1]!, count: SURVIVOR_COUNT, acked: s.acked, killed: false })),
  ]);
  t.deepEqual(
    warnings.map((w) => w.code),
    ['UNPARSABLE_LINE'],
    'the replay reports the torn line once',
  );
  // The survivors, open while it happened, saw it as one torn line at most.
  for (const s of survivors) t.true(s.warnings.every((w) => w.code === 'UNPARSABLE_LINE' || w.code === 'INCOMPLETE_TAIL'), `${s.name}: ${JSON.stringify(s.warnings)}`);
});
