/**
 * KeyValueStore across real processes (test/helpers/kv-child.ts), on every
 * backend: children setting their own keys at once lose none of them (the
 * rename race of a whole-file cache does), and a child SIGKILLed mid-run
 * keeps every key whose flush() had resolved. fsync off: SIGKILL does not
 * lose the page cache (nor the server's memory), so what is tested is the
 * write protocol. (Moved from test/kv/kv-processes.test.ts.)
 */
import test, { type ExecutionContext } from 'ava';
import type { JsonValue } from '../../src/index.js';
import { LineChild } from '../helpers/crash-procs.js';
import { waitFor } from '../helpers/compaction-helpers.js';
import { backends, type Backend, type Location } from './backends.js';
import { TEST_T0, collectWarnings, named } from './harness.js';

/** What a torn record of a killed writer may leave behind; anything else is a failure. */
const ACCEPTABLE = new Set(['INCOMPLETE_TAIL', 'UNPARSABLE_LINE', 'INCOMPLETE_COMMIT']);

function child(t: ExecutionContext, name: string): LineChild {
  const c = new LineChild(name, 'kv-child.js');
  t.teardown(() => c.kill());
  return c;
}

async function openChild(c: LineChild, backend: Backend, at: Location): Promise<void> {
  // lockStaleMs: a directory's lock left by the killed writer goes stale in 2 s (a store on Redis has no writer lock).
  c.send({ op: 'open', ...backend.child(at), clockMs: TEST_T0, lockStaleMs: 2000 });
  await c.next('opened');
}

/** A fresh process's view of the keys `prefix-0..count-1`: the indexes found, in order. */
async function found(backend: Backend, at: Location, prefix: string, count: number): Promise<{ present: number[]; values: JsonValue[] }> {
  const { warnings, onWarning } = collectWarnings();
  const kv = await backend.openKv(at, { clock: () => TEST_T0, onWarning, autoCompact: false, maxEntries: 100_000 });
  const present: number[] = [];
  const values: JsonValue[] = [];
  for (let i = 0; i < count; i++) {
    const v = kv.get(`${prefix}-${i}`);
    if (v !== undefined) {
      present.push(i);
      values.push(v);
    }
  }
  await kv.close();
  const unexpected = warnings.filter((w) => !ACCEPTABLE.has(w.code));
  if (unexpected.length > 0) throw new Error(`unexpected warnings: ${JSON.stringify(unexpected)}`);
  return { present, values };
}

for (const backend of backends) {
  test(named(backend, 'six processes setting their own keys at once: every key is there, with its value, in every view'), async (t) => {
    const at = await backend.fresh(t);
    await (await backend.openKv(at, { autoCompact: false })).close(); // create it once, not in a race
    const writers = ['w1', 'w2', 'w3', 'w4', 'w5', 'w6'];
    const COUNT = 40;
    const children = writers.map((w) => child(t, w));
    await Promise.all(children.map((c) => openChild(c, backend, at)));
    for (const [i, c] of children.entries()) c.send({ op: 'set', prefix: writers[i], count: COUNT, flushEvery: 5 });
    await Promise.all(children.map((c) => c.next('done', 60_000)));
    for (const c of children) c.send({ op: 'close' });
    await Promise.all(children.map((c) => c.exited));
    for (const w of writers) {
      const { present, values } = await found(backend, at, w, COUNT);
      t.deepEqual(present, Array.from({ length: COUNT }, (_, i) => i), `all of ${w}'s keys`);
      t.deepEqual(values, present.map((i) => ({ by: w, i })));
    }
    const kv = await backend.openKv(at, { clock: () => TEST_T0, autoCompact: false });
    t.is([...kv.entries()].length, writers.length * COUNT);
    await kv.close();
  });

  test(named(backend, 'a writer SIGKILLed mid-run keeps every key whose flush had resolved; a writer beside it loses nothing'), async (t) => {
    const at = await backend.fresh(t);
    await (await backend.openKv(at, { autoCompact: false })).close();
    const victim = child(t, 'victim');
    const survivor = child(t, 'survivor');
    await openChild(victim, backend, at);
    await openChild(survivor, backend, at);
    victim.send({ op: 'set', prefix: 'victim', count: 100_000, flushEvery: 1 });
    survivor.send({ op: 'set', prefix: 'survivor', count: 300, flushEvery: 3 });
    const acked = () => Math.max(-1, ...victim.messages.filter((m) => m.type === 'acked').map((m) => Number(m.upTo)));
    t.true(await waitFor(() => acked() >= 100, 60_000), 'the victim acknowledged 100 keys');
    victim.kill('SIGKILL');
    await victim.exited;
    const lastAcked = acked();
    await survivor.next('done', 60_000);
    survivor.send({ op: 'close' });
    await survivor.exited;

    const { present } = await found(backend, at, 'victim', lastAcked + 1000);
    t.true(present.length >= lastAcked + 1, `every acknowledged key is there: acked 0..${lastAcked}, found ${present.length}`);
    t.deepEqual(present, Array.from({ length: present.length }, (_, i) => i), 'what survives is a prefix: commits land in order');
    t.is((await found(backend, at, 'survivor', 300)).present.length, 300);
  });
}
