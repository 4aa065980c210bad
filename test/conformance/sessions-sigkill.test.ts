/**
 * A writer process is SIGKILLed mid-run while others keep writing, on every
 * backend. Afterwards the store opens without throwing and every mutation a
 * process saw acknowledged (flush() resolved, then "acked" sent) is in a
 * fresh replay, exactly once; the survivors lose nothing, even when they
 * append after a torn last record. (Moved from test/crash/sigkill-writer.test.ts.)
 *
 * fsync: false here (speed): SIGKILL does not lose the page cache (nor a
 * Redis server's memory), so what is tested is the write protocol, not the
 * disk. (sessions-processes runs with fsync on.)
 */
import test, { type ExecutionContext } from 'ava';
import type { JournalWarning, SessionStore } from '../../src/index.js';
import { lockLibraryClock } from '../helpers/held-lock.js';
import { killAll, openChildren, seededRandom, type StoreChild } from '../helpers/child-protocol.js';
import { timeline } from '../helpers/child-clock.js';
import { backends } from './every-backend.js';
import { type Backend, type Location } from './backends.js';
import { TEST_T0, collectWarnings, named } from './harness.js';

/** The writers' time line, from TEST_T0 (child-clock.ts); the replay reads at TEST_T0. */
const CLOCK = timeline(TEST_T0);

const SHARED = ['shared-1', 'shared-2'];
const sessionsOf = (writer: string) => [...SHARED, `own-${writer}`];
/**
 * What a torn record may leave behind; anything else is a failure. A victim
 * killed inside its write() of a commit that crosses a page boundary leaves
 * the commit cut (the kernel stops a write between pages for a fatal
 * signal): its sealed last line is UNPARSABLE_LINE, and when whole lines of
 * it came first, the commit is INCOMPLETE_COMMIT. It was never acknowledged.
 */
const ACCEPTABLE = new Set(['INCOMPLETE_TAIL', 'UNPARSABLE_LINE', 'INCOMPLETE_COMMIT']);

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
async function checkStore(t: ExecutionContext, backend: Backend, at: Location, label: string, expectations: Expectation[]): Promise<JournalWarning[]> {
  const { warnings, onWarning } = collectWarnings();
  let store: SessionStore | undefined;
  await t.notThrowsAsync(async () => {
    store = await backend.openSessions(at, { fsync: false, onWarning, clock: () => TEST_T0 });
  }, `${label}: the store opens`);
  if (!store) return warnings;
  const sessions = store.listSessions();
  await store.close();

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
  const seqs = (await backend.lines(at)).flatMap((l) => (l.record ? [l.record.seq] : []));
  t.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), `${label}: the parsable records' seq numbers are 1..K`);
  return warnings;
}

const TRIALS = 10;
/** Turns each survivor writes once the torn record is there. */
const AFTER_TEAR = 10;
const SURVIVORS = 2;
const COUNT = 100;

