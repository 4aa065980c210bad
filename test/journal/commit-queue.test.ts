/**
 * CommitQueue takes from the front by moving an index (issue 11) instead of
 * splicing the array. These tests hold it to the order and batching of a
 * plain array queue, over queues long enough to cross its compaction.
 */
import test from 'ava';
import { CommitQueue, type QueuedEntry } from '../../src/engine/commit-queue.js';
import { seededRandom } from '../helpers/child-protocol.js';

const entry = (bytes: number, deferred = false) => ({ type: 't', payloadJson: '{}', payloadBytes: bytes, time: 0, deferred });
const tickets = (batch: readonly QueuedEntry[]) => batch.map((e) => e.ticket);

test('take returns the oldest entries up to maxBytes, and at least one however large', (t) => {
  const queue = new CommitQueue();
  for (const bytes of [10, 10, 10, 50, 10]) queue.push(entry(bytes));
  t.deepEqual(tickets(queue.take(25)), [1, 2]);
  t.deepEqual(tickets(queue.take(5)), [3], 'one entry even when it alone exceeds the budget');
  t.deepEqual(tickets(queue.take(40)), [4], 'larger than the budget: alone');
  t.is(queue.size, 1);
  t.deepEqual(tickets(queue.take(1000)), [5]);
  t.is(queue.size, 0);
  t.deepEqual(queue.take(1000), [], 'an empty queue gives an empty batch');
});

test('restore puts a failed batch back in front, in order, with seq reset and urgency counted again', (t) => {
  const queue = new CommitQueue();
  queue.push(entry(1, true));
  queue.push(entry(1));
  queue.push(entry(1));
  const batch = queue.take(2);
  t.deepEqual(tickets(batch), [1, 2]);
  for (const e of batch) e.seq = 7;
  queue.take(1); // ticket 3 is in flight too
  t.false(queue.wantsCommit, 'nothing queued');
  queue.restore(batch);
  t.true(queue.wantsCommit, 'the restored urgent entry wants a commit');
  t.deepEqual(batch.map((e) => e.seq), [0, 0]);
  t.deepEqual(tickets(queue.take(100)), [1, 2]);
  t.false(queue.wantsCommit);
});

test('only deferred entries and nobody waiting: no commit wanted; a waiter wants one', async (t) => {
  const queue = new CommitQueue();
  const e = queue.push(entry(1, true));
  t.false(queue.wantsCommit);
  const done = queue.waitForAll();
  t.true(queue.wantsCommit);
  queue.take(10);
  queue.markDurable(e.ticket);
  await done;
  t.false(queue.hasWaiters);
});

/** The queue as it was: an array spliced at the front. */
class ArrayQueue {
  entries: QueuedEntry[] = [];
  push(e: QueuedEntry): void {
    this.entries.push(e);
  }
  take(maxBytes: number): QueuedEntry[] {
    let bytes = 0;
    let n = 0;
    while (n < this.entries.length && (n === 0 || bytes + this.entries[n]!.payloadBytes <= maxBytes)) bytes += this.entries[n++]!.payloadBytes;
    return this.entries.splice(0, n);
  }
  restore(batch: QueuedEntry[]): void {
    this.entries = batch.concat(this.entries);
  }
}

for (const seed of [1, 7, 99, 2026]) {
  test(`seed ${seed}: long queues taken and restored in random steps match an array queue`, (t) => {
    const random = seededRandom(seed);
    const queue = new CommitQueue();
    const reference = new ArrayQueue();
    const inFlight: QueuedEntry[][] = [];
    for (let step = 0; step < 20_000; step++) {
      const roll = random();
      if (roll < 0.5) {
        // Rare bursts build queues of thousands, past the compaction threshold.
        const burst = random() < 0.002 ? 3000 : 1 + Math.floor(random() * 3);
        for (let i = 0; i < burst; i++) reference.push(queue.push(entry(1 + Math.floor(random() * 100), random() < 0.2)));
      } else if (roll < 0.9) {
        const maxBytes = Math.floor(random() * 2000);
        const batch = queue.take(maxBytes);
        if (!t.deepEqual(tickets(batch), tickets(reference.take(maxBytes)), `step ${step}: take(${maxBytes})`)) return;
        if (batch.length > 0) inFlight.push(batch);
      } else if (inFlight.length > 0) {
        // A failed commit: the latest batch goes back (several failures in a row give back older ones after newer).
        const batch = inFlight.pop()!;
        queue.restore(batch);
        reference.restore(batch);
      }
      if (!t.is(queue.size, reference.entries.length, `step ${step}: size`)) return;
      const urgent = reference.entries.some((e) => !e.deferred);
      if (!t.is(queue.wantsCommit, urgent, `step ${step}: wantsCommit`)) return;
      if (random() < 0.01) inFlight.length = 0; // those committed
    }
    t.deepEqual(tickets(queue.take(Number.POSITIVE_INFINITY)), tickets(reference.take(Number.POSITIVE_INFINITY)));
  });
}
