/**
 * The sync open (load) and the async one (loadAsync) run the same replay
 * steps; the async one only pauses between reads of a byte budget. So on
 * every fixture, damaged ones included (rotation markers, snapshots, torn
 * and over-long lines, orphans), both apply the same records and give the
 * same warnings, whatever the budget: a rule kept in one path only would
 * show here.
 */
import fs from 'node:fs';
import test from 'ava';
import type { JournalConsumer, JournalRecord, JournalWarning } from '../../src/index.js';
import { SegmentChain } from '../../src/storage/file/segment-chain.js';
import { copyFixtureStore } from '../helpers/fixture-store.js';
import { fixturePath } from '../helpers/temp-store.js';

interface Opened {
  events: string[];
  warnings: JournalWarning[];
  lastSeq: number;
  lastHash: string;
}

function chainOf(dir: string, maxLineBytes: number): { chain: SegmentChain; opened: Opened } {
  const opened: Opened = { events: [], warnings: [], lastSeq: 0, lastHash: '' };
  const consumer: JournalConsumer = {
    reset: () => opened.events.push('reset'),
    restore: (entry) => (opened.events.push(`restore ${JSON.stringify(entry)}`), undefined),
    apply: (r: JournalRecord) => (opened.events.push(`apply ${r.seq} ${r.type} ${JSON.stringify(r.payload)}`), undefined),
  };
  const chain = new SegmentChain({ dir, consumer, readOnly: true, maxLineBytes, maxRecordBytes: 64 * 1024 * 1024, warn: (w) => opened.warnings.push(w), isLockHeld: () => false, writerJson: JSON.stringify('1@test'), hashChain: true });
  return { chain, opened };
}

const finish = (chain: SegmentChain, opened: Opened): Opened => ({ ...opened, lastSeq: chain.lastSeq, lastHash: chain.lastHash });

for (const kind of ['journals', 'stores'] as const) {
  for (const name of fs.readdirSync(fixturePath(kind)).sort()) {
    for (const maxLineBytes of [1024 * 1024, 300]) {
      test(`${kind}/${name}, maxLineBytes ${maxLineBytes}: the async open with any budget applies and warns exactly as the sync open`, async (t) => {
        const dir = copyFixtureStore(t, name, kind);
        const sync = chainOf(dir, maxLineBytes);
        sync.chain.load(false);
        const expected = finish(sync.chain, sync.opened);
        t.true(expected.events.length > 1 || expected.warnings.length > 0 || name === 'empty-file', 'the fixture gives something to compare');
        for (const bytes of [1, 97, 4096, 64 * 1024]) {
          const paced: number[] = [];
          const async = chainOf(dir, maxLineBytes);
          await async.chain.loadAsync(false, (b) => (paced.push(b), undefined), bytes);
          t.deepEqual(finish(async.chain, async.opened), expected, `budget ${bytes}`);
          t.true(paced.every((b, i) => i === 0 || b >= paced[i - 1]!), `budget ${bytes}: the bytes replayed only grow`);
        }
      });
    }
  }
}