for (const backend of backends) {
  test(named(backend, `SIGKILL of one writer at a random moment (${TRIALS} trials): every acknowledged mutation survives`), async (t) => {
    const rnd = seededRandom(0xdead);
    let children: StoreChild[] = [];
    t.teardown(() => killAll(children));
    let stalls = 0;
    let redone = 0;
    for (let trial = 0; trial < TRIALS; trial++) {
      const label = `trial ${trial}`;
      const at = await backend.fresh(t);
      children = await openChildren(SURVIVORS + 1, `t${trial}-`, { ...backend.child(at), fsync: false, clock: CLOCK });
      const [victim, ...survivors] = children as [StoreChild, ...StoreChild[]];
      const names = children.map((_, i) => `w${i}`);
      const runs = children.map((c, i) =>
        c.request({ op: 'write', writer: names[i]!, sessions: sessionsOf(names[i]!), count: i === 0 ? 100_000 : COUNT, flushEvery: 1 + Math.floor(rnd() * 4), pauseMs: i === 0 ? 0 : 1 }, 'done', 45_000),
      );
      runs[0]!.catch(() => undefined); // the victim never finishes
      await victim.next('acked');
      await new Promise((resolve) => setTimeout(resolve, 5 + Math.floor(rnd() * 60)));
      const survivorsAckedAtKill = survivors.map((s) => s.acked);
      const started = performance.now();
      victim.kill('SIGKILL');
      const exit = await victim.exited;
      t.is(exit.signal, 'SIGKILL');
      const deadAt = lockLibraryClock(); // compared with file times (a lock's ctime) only: a SIGKILLed process may still run briefly after kill(); it is gone now
      // The dead holder's lock is watched until the survivors are closed, not only done: a survivor whose writes were all in before the kill still needs the lock at close (its queued access times).
      const survivorsClosed = Promise.all(runs.slice(1)).then(() => Promise.all(survivors.map((s) => s.close())));
      const orphan = await backend.afterKill(at, deadAt, survivorsClosed);
      await survivorsClosed;
      if (orphan) stalls++;
      if (!survivors.some((s, i) => survivorsAckedAtKill[i]! < COUNT - 1)) {
        // The survivors finished before the kill (a fast backend, a slow victim): the trial did not test a kill beside writers. Run it again.
        t.true(++redone <= TRIALS, `${label}: survivors keep finishing before the victim dies (${redone} trials run again)`);
        t.log(`${label}: survivors had finished before the kill; run again`);
        trial--;
        continue;
      }
      for (const s of survivors) t.deepEqual(s.warnings.filter((w) => !ACCEPTABLE.has(w.code)), [], `${label}: ${s.name} warnings`);
      const warnings = await checkStore(
        t,
        backend,
        at,
        label,
        children.map((c, i) => ({ writer: names[i]!, count: i === 0 ? 100_000 : COUNT, acked: c.acked, killed: i === 0 })),
      );
      t.log(`${label}: victim acked 0..${victim.acked}; survivors done ${Math.round(performance.now() - started)} ms after the kill${orphan ? ' (the victim died holding the lock: stale takeover)' : ''}${warnings.length ? `; replay warnings: ${warnings.map((w) => w.code).join(', ')}` : ''}`);
    }
    t.log(`${stalls} of ${TRIALS} victims died holding the lock`);
  });

  test(named(backend, 'writers that append after a torn last record are not glued to it'), async (t) => {
    const at = await backend.fresh(t);
    let children: StoreChild[] = [];
    t.teardown(() => killAll(children));
    children = await openChildren(3, 'torn-', { ...backend.child(at), fsync: false, clock: CLOCK });
    const [victim, ...survivors] = children as [StoreChild, ...StoreChild[]];
    const names = ['v', 's1', 's2'];
    const SURVIVOR_COUNT = 150;
    const runs = survivors.map((c, i) =>
      c.request({ op: 'write', writer: names[i + 1]!, sessions: sessionsOf(names[i + 1]!), count: SURVIVOR_COUNT, flushEvery: 2, pauseMs: 2 }, 'done', 45_000),
    );
    await victim.request({ op: 'write', writer: 'v', sessions: sessionsOf('v'), count: 30, flushEvery: 1 }, 'done');

    // The victim dies leaving half a record after the last one (written where and as it would have written it).
    const torn = '{"v":1,"seq":999999,"ts":"2026-01-01T00:00:00.000Z","w":"1@dead","t":"session.turn","p":{"id":"shared-1","turn":{"prompt":"v:torn","resp';
    await backend.damage.tornAfterLast(at, torn);
    victim.kill('SIGKILL');
    await victim.exited;
    await Promise.all(runs);
    // And after the tear, for certain: each survivor writes again (as writer `<name>b`).
    const ackedAtTear = survivors.map((s) => s.acked);
    for (const s of survivors) s.acked = -1; // counts the writes after the tear
    await Promise.all(survivors.map((c, i) => c.request({ op: 'write', writer: `${names[i + 1]!}b`, sessions: sessionsOf(`${names[i + 1]!}b`), count: AFTER_TEAR, flushEvery: 1 }, 'done', 45_000)));
    t.true(
      survivors.every((s) => s.acked === AFTER_TEAR - 1),
      `both survivors appended after the torn record (acked at tear: ${ackedAtTear.join(', ')}; after it: ${survivors.map((s) => s.acked).join(', ')})`,
    );
    await Promise.all(survivors.map((s) => s.close()));

    // In the store: the torn record a line of its own, then a whole record.
    const raw = await backend.lines(at);
    const tornAt = raw.findIndex((l) => l.text === backend.damage.sealed(torn));
    t.true(tornAt >= 0, 'the torn bytes are a line of their own (sealed, in a directory)');
    t.truthy(raw[tornAt + 1]?.record, 'a whole record follows the torn line');
    t.true(
      raw.every((l, i) => i === tornAt || l.record !== undefined),
      'no other unparsable line (nothing glued)',
    );

    const warnings = await checkStore(t, backend, at, 'torn tail', [
      { writer: 'v', count: 30, acked: victim.acked, killed: true },
      ...survivors.map((_, i) => ({ writer: names[i + 1]!, count: SURVIVOR_COUNT, acked: ackedAtTear[i]!, killed: false })),
      ...survivors.map((s, i) => ({ writer: `${names[i + 1]!}b`, count: AFTER_TEAR, acked: s.acked, killed: false })),
    ]);
    t.deepEqual(
      warnings.map((w) => w.code),
      ['UNPARSABLE_LINE'],
      'the replay reports the torn line once',
    );
    // The survivors, open while it happened, saw it as one torn line at most.
    for (const s of survivors) t.true(s.warnings.every((w) => w.code === 'UNPARSABLE_LINE' || w.code === 'INCOMPLETE_TAIL'), `${s.name}: ${JSON.stringify(s.warnings)}`);
  });
}
