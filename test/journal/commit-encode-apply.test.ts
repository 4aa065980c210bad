/**
 * The two engine modules both backends write and apply commits through
 * (src/engine/commit-encoder.ts, src/engine/commit-apply.ts): who a commit's
 * first line names, what a writer's stats count, how a commit is applied
 * back (spread records joined, the chain head, a writer's own commit in
 * doubt). The directory backend and Redis share these rules, so each case
 * holds for both.
 */
import test from 'ava';
import { CommitCounters, LineBudget, commitBytes, commitText, encodeCommit, type RecordToEncode } from '../../src/engine/commit-encoder.js';
import { applyCommitRecords, chainHeadAfter, isCommitInDoubt } from '../../src/engine/commit-apply.js';
import { CHAIN_START, LineDecoder, type JournalRecord, type Rejection } from '../../src/engine/record-codec.js';
import type { JournalWarning } from '../../src/engine/warnings.js';

const WRITER = '7@host';
const budget = (maxLineBytes = 1024 * 1024) => new LineBudget(JSON.stringify(WRITER), maxLineBytes);
const TIME = Date.UTC(2026, 10, 22, 10, 0, 0);
const rec = (type: string, payload: unknown): RecordToEncode => ({ time: TIME, type, payloadJson: JSON.stringify(payload) });

/** Decodes a commit's lines as a reader of one segment does. */
function decode(lines: readonly string[], decoder = new LineDecoder()): JournalRecord[] {
  return lines.map((line) => {
    const d = decoder.decode(line);
    if (!d.ok) throw new Error(d.rejection.message);
    return d.record;
  });
}

test('without linesBefore every commit names its writer; with them, only where the LineDecoder rule would not', (t) => {
  const b = budget();
  const first = encodeCommit([rec('kv.set', { key: 'a', value: 1 })], { firstSeq: 1, prev: CHAIN_START, tag: 'tag001', budget: b });
  t.true(first.lines[0]!.includes('"w":"7@host"'));
  const decoder = new LineDecoder();
  decode(first.lines, decoder);
  // The segment has said it: the next commit with the same tag leaves `w` out, and still reads as this writer's.
  const second = encodeCommit([rec('kv.set', { key: 'b', value: 2 }), rec('kv.set', { key: 'c', value: 3 })], { firstSeq: 2, prev: first.hash, tag: 'tag001', budget: b, linesBefore: decoder });
  t.false(second.lines.some((l) => l.includes('"w":')));
  t.deepEqual(decode(second.lines, decoder).map((r) => r.writer), [WRITER, WRITER]);
  // Another tag: the rule would not give this writer, so it is named.
  const other = encodeCommit([rec('kv.set', { key: 'd', value: 4 })], { firstSeq: 4, prev: second.hash, tag: 'tag002', budget: b, linesBefore: decoder });
  t.true(other.lines[0]!.includes('"w":"7@host"'));
  // Redis: no linesBefore, named whatever came before.
  t.true(encodeCommit([rec('kv.set', { key: 'e', value: 5 })], { firstSeq: 5, prev: other.hash, tag: 'tag001', budget: b }).lines[0]!.includes('"w":'));
});

test('a spread record takes one seq per line; the counters count it once, with the bytes of every line and newline', (t) => {
  const b = budget(2048);
  const big = 'x'.repeat(5000);
  const commit = encodeCommit([rec('kv.set', { key: 'big', value: big }), rec('kv.set', { key: 'small', value: 1 })], { firstSeq: 10, prev: CHAIN_START, tag: 'tag001', budget: b });
  const parts = commit.lines.length - 1;
  t.true(parts >= 3);
  t.deepEqual(commit.seqs, [10 + parts - 1, 10 + parts]);
  t.is(commit.header.count, commit.lines.length);
  t.true(commit.lines.every((l) => Buffer.byteLength(l) + 1 <= 2048));
  t.is(commitBytes(commit), Buffer.byteLength(commitText(commit)));
  const counters = new CommitCounters();
  counters.written(commit);
  counters.written(commit, 7);
  t.deepEqual(counters.stats, { commits: 2, recordsWritten: 4, bytesWritten: commitBytes(commit) + 7 });
});

test('applying: spread records joined, rejections at each of their lines, the chain head from the last line', (t) => {
  const commit = encodeCommit([rec('kv.set', { key: 'big', value: 'y'.repeat(5000) }), rec('kv.set', { key: 'small', value: 1 })], { firstSeq: 1, prev: CHAIN_START, tag: 'tag001', budget: budget(2048) });
  const records = decode(commit.lines);
  const places = records.map((_, i) => ({ file: 'seg', line: i + 1, offset: i * 100 }));
  const applied: string[] = [];
  const warnings: JournalWarning[] = [];
  let reportSmallLater: ((rejection: Rejection) => void) | undefined;
  applyCommitRecords(
    records,
    places,
    64 * 1024 * 1024,
    (record, later) => {
      const key = (record.payload as { key: string }).key;
      applied.push(key);
      if (key === 'small') reportSmallLater = later();
      return record.seq === commit.seqs[0] ? { code: 'INVALID_PAYLOAD', message: 'no' } : undefined;
    },
    (w) => warnings.push(w),
  );
  const lastPart = records.length - 2;
  t.deepEqual(applied, ['big', 'small']);
  t.deepEqual(warnings.map((w) => w.line), places.slice(0, lastPart + 1).map((p) => p.line));
  // A rejection found after the call (a value made at its first read) is warned at the record's own line, though the reader reuses its arrays.
  places.fill({ file: 'other', line: 999, offset: 0 });
  reportSmallLater!({ code: 'INVALID_DATE', message: 'found at first read' });
  t.like(warnings.at(-1), { code: 'INVALID_DATE', file: 'seg', line: lastPart + 2, offset: (lastPart + 1) * 100 });
  t.is(warnings.length, lastPart + 2);
  t.is(chainHeadAfter(records, 'before'), commit.hash);
  t.is(chainHeadAfter([], 'before'), 'before');
});

test("a writer's own commit in doubt: recognised by tag, first seq and writer; its records go to landed, never to the consumer", (t) => {
  const commit = encodeCommit([rec('kv.set', { key: 'a', value: 1 }), rec('kv.set', { key: 'b', value: 2 })], { firstSeq: 5, prev: CHAIN_START, tag: 'tag001', budget: budget() });
  const records = decode(commit.lines);
  const doubt = { tag: 'tag001', firstSeq: 5, writer: WRITER };
  t.true(isCommitInDoubt(doubt, records[0]!.commit, records[0]));
  t.false(isCommitInDoubt({ ...doubt, firstSeq: 4 }, records[0]!.commit, records[0]));
  t.false(isCommitInDoubt({ ...doubt, writer: '8@host' }, records[0]!.commit, records[0]));
  t.false(isCommitInDoubt({ ...doubt, tag: 'tag002' }, records[0]!.commit, records[0]));
  t.false(isCommitInDoubt(doubt, undefined, records[0]));
  t.false(isCommitInDoubt(undefined, records[0]!.commit, records[0]));
  const landed: number[] = [];
  applyCommitRecords(
    records,
    records.map((_, i) => ({ file: 'seg', line: i + 1, offset: i })),
    1024,
    () => t.fail('the consumer must not see an own commit'),
    () => t.fail('no warning'),
    (record) => landed.push(record.seq),
  );
  t.deepEqual(landed, commit.seqs);
});
