/**
 * A record longer than maxLineBytes is written as `journal.part` lines inside
 * its own commit and joined by every reader (docs/FORMAT.md, "Records spread
 * over several lines"): the journal at open and when catching up, verify,
 * replay, repair and the compactor. maxRecordBytes bounds what is written and
 * what is joined.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { ErrorCodes, Journal, SessionStore, WarningCodes, compactSessions, type JournalRecord } from '../../src/index.js';
import { PART_EVENT } from '../../src/engine/record-codec.js';
import { collectWarnings, helperScript, tempStoreDir } from '../helpers/temp-store.js';
import { fingerprint, freshReplay, runCli } from '../helpers/compaction-helpers.js';
import { copyFixtureStore } from '../helpers/fixture-store.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { TEST_T0 } from '../helpers/fixture-now.js';
import { spreadValue } from '../helpers/spread-values.js';

const SEGMENT_1 = 'journal-00000001.ndjson';
/** The instant every store here runs at (an explicit clock: TEST_T0). */
const clockTime = (): Date => new Date(TEST_T0);

function kvJournal(dir: string, extra: Partial<Parameters<typeof Journal.openSync>[0]> = {}) {
  const state = new Map<string, unknown>();
  const applied: JournalRecord[] = [];
  const { warnings, onWarning } = collectWarnings();
  const journal = Journal.openSync({
    dir,
    onWarning,
    clock: () => TEST_T0,
    consumer: {
      reset: () => state.clear(),
      restore: () => undefined,
      apply: (r) => {
        applied.push(r);
        const p = r.payload as { key: string; value: unknown };
        state.set(p.key, p.value);
        return undefined;
      },
    },
    ...extra,
  });
  return { journal, state, applied, warnings };
}

/** Every line of a segment, parsed, with its length in bytes (without the newline). */
function linesOf(dir: string, name = SEGMENT_1): Array<{ bytes: number; record: Record<string, unknown> }> {
  const text = fs.readFileSync(path.join(dir, name));
  const out = [];
  for (let start = 0, nl = text.indexOf(10); nl !== -1; start = nl + 1, nl = text.indexOf(10, start)) {
    out.push({ bytes: nl - start, record: JSON.parse(text.toString('utf8', start, nl)) as Record<string, unknown> });
  }
  return out;
}

/** Each line's commit (the index of the line that opened it), read from the framing `c` and `n`. */
function commitsOf(lines: ReadonlyArray<{ record: Record<string, unknown> }>): Map<unknown, number> {
  const out = new Map<unknown, number>();
  let opener = -1;
  let left = 0;
  lines.forEach((l, i) => {
    if (left === 0 || l.record.c !== undefined) {
      opener = i;
      left = typeof l.record.n === 'number' ? l.record.n : 1;
    }
    out.set(l, opener);
    left--;
  });
  return out;
}

test('a record longer than maxLineBytes is written as journal.part lines in its commit, each within the limit; the entry has the seq of its last line, and a reopened journal applies it as one record', async (t) => {
  const dir = tempStoreDir(t);
  const big = spreadValue(60_000);
  const writer = kvJournal(dir, { maxLineBytes: 2048 });
  writer.journal.append('kv.set', { key: 'before', value: 1 });
  const entry = writer.journal.append('kv.set', { key: 'big', value: big });
  writer.journal.append('kv.set', { key: 'after', value: 2 });
  await writer.journal.close();

  const lines = linesOf(dir);
  const parts = lines.filter((l) => l.record.t === PART_EVENT);
  t.true(parts.length > 30, `spread over ${parts.length} parts`);
  for (const l of lines) t.true(l.bytes <= 2048, `a line of ${l.bytes} bytes`);
  // Every part is inside one commit: the commit's first line counts them among its lines.
  const commitOf = commitsOf(lines);
  t.is(new Set(parts.map((p) => commitOf.get(p))).size, 1);
  t.deepEqual(
    lines.map((l) => l.record.seq),
    lines.map((_, i) => i + 1),
    'each line keeps its own seq',
  );
  t.is(entry.seq, lines.length - 1, "the entry's seq is its last part's");

  const reader = kvJournal(dir, { readOnly: true });
  t.is(reader.state.get('big'), big);
  t.deepEqual(
    reader.applied.map((r) => [r.seq, r.type, r.lines]),
    [
      [1, 'kv.set', undefined],
      [entry.seq, 'kv.set', parts.length],
      [entry.seq + 1, 'kv.set', undefined],
    ],
  );
  t.is(reader.applied[1]!.hash, lines[lines.length - 2]!.record.h as string, 'the joined record carries the hash of its last line');
  t.is(reader.journal.lastSeq, lines.length);
  t.deepEqual(reader.warnings, []);
  await reader.journal.close();
});

