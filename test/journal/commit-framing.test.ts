/**
 * The commit framing rule (src/engine/commit-framing.ts), case by case: which
 * records readers apply, and what a damaged, torn, replaced or stale commit
 * becomes. Every reader of the store runs this rule, so each case here is a
 * promise about replay, catch-up, a writer checking its own bytes, and verify.
 */
import test from 'ava';
import { CommitAssembler, type FramedRecord } from '../../src/engine/commit-framing.js';

interface R extends FramedRecord {
  name: string;
}

/** One line of a segment, as a test writes it. */
type Line =
  | { rec: string; seq: number; c?: string; n?: number }
  | { damaged: true }
  | { sealed: true };

const rec = (name: string, seq: number, c?: string, n?: number): Line => ({ rec: name, seq, ...(c ? { c, n: n ?? 1 } : {}) });
const damaged: Line = { damaged: true };
const sealed: Line = { sealed: true };

function run(lines: Line[], lastSeq = 0) {
  const applied: string[][] = [];
  const rejected: Array<[string, string[]]> = [];
  const warnings: string[] = [];
  const framing = new CommitAssembler<R>(lastSeq, {
    applied: (records) => void applied.push(records.map((r) => r.name)),
    rejected: (records, header, why) => rejected.push([`${header.id}:${why}`, records.map((r) => r.name)]),
    warn: (w) => warnings.push(w.code),
  });
  lines.forEach((line, i) => {
    const place = { file: 'seg', line: i + 1, offset: i * 100 };
    if ('rec' in line) framing.record({ name: line.rec, seq: line.seq, ...(line.c ? { commit: { id: line.c, count: line.n ?? 1 } } : {}) }, place);
    else framing.unreadableLine(place, 'sealed' in line);
  });
  return { applied, rejected, warnings, lastSeq: framing.lastSeq, open: framing.openSince?.line };
}

const cases: Array<{ name: string; lines: Line[]; lastSeq?: number; applied: string[][]; rejected?: Array<[string, string[]]>; warnings?: string[]; open?: number; endSeq: number }> = [
  {
    name: 'records of older writers (no framing) are each a commit of their own',
    lines: [rec('a', 1), rec('b', 2), rec('c', 3)],
    applied: [['a'], ['b'], ['c']],
    endSeq: 3,
  },
  {
    name: 'an older writer under a lost lock: a regressing record is still applied, with a warning',
    lines: [rec('a', 1), rec('b', 2), rec('b2', 2)],
    applied: [['a'], ['b'], ['b2']],
    warnings: ['SEQUENCE_REGRESSION'],
    endSeq: 2,
  },
  {
    name: 'a commit of three is applied together once its third record is read',
    lines: [rec('a', 1, 'c1', 3), rec('b', 2), rec('c', 3), rec('d', 4, 'c2')],
    applied: [['a', 'b', 'c'], ['d']],
    endSeq: 4,
  },
  {
    name: 'a commit still being written (or cut short) at the end of the file is not applied yet',
    lines: [rec('x', 1, 'c0'), rec('a', 2, 'c1', 3), rec('b', 3)],
    applied: [['x']],
    open: 2,
    endSeq: 1,
  },
  {
    name: 'a commit cut short, then written again from the same seq: the first copy is dropped whole',
    lines: [rec('a', 1, 'c1', 3), rec('b', 2), rec('a', 1, 'c2', 3), rec('b', 2), rec('c', 3)],
    applied: [['a', 'b', 'c']],
    rejected: [['c1:incomplete', ['a', 'b']]],
    warnings: ['INCOMPLETE_COMMIT'],
    endSeq: 3,
  },
  {
    name: 'a torn record sealed by the next writer ends the commit it belonged to',
    lines: [rec('a', 1, 'c1', 3), rec('b', 2), sealed, rec('a', 1, 'c2', 2), rec('b', 2)],
    applied: [['a', 'b']],
    rejected: [['c1:incomplete', ['a', 'b']]],
    warnings: ['INCOMPLETE_COMMIT'],
    endSeq: 2,
  },
  {
    name: 'a damaged record inside a commit: its bytes were written, so the commit completes and the others are kept',
    lines: [rec('a', 1, 'c1', 3), damaged, rec('c', 3)],
    applied: [['a', 'c']],
    endSeq: 3,
  },
  {
    name: 'a damaged last record of the last commit: the commit still completes at its count of lines',
    lines: [rec('a', 1, 'c1', 3), rec('b', 2), damaged],
    applied: [['a', 'b']],
    endSeq: 2,
  },
  {
    name: 'a damaged count (n too large) does not cost the commit: the next header numbered past it completes it',
    lines: [rec('a', 1, 'c1', 9), rec('b', 2), rec('c', 3), rec('d', 4, 'c2')],
    applied: [['a', 'b', 'c'], ['d']],
    endSeq: 4,
  },
  {
    name: 'a stale writer (numbered from an out-of-date view) is dropped whole, and the chain goes on',
    lines: [rec('a', 1, 'c1'), rec('b', 2, 'c2'), rec('late1', 2, 'c3', 2), rec('late2', 3), rec('c', 3, 'c4')],
    applied: [['a'], ['b'], ['c']],
    rejected: [['c3:stale', ['late1', 'late2']]],
    warnings: ['STALE_COMMIT'],
    endSeq: 3,
  },
  {
    name: 'a stale commit is judged against the snapshot too',
    lines: [rec('old', 7, 'c1'), rec('new', 11, 'c2')],
    lastSeq: 10,
    applied: [['new']],
    rejected: [['c1:stale', ['old']]],
    warnings: ['STALE_COMMIT'],
    endSeq: 11,
  },
  {
    name: 'a line repeated inside a commit is skipped, not applied twice; nothing after it is lost',
    lines: [rec('a', 1, 'c1', 3), rec('b', 2), rec('b', 2), rec('c', 3)],
    applied: [['a', 'b'], ['c']],
    warnings: ['SEQUENCE_REGRESSION'],
    endSeq: 3,
  },
];

for (const c of cases) {
  test(c.name, (t) => {
    const result = run(c.lines, c.lastSeq);
    t.deepEqual(result.applied, c.applied);
    t.deepEqual(result.rejected, c.rejected ?? []);
    t.deepEqual(result.warnings, c.warnings ?? []);
    t.is(result.open, c.open);
    t.is(result.lastSeq, c.endSeq);
  });
}

test("a writer's own proven commit ends an unfinished one before it, as its header would for every reader", (t) => {
  const rejected: string[] = [];
  const framing = new CommitAssembler<R>(0, { applied: () => undefined, rejected: (_r, h, why) => rejected.push(`${h.id}:${why}`), warn: () => undefined });
  framing.record({ name: 'a', seq: 1, commit: { id: 'c1', count: 2 } }, { file: 'seg', line: 1, offset: 0 });
  framing.ownCommit(1, 2, { file: 'seg', line: 2, offset: 50 });
  t.deepEqual(rejected, ['c1:incomplete']);
  t.is(framing.lastSeq, 2);
  t.is(framing.openSince, undefined);
});
