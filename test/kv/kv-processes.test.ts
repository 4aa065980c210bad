/**
 * KeyValueStore across real processes (test/helpers/kv-child.ts): children
 * setting their own keys at once lose none of them (the rename race of a
 * whole-file cache does), and a child SIGKILLed mid-run keeps every key whose
 * flush() had resolved. fsync off: SIGKILL does not lose the page cache, so
 * what is tested is the write protocol.
 */
import test from 'ava';
import { KeyValueStore, type JsonValue } from '../../src/index.js';
import { LineChild } from '../helpers/crash-procs.js';
import { waitFor } from '../helpers/compaction-helpers.js';
import { TEST_T0 } from '../helpers/fixture-now.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';

/** What a torn record of a killed writer may leave behind; anything else is a failure. */
const ACCEPTABLE = new Set(['INCOMPLETE_TAIL', 'UNPARSABLE_LINE', 'INCOMPLETE_COMMIT']);

function child(t: import('ava').ExecutionContext, name: string): LineChild {
  const c = new LineChild(name, 'kv-child.js');
  t.teardown(() => c.kill());
  return c;
}

async function openChild(c: LineChild, dir: string): Promise<void> {
  c.send({ op: 'open', dir, clockMs: TEST_T0, lockStaleMs: 2000 });
  await c.next('opened');
}

/** A fresh process's view of the keys `prefix-0..count-1`: the indexes found, in order. */
function found(dir: string, prefix: string, count: number): { present: number[]; values: JsonValue[] } {
  const { warnings, onWarning } = collectWarnings();
  const kv = KeyValueStore.openSync({ dir, clock: () => TEST_T0, onWarning, autoCompact: false, maxEntries: 100_000 });
  const present: number[] = [];
  const values: JsonValue[] = [];
  for (let i = 0; i < count; i++) {
    const v = kv.get(`${prefix}-${i}`);
    if (v !== undefined) {
      present.push(i);
      values.push(v);
    }
  }
  kv.closeSync();
  const unexpected = warnings.filter((w) => !ACCEPTABLE.has(w.code));
  if (unexpected.length > 0) throw new Error(`unexpected warnings: ${JSON.stringify(unexpected)}`);
  return { present, values };
}

test('six processes setting their own keys at once: every key is there, with its value, in every view', async (t) => {
  const dir = tempStoreDir(t);
  KeyValueStore.openSync({ dir, autoCompact: false }).closeSync(); // create it once, not in a race
  const writers = ['w1', 'w2', 'w3', 'w4', 'w5', 'w6'];
  const COUNT = 40;
  const children = writers.map((w) => child(t, w));
  await Promise.all(children.map((c) => openChild(c, dir)));
  for (const [i, c] of children.entries()) c.send({ op: 'set', prefix: writers[i], count: COUNT, flushEvery: 5 });
  await Promise.all(children.map((c) => c.next('done', 60_000)));
  for (const c of children) c.send({ op: 'close' });
  await Promise.all(children.map((c) => c.exited));
  for (const w of writers) {
    const { present, values } = found(dir, w, COUNT);
    t.deepEqual(present, Array.from({ length: COUNT }, (_, i) => i), `all of ${w}'s keys`);
    t.deepEqual(values, present.map((i) => ({ by: w, i })));
  }
  const kv = KeyValueStore.openSync({ dir, clock: () => TEST_T0, autoCompact: false });
  t.is([...kv.entries()].length, writers.length * COUNT);
  kv.closeSync();
});

test('a writer SIGKILLed mid-run keeps every key whose flush had resolved; a writer beside it loses nothing', async (t) => {
  const dir = tempStoreDir(t);
  KeyValueStore.openSync({ dir, autoCompact: false }).closeSync();
  const victim = child(t, 'victim');
  const survivor = child(t, 'survivor');
  await openChild(victim, dir);
  await openChild(survivor, dir);
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

  const { present } = found(dir, 'victim', lastAcked + 1000);
  t.true(present.length >= lastAcked + 1, `every acknowledged key is there: acked 0..${lastAcked}, found ${present.length}`);
  t.deepEqual(present, Array.from({ length: present.length }, (_, i) => i), 'what survives is a prefix: commits land in order');
  t.is(found(dir, 'survivor', 300).present.length, 300);
});