test('a journal open in this process catches up on a spread record another process wrote meanwhile', async (t) => {
  const dir = tempStoreDir(t);
  const reader = kvJournal(dir, { maxLineBytes: 4096 });
  reader.journal.append('kv.set', { key: 'mine', value: 1 });
  await reader.journal.flush();
  const seq = Number(execFileSync(process.execPath, [helperScript('spread-writer.js'), dir, '4096', '200000'], { encoding: 'utf8' }).trim());
  t.false(reader.state.has('from-child'));
  reader.journal.catchUp();
  t.is(reader.state.get('from-child'), spreadValue(200_000));
  t.is(reader.journal.lastSeq, seq);
  // And it appends after it, chained from the last part.
  reader.journal.append('kv.set', { key: 'after', value: 2 });
  await reader.journal.close();
  const verify = await runCli(['verify', '--dir', dir, '--json']);
  t.is(verify.code, 0, verify.stdout);
  t.deepEqual(reader.warnings, []);
});

test('a session with a 300 KiB turn spread over lines of 64 KiB: verify is clean, replay prints it as one record, stats count it once, repair leaves every byte as it was', async (t) => {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(TEST_T0);
  const store = SessionStore.openSync({ dir, maxLineBytes: 64 * 1024, autoCompact: false, clock: () => clock.now });
  store.ensureSession('big');
  const response = spreadValue(300 * 1024);
  store.addTurn('big', { prompt: 'tell me everything', response, timestamp: new Date(clock.now) });
  clock.advance(1000);
  store.addTurn('big', { prompt: 'and a short one', response: 'ok', timestamp: new Date(clock.now) });
  await store.close();
  t.true(linesOf(dir).filter((l) => l.record.t === PART_EVENT).length >= 5);

  const verify = await runCli(['verify', '--dir', dir, '--json']);
  t.is(verify.code, 0, verify.stdout);

  const replay = await runCli(['replay', '--dir', dir, '--ndjson']);
  t.is(replay.code, 0, replay.stderr);
  const events = replay.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; seq: number; payload: { turn?: { response: string } } });
  t.deepEqual(events.map((e) => e.type), ['session.create', 'session.turn', 'session.turn']);
  t.is(events[1]!.payload.turn!.response, response);
  t.is(replay.stderr, '');

  const stats = await runCli(['stats', '--dir', dir, '--json', '--now', new Date(clock.now).toISOString()]);
  t.is(stats.code, 0, stats.stderr);
  t.is((JSON.parse(stats.stdout) as { writers: Array<{ records: number }> }).writers[0]!.records, 3);

  const before = fingerprint(dir);
  const repair = await runCli(['repair', '--dir', dir, '--json']);
  t.is(repair.code, 0, repair.stderr);
  t.is((JSON.parse(repair.stdout) as { status: string }).status, 'clean');
  t.deepEqual(fingerprint(dir), before, 'repair changed nothing');
});

test('a session with a 2 MiB turn (default limits) compacts, reopens with it, and the compacted history still verifies', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const clock = new FakeClock(TEST_T0);
  const store = SessionStore.openSync({ dir, autoCompact: false, onWarning, clock: () => clock.now });
  const response = spreadValue(2 * 1024 * 1024);
  store.ensureSession('huge');
  store.addTurn('huge', { prompt: 'q', response, timestamp: new Date(clock.now) });
  store.ensureSession('small');
  await store.close();
  const before = await freshReplay(dir, onWarning);

  const result = await compactSessions({ dir, onWarning, now: () => clock.now });
  t.is(result.status, 'compacted');
  t.deepEqual(await freshReplay(dir, onWarning), before);
  const reopened = SessionStore.openSync({ dir, autoCompact: false, onWarning, clock: () => clock.now });
  t.is(reopened.getSession('huge')?.turns[0]?.response, response);
  reopened.closeSync();
  const verify = await runCli(['verify', '--dir', dir, '--json']);
  t.is(verify.code, 0, verify.stdout);
  t.deepEqual(warnings, []);
});

