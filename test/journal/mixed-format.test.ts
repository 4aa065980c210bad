/**
 * fixtures/stores/mixed-format-v1-v2: a store whose first segment was begun
 * by a format 1 writer and continued by format 2 writers (docs/FORMAT.md,
 * "Format 2: what changed from 1, and why"), then compacted, then appended
 * to. The engine's replay, verify and the `replay` command read it whole,
 * with every writer attributed, including format 2 lines without `w`.
 */
import test from 'ava';
import { SessionStore, verifyStore, type JournalWarning } from '../../src/index.js';
import { LineDecoder, decodeRecord } from '../../src/engine/record-codec.js';
import { copyFixtureStore } from '../helpers/fixture-store.js';
import { runCli } from '../helpers/compaction-helpers.js';

const FIXTURE = 'mixed-format-v1-v2';
const V1_WRITER = '8321@vm';
const V2_FIRST = '8398@vm';
const V2_SECOND = '8485@vm';
const V2_AFTER_COMPACTION = '8579@vm';
/** Who wrote each seq the readers apply (12 is the compactor's rotation marker, archived). */
const WRITERS = new Map<number, string>([
  ...[1, 2, 3, 4, 5].map((s): [number, string] => [s, V1_WRITER]),
  ...[6, 7, 8].map((s): [number, string] => [s, V2_FIRST]),
  ...[9, 10, 11].map((s): [number, string] => [s, V2_SECOND]),
  [13, V2_AFTER_COMPACTION],
]);
const HEAD = { seq: 13, h: '9cmmRSAXOb9dklMhEaauOy' };

test('the engine replays a store of format 1 lines followed by format 2 lines whole, without a warning', (t) => {
  const dir = copyFixtureStore(t, FIXTURE, 'stores');
  const warnings: JournalWarning[] = [];
  const store = SessionStore.openSync({ dir, autoCompact: false, onWarning: (w) => warnings.push(w), ttlMs: 1e13, clock: () => Date.parse('2026-05-06T12:00:00Z') });
  t.deepEqual(warnings, []);
  t.deepEqual(store.getSession('alpha')?.turns.map((x) => x.prompt), ['v1 first', 'v2 first, after the v1 lines', 'v2 second']);
  t.deepEqual(store.getSession('gamma')?.turns.map((x) => x.prompt), ['v2 from a second process', 'v2 after the compaction']);
  t.is(store.getSession('beta'), undefined);
});

test('verify reads both formats through one chain: clean, with the format 2 head', async (t) => {
  const dir = copyFixtureStore(t, FIXTURE, 'stores');
  const report = await verifyStore(dir);
  t.deepEqual(report.problems, []);
  t.true(report.ok);
  t.is(report.records, 13);
  t.deepEqual(report.head, HEAD);
});

test('the replay command prints every record once, each with its writer, format 2 lines without w included', async (t) => {
  const dir = copyFixtureStore(t, FIXTURE, 'stores');
  const run = await runCli(['replay', '--dir', dir, '--ndjson']);
  t.is(run.code, 0, run.stderr);
  t.is(run.stderr, '');
  const events = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as { seq: number; writer: string; ts: string });
  t.deepEqual(events.map((e) => e.seq), [...WRITERS.keys()]);
  for (const e of events) t.is(e.writer, WRITERS.get(e.seq) ?? "", `seq ${e.seq}`);
  t.is(events.find((e) => e.seq === 6)?.ts, '2026-05-05T09:02:00.000Z');
});

test('verify --expect-head takes a format 2 head, and still a format 1 (hex) one', async (t) => {
  const dir = copyFixtureStore(t, FIXTURE, 'stores');
  t.is((await runCli(['verify', '--dir', dir, '--expect-head', `${HEAD.seq}:${HEAD.h}`])).code, 0);
  const hex = (await runCli(['verify', '--dir', dir, '--expect-head', `5:${'0'.repeat(64)}`])).code;
  t.not(hex, 2, 'a hex head is not a usage error');
});

// The rule for a line without `w` (record-codec.ts, LineDecoder), case by case.
const line = (o: Record<string, unknown>): string => JSON.stringify({ v: 2, seq: 1, ts: 1777971720000, t: 'x.y', p: {}, ...o });
for (const [name, lines, expected] of [
  ['a line with w names its writer; the next commit with its tag is theirs', [line({ w: 'a', c: 'aaaa' }), line({ seq: 2, c: 'aaaa' })], ['a', 'a']],
  ['a line without c is its commit first line writer', [line({ w: 'a', c: 'aaaa', n: 2 }), line({ seq: 2 })], ['a', 'a']],
  ['two tags taking turns: each is its own', [line({ w: 'a', c: 'aaaa' }), line({ seq: 2, w: 'b', c: 'bbbb' }), line({ seq: 3, c: 'aaaa' }), line({ seq: 4, c: 'bbbb' })], ['a', 'b', 'a', 'b']],
  ['a tag the segment never named is unknown', [line({ c: 'cccc' })], ['?']],
  ['a damaged naming line: what relied on it is unknown, never another writer', [line({ w: 'a', c: 'aaaa' }), '{"v":2,"seq":2,"w":"b","c":"bbbb",BROKEN', line({ seq: 3, c: 'bbbb' })], ['a', undefined, '?']],
] as const) {
  test(`LineDecoder: ${name}`, (t) => {
    const decoder = new LineDecoder();
    t.deepEqual(lines.map((l) => {
      const d = decoder.decode(l);
      return d.ok ? d.record.writer : undefined;
    }), [...expected]);
  });
}

for (const [name, ts, ok] of [
  ['epoch ms', 1777971720000, true],
  ['year 0000', -62167219200000, true],
  ['year 9999, last ms', 253402300799999, true],
  ['past year 9999', 253402300800000, false],
  ['a fraction', 1777971720000.5, false],
  ['ISO text in a format 2 line', '2026-05-05T09:02:00.000Z', false],
  ['missing', undefined, false],
] as const) {
  test(`format 2 ts: ${name} is ${ok ? 'a time' : 'INVALID_DATE'}`, (t) => {
    const d = decodeRecord(JSON.stringify({ v: 2, seq: 1, ts, w: 'a', t: 'x.y', p: {} }));
    if (ok) t.true(d.ok);
    else t.is(d.ok ? undefined : d.rejection.code, 'INVALID_DATE');
  });
}
