/**
 * A read of the chain within a byte budget (ChainReader.readChain) stops
 * when the budget is spent and leaves the reader's offsets where it
 * stopped: the next read goes on from there. This is what the async open
 * pauses between (loadAsync), so a stop must lose no line and apply none
 * twice, inside a segment, inside a commit, at a rotation marker, and on a
 * line longer than a whole budget.
 */
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { Journal, type JournalConsumer, type JournalRecord, type JournalWarning } from '../../src/index.js';
import { ByteBudget } from '../../src/storage/file/byte-budget.js';
import type { ChainRead } from '../../src/storage/file/chain-reader.js';
import { SegmentChain } from '../../src/storage/file/segment-chain.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';

/** Records applied, in order, as `seq:key`. */
function recordingConsumer(): { applied: string[]; consumer: JournalConsumer } {
  const applied: string[] = [];
  const consumer: JournalConsumer = {
    reset: () => (applied.length = 0),
    restore: () => undefined,
    apply: (r: JournalRecord) => {
      applied.push(`${r.seq}:${(r.payload as { key: string }).key}`);
      return undefined;
    },
  };
  return { applied, consumer };
}

/** The chain of a store, read without an open, one budget at a time. */
class BudgetedChain extends SegmentChain {
  constructor(dir: string, consumer: JournalConsumer, warnings: JournalWarning[]) {
    const writer = '1@test';
    super({ dir, consumer, readOnly: true, maxLineBytes: 1024 * 1024, maxRecordBytes: 64 * 1024 * 1024, warn: (w) => warnings.push(w), isLockHeld: () => false, writerJson: JSON.stringify(writer), hashChain: true });
  }

  readWithin(bytes: number): ChainRead {
    return this.readChain(new ByteBudget(bytes), undefined);
  }

  get position(): { segment: number; offset: number; size: number } | undefined {
    return this.current && { segment: this.current.number, offset: this.current.reader.offset, size: this.current.reader.size() };
  }
}

/** Two segments (a rotation marker between them), commits of several lines, lines of uneven length, and one line far longer than the budgets. */
async function buildStore(dir: string): Promise<void> {
  const { onWarning } = collectWarnings();
  const journal = Journal.openSync({ dir, consumer: recordingConsumer().consumer, onWarning });
  for (let i = 0; i < 300; i++) journal.append('kv.set', { key: `a${i}`, value: 'x'.repeat((i * 37) % 400) });
  await journal.flush();
  journal.append('kv.set', { key: 'long', value: 'y'.repeat(20_000) });
  await journal.flush();
  await journal.rotate();
  for (let i = 0; i < 200; i++) journal.append('kv.set', { key: `b${i}`, value: 'z'.repeat((i * 53) % 300) });
  await journal.close();
}

test('a budgeted read stopped mid-segment goes on exactly where it stopped: every line applied once, in order, whatever the budget', async (t) => {
  const dir = tempStoreDir(t);
  await buildStore(dir);
  t.true(fs.existsSync(path.join(dir, 'journal-00000002.ndjson')), 'the store has two segments');

  const whole = recordingConsumer();
  const reference = new BudgetedChain(dir, whole.consumer, []);
  t.is(reference.readWithin(Number.POSITIVE_INFINITY).stop, 'end');
  t.is(whole.applied.length, 501);

  for (const bytes of [1, 97, 700, 4096, 64 * 1024]) {
    const seen = recordingConsumer();
    const warnings: JournalWarning[] = [];
    const chain = new BudgetedChain(dir, seen.consumer, warnings);
    let reads = 0;
    let stoppedInside = 0;
    for (;;) {
      const before = chain.position;
      const read = chain.readWithin(bytes);
      reads++;
      if (read.stop !== 'budget') {
        t.is(read.stop, 'end', `budget ${bytes}`);
        break;
      }
      const after = chain.position!;
      if (after.offset > 0 && after.offset < after.size) stoppedInside++;
      // Progress every time, and within the budget unless one line alone is longer than it.
      t.true(before === undefined || after.segment !== before.segment || after.offset > before.offset, `budget ${bytes}: read ${reads} made progress`);
      if (before && after.segment === before.segment && bytes >= 1024) t.true(after.offset - before.offset <= Math.max(bytes, 21_000), `budget ${bytes}: read ${reads} stayed within it`);
      // What was read so far is a prefix of the whole replay: nothing skipped, nothing twice.
      t.deepEqual(seen.applied, whole.applied.slice(0, seen.applied.length), `budget ${bytes}: after read ${reads}`);
    }
    t.deepEqual(seen.applied, whole.applied, `budget ${bytes}: the same records as one unlimited read`);
    t.deepEqual(warnings, [], `budget ${bytes}`);
    t.true(stoppedInside > 0, `budget ${bytes}: some read stopped inside a segment`);
    if (bytes < 64 * 1024) t.true(reads > 5, `budget ${bytes}: ${reads} reads`);
  }
});