test('maxRecordBytes: an append over it throws RECORD_TOO_LARGE before anything is queued; a limit over 256 MiB is INVALID_OPTION; lines too short to spread a record are LINE_TOO_LONG', (t) => {
  const dir = tempStoreDir(t);
  const { journal } = kvJournal(dir, { maxRecordBytes: 100_000 });
  const err = t.throws(() => journal.append('kv.set', { key: 'k', value: 'x'.repeat(100_000) }));
  t.like(err, { code: ErrorCodes.RECORD_TOO_LARGE });
  t.is(journal.pendingCount, 0);
  journal.append('kv.set', { key: 'k', value: 'x'.repeat(99_000) });
  journal.closeSync();
  t.throws(() => kvJournal(tempStoreDir(t), { maxRecordBytes: 257 * 1024 * 1024 }), { code: ErrorCodes.INVALID_OPTION });
  const narrow = kvJournal(tempStoreDir(t), { maxLineBytes: 400 });
  t.throws(() => narrow.journal.append('kv.set', { key: 'k', value: 'x'.repeat(1000) }), { code: ErrorCodes.LINE_TOO_LONG });
  t.is(narrow.journal.pendingCount, 0);
  narrow.journal.closeSync();
});

test('a reader with a smaller maxRecordBytes skips the record (RECORD_TOO_LARGE at each of its lines) and keeps the rest; a compaction with that limit refuses and changes nothing', async (t) => {
  const dir = tempStoreDir(t);
  const store = SessionStore.openSync({ dir, maxLineBytes: 8192, autoCompact: false, clock: () => TEST_T0 });
  store.ensureSession('s');
  store.addTurn('s', { prompt: 'big', response: 'r'.repeat(50_000), timestamp: clockTime() });
  store.addTurn('s', { prompt: 'small', response: 'ok', timestamp: clockTime() });
  await store.close();
  const partLines = linesOf(dir).flatMap((l, i) => (l.record.t === PART_EVENT ? [i + 1] : []));

  const { warnings, onWarning } = collectWarnings();
  const narrow = SessionStore.openSync({ dir, maxRecordBytes: 10_000, autoCompact: false, onWarning, clock: () => TEST_T0 });
  t.deepEqual(narrow.getSession('s')?.turns.map((x) => x.prompt), ['small']);
  narrow.closeSync();
  t.deepEqual(
    warnings.map((w) => [w.code, w.line]),
    partLines.map((line) => [WarningCodes.RECORD_TOO_LARGE, line]),
  );

  const before = fingerprint(dir);
  const err = await t.throwsAsync(compactSessions({ dir, maxRecordBytes: 10_000, onWarning: () => undefined, now: () => TEST_T0 }));
  t.like(err, { code: ErrorCodes.RECORD_TOO_LARGE });
  t.deepEqual(fingerprint(dir), before);
  const refused = await runCli(['compact', '--dir', dir, '--max-record-bytes', '10000', '--now', String(TEST_T0)]);
  t.is(refused.code, 4);
  t.regex(refused.stderr, /RECORD_TOO_LARGE[\s\S]*hint: pass --max-record-bytes/);
  const done = await runCli(['compact', '--dir', dir, '--now', String(TEST_T0)]);
  t.is(done.code, 0, done.stderr);
});

test('fixture damaged-spread-part: repair moves the record\'s parts aside with the damaged one, journals the gap, and verify is clean after', async (t) => {
  const dir = copyFixtureStore(t, 'damaged-spread-part');
  const before = await runCli(['verify', '--dir', dir, '--json']);
  t.is(before.code, 1);
  const problems = (JSON.parse(before.stdout) as { problems: Array<{ code: string; line: number }> }).problems;
  t.true(problems.some((p) => p.code === WarningCodes.INCOMPLETE_RECORD && p.line === 2), JSON.stringify(problems));
  const sessions = await freshReplay(dir, () => undefined);

  const run = await runCli(['repair', '--dir', dir, '--json']);
  t.is(run.code, 0, run.stderr);
  const doc = JSON.parse(run.stdout) as { gaps: Array<{ missing: [number, number] }>; files: Array<{ items: Array<{ line: number; reason: string }> }> };
  t.deepEqual(
    doc.files.flatMap((f) => f.items.map((i) => i.line)),
    [2, 3, 4, 5, 6, 7, 8],
    'every line of the broken record',
  );
  t.deepEqual(doc.gaps.map((g) => g.missing), [[2, 8]]);
  const { warnings, onWarning } = collectWarnings();
  t.deepEqual(await freshReplay(dir, onWarning), sessions);
  t.deepEqual(warnings, []);
  const after = await runCli(['verify', '--dir', dir, '--json']);
  t.is(after.code, 0, after.stdout);
});

test('fixture torn-spread-record: verify reports the unfinished commit at its first line; repair moves it aside and verify is clean after', async (t: ExecutionContext) => {
  const dir = copyFixtureStore(t, 'torn-spread-record');
  const before = await runCli(['verify', '--dir', dir, '--json']);
  t.is(before.code, 1);
  const problems = (JSON.parse(before.stdout) as { problems: Array<{ code: string; line: number }> }).problems;
  t.true(problems.some((p) => p.code === WarningCodes.INCOMPLETE_COMMIT && p.line === 2), JSON.stringify(problems));
  const run = await runCli(['repair', '--dir', dir, '--json']);
  t.is(run.code, 0, run.stderr);
  const after = await runCli(['verify', '--dir', dir, '--json']);
  t.is(after.code, 0, after.stdout);
  const { warnings, onWarning } = collectWarnings();
  const sessions = await freshReplay(dir, onWarning);
  t.deepEqual(sessions.map((s) => s.turns.map((x) => x.prompt)), [['after the torn write']]);
  t.deepEqual(warnings, []);
});

test('compaction keeps every line of a spread record it cannot fold aside (a tasks.* record in a session store), and folds the rest', async (t) => {
  const dir = tempStoreDir(t);
  const store = SessionStore.openSync({ dir, maxLineBytes: 4096, autoCompact: false, onWarning: () => undefined, clock: () => TEST_T0 });
  store.ensureSession('s');
  await store.flush();
  const other = kvJournal(dir, { maxLineBytes: 4096 });
  other.journal.append('tasks.create', { id: 't1', body: spreadValue(20_000) });
  await other.journal.close();
  store.addTurn('s', { prompt: 'after', response: 'ok', timestamp: clockTime() });
  await store.close();
  const parts = linesOf(dir).flatMap((l, i) => (l.record.t === PART_EVENT ? [i + 1] : []));
  t.true(parts.length > 5);

  const result = await compactSessions({ dir, maxLineBytes: 4096, onWarning: () => undefined, now: () => TEST_T0 });
  t.is(result.status, 'compacted');
  t.is(result.keptAside.lines, parts.length);
  const index = JSON.parse(fs.readFileSync(path.join(dir, result.keptAside.files[0]!.index), 'utf8')) as { items: Array<{ line: number; reason: string }> };
  t.deepEqual(
    index.items.map((i) => [i.line, i.reason]),
    parts.map((line) => [line, WarningCodes.UNKNOWN_EVENT_TYPE]),
  );
  const kept = fs.readFileSync(path.join(dir, result.keptAside.files[0]!.quarantine), 'utf8').trim().split('\n');
  t.is(kept.map((l) => (JSON.parse(l) as { p: { d: string } }).p.d).join(''), JSON.stringify({ body: spreadValue(20_000), id: 't1' }), 'the parts, verbatim, join into the record');
  const reopened = SessionStore.openSync({ dir, autoCompact: false, onWarning: () => undefined, clock: () => TEST_T0 });
  t.deepEqual(reopened.getSession('s')?.turns.map((x) => x.prompt), ['after']);
  reopened.closeSync();
});
