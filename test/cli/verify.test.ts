/**
 * `session-journal verify`, run as the real binary against committed fixture
 * stores (fixtures/stores/verify-*: a clean store with an archive, snapshots
 * and a live segment, and copies of it damaged by hand in one way each). The
 * --json output of each is compared with a golden file (test/golden/verify/;
 * regenerate with UPDATE_GOLDEN=1 after checking the difference).
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { chainHashOf } from '../../src/engine/record-codec.js';
import { SessionStore } from '../../src/index.js';
import { compactSessions } from '../../src/index.js';
import { tempStoreDir } from '../helpers/temp-store.js';
import { copyFixtureStore } from '../helpers/fixture-store.js';
import { matchesGoldenJson } from '../helpers/golden.js';
import { FakeClock, HOUR, T0, fingerprint, openStore, randomHistory, runCli } from '../helpers/compaction-helpers.js';
import { seededRandom } from '../helpers/child-protocol.js';
import { holdLock } from '../helpers/held-lock.js';

interface Report {
  ok: boolean;
  problems: Array<{ code: string; file: string | null; line: number | null; offset: number | null; message: string }>;
  notes: Array<{ code: string; file: string | null; line: number | null; message: string }>;
  records: number;
  segments: number;
  head: { seq: number; h: string };
  expectedHead?: { seq: number; h: string; found: boolean; matches: boolean; chainIntact: boolean };
}

const GOLDEN = new URL('../../../test/golden/verify/', import.meta.url).pathname;

/** Copies fixtures/stores/<name> to a private temp store (0700 directories, 0600 files). */
const copyStore = (t: ExecutionContext, name: string): string => copyFixtureStore(t, name, 'stores');

async function verifyJson(dir: string, extra: string[] = []): Promise<{ code: number | null; report: Report; stderr: string }> {
  const run = await runCli(['verify', '--dir', dir, '--json', ...extra]);
  let report: Report;
  try {
    report = JSON.parse(run.stdout) as Report;
  } catch {
    throw new Error(`verify printed no JSON document (exit ${run.code}): ${run.stderr}`);
  }
  return { code: run.code, report, stderr: run.stderr };
}

const golden = (t: ExecutionContext, name: string, actual: unknown): void => matchesGoldenJson(t, path.join(GOLDEN, `${name}.json`), actual);

const HEAD = { seq: 31, h: '48675b553dc51e6ffa9765bc4b94999539d510c13b7e9d9953ec0c7b238fe2bf' };
const LIVE = 'journal-00000003.ndjson';

/** Each damaged copy, and the one problem (code, file, line) verify must name first. */
const DAMAGED: Array<[string, string, string, number | null, number]> = [
  ['verify-edited-prompt', 'RECORD_EDITED', LIVE, 3, 1],
  ['verify-edited-archive', 'RECORD_EDITED', 'archive/journal-00000001.ndjson.gz', 10, 2],
  ['verify-deleted-line', 'RECORD_MISSING', LIVE, 5, 1],
  ['verify-inserted-line', 'RECORD_INSERTED', LIVE, 5, 1],
  ['verify-swapped-lines', 'RECORD_MOVED', LIVE, 6, 1],
  ['verify-hash-removed', 'HASH_MISSING', LIVE, 7, 1],
  ['verify-invalid-date', 'INVALID_DATE', LIVE, 2, 2],
  ['verify-snapshot-header', 'SNAPSHOT_HEADER_MISMATCH', 'snapshot-00000003.ndjson', 1, 1],
  ['verify-snapshot-contents', 'SNAPSHOT_STATE_MISMATCH', 'snapshot-00000003.ndjson', 3, 1],
  ['verify-torn-line', 'INCOMPLETE_TAIL', LIVE, 10, 1],
];

test('the clean fixture verifies: exit 0, no problems, the golden document, nothing on stderr', async (t) => {
  const dir = copyStore(t, 'verify-clean');
  const { code, report, stderr } = await verifyJson(dir);
  t.is(code, 0, stderr);
  t.is(stderr, '');
  t.true(report.ok);
  t.deepEqual(report.problems, []);
  t.is(report.records, 31);
  t.is(report.segments, 3);
  t.deepEqual(report.head, HEAD);
  golden(t, 'verify-clean', report);
});

for (const [name, code, file, line, count] of DAMAGED) {
  test(`verify catches ${name}: exit 1, ${code} at ${file}:${line}`, async (t) => {
    const dir = copyStore(t, name);
    const before = fingerprint(dir);
    const run = await verifyJson(dir);
    t.is(run.code, 1, run.stderr);
    t.is(run.stderr, '', 'no progress bar or warnings when stderr is not a terminal');
    t.false(run.report.ok);
    t.is(run.report.problems.length, count, JSON.stringify(run.report.problems, null, 2));
    const first = run.report.problems[0]!;
    t.like(first, { code, file, line });
    if (line !== null && !file.endsWith('.gz')) {
      // The byte offset is where that line starts in the file.
      const bytes = fs.readFileSync(path.join(dir, file));
      let offset = 0;
      for (let n = 1; n < line; n++) offset = bytes.indexOf(0x0a, offset) + 1;
      t.is(first.offset, offset);
    }
    golden(t, name, run.report);
    t.deepEqual(fingerprint(dir), before, 'verify changed nothing');
    // The human report names the same place and code, on stdout.
    const human = await runCli(['verify', '--dir', dir]);
    t.is(human.code, 1);
    t.true(human.stdout.includes(`${file}:${line}`), human.stdout);
    t.true(human.stdout.includes(code));
    t.regex(human.stdout, /FAILED: \d+ problems?\n$/);
  });
}

test('the edited archive also makes the archived snapshot disagree with the (edited) history', async (t) => {
  const { report } = await verifyJson(copyStore(t, 'verify-edited-archive'));
  t.like(report.problems[1], { code: 'SNAPSHOT_STATE_MISMATCH', file: 'archive/snapshot-00000002.ndjson.gz', line: 3 });
});

test('an edited date is reported as an invalid date and as an edit', async (t) => {
  const { report } = await verifyJson(copyStore(t, 'verify-invalid-date'));
  t.deepEqual(
    report.problems.map((p) => [p.code, p.line]),
    [
      ['INVALID_DATE', 2],
      ['RECORD_EDITED', 2],
    ],
  );
});

test('a pruned archive: the chain is checked from the snapshot, with notes and exit 0', async (t) => {
  const dir = copyStore(t, 'verify-pruned');
  const { code, report } = await verifyJson(dir);
  t.is(code, 0);
  t.deepEqual(report.problems, []);
  t.deepEqual(
    report.notes.map((n) => n.code),
    ['CHAIN_FROM_SNAPSHOT', 'STATE_NOT_COMPARED'],
  );
  golden(t, 'verify-pruned', report);
  // The same store with the live snapshot's head changed: the first record does not chain from it.
  const snap = path.join(dir, 'snapshot-00000003.ndjson');
  const text = fs.readFileSync(snap, 'utf8');
  const h = (JSON.parse(text.split('\n')[0]!) as { h: string }).h;
  fs.writeFileSync(snap, text.replace(h, '0'.repeat(64)));
  const bad = await verifyJson(dir);
  t.is(bad.code, 1);
  t.like(bad.report.problems[0], { code: 'SNAPSHOT_HEADER_MISMATCH', file: 'snapshot-00000003.ndjson', line: 1 });
  t.is(bad.report.problems.length, 1);
});

test('verify --head prints SEQ:HASH on one line (and a document with --json)', async (t) => {
  const dir = copyStore(t, 'verify-clean');
  const run = await runCli(['verify', '--dir', dir, '--head']);
  t.deepEqual(run, { code: 0, stdout: `${HEAD.seq}:${HEAD.h}\n`, stderr: '' });
  const json = await runCli(['verify', '--dir', dir, '--head', '--json']);
  t.deepEqual(JSON.parse(json.stdout), { head: HEAD });
  // The pruned copy has the same head.
  t.is((await runCli(['verify', '--dir', copyStore(t, 'verify-pruned'), '--head'])).stdout, `${HEAD.seq}:${HEAD.h}\n`);
});

/** Rewrites the live segment of `dir` with `edit` applied to line `line` and every hash after it recomputed: plain verify cannot tell. */
function editAndRehash(dir: string, line: number, edit: (s: string) => string): void {
  const file = path.join(dir, LIVE);
  const lines = fs.readFileSync(file, 'utf8').split('\n').slice(0, -1);
  let prev = (JSON.parse(fs.readFileSync(path.join(dir, 'snapshot-00000003.ndjson'), 'utf8').split('\n')[0]!) as { h: string }).h;
  const out = lines.map((text, i) => {
    const o = JSON.parse(i === line - 1 ? edit(text) : text) as Record<string, unknown>;
    delete o.h;
    o.h = chainHashOf(prev, o as never);
    prev = o.h as string;
    return JSON.stringify(o);
  });
  fs.writeFileSync(file, out.map((l) => `${l}\n`).join(''));
}

test('verify --expect-head proves nothing before a recorded head changed, even after a rehash', async (t) => {
  const dir = copyStore(t, 'verify-clean');
  const recorded = `${HEAD.seq}:${HEAD.h}`;
  const ok = await verifyJson(dir, ['--expect-head', recorded]);
  t.is(ok.code, 0);
  t.deepEqual(ok.report.expectedHead, { ...HEAD, found: true, matches: true, chainIntact: true });
  // An older head recorded earlier: seq 22, the rotation marker in the archive.
  const archived = zlib.gunzipSync(fs.readFileSync(path.join(dir, 'archive/journal-00000002.ndjson.gz'))).toString('utf8').trim().split('\n');
  const marker = JSON.parse(archived[archived.length - 1]!) as { seq: number; h: string };
  t.is((await verifyJson(dir, ['--expect-head', `${marker.seq}:${marker.h}`])).code, 0);
  const human = await runCli(['verify', '--dir', dir, '--expect-head', recorded]);
  t.is(human.code, 0);
  t.regex(human.stdout, /expected {2}31:[0-9a-f]{64} {2}unchanged up to it/);

  // Someone edits a prompt and recomputes every hash after it: plain verify passes...
  editAndRehash(dir, 3, (s) => s.replace('prompt two', 'prompt 2'));
  const plain = await verifyJson(dir);
  t.is(plain.code, 0, 'a full rehash is invisible without a recorded head');
  t.not(plain.report.head.h, HEAD.h);
  // ...but not against the head recorded before.
  const caught = await verifyJson(dir, ['--expect-head', recorded]);
  t.is(caught.code, 1);
  t.deepEqual(caught.report.problems.map((p) => p.code), ['EXPECTED_HEAD_MISMATCH']);
  t.like(caught.report.expectedHead, { found: true, matches: false });
  // The older recorded head still holds: nothing before it changed.
  t.is((await verifyJson(dir, ['--expect-head', `${marker.seq}:${marker.h}`])).code, 0);
});

test('verify --expect-head: beyond the head, pruned away, from a snapshot header, and bad values', async (t) => {
  const dir = copyStore(t, 'verify-clean');
  const beyond = await verifyJson(dir, ['--expect-head', `40:${HEAD.h}`]);
  t.is(beyond.code, 1);
  t.deepEqual(beyond.report.problems.map((p) => p.code), ['EXPECTED_HEAD_NOT_FOUND']);

  const pruned = copyStore(t, 'verify-pruned');
  const gone = await verifyJson(pruned, ['--expect-head', `5:${HEAD.h}`]);
  t.is(gone.code, 1);
  t.deepEqual(gone.report.problems.map((p) => p.code), ['EXPECTED_HEAD_UNAVAILABLE']);
  // seq 22 is the marker folded into the live snapshot: its header still carries the hash.
  const snapHead = (JSON.parse(fs.readFileSync(path.join(pruned, 'snapshot-00000003.ndjson'), 'utf8').split('\n')[0]!) as { seq: number; h: string });
  const viaSnapshot = await verifyJson(pruned, ['--expect-head', `${snapHead.seq}:${snapHead.h}`]);
  t.is(viaSnapshot.code, 0);
  t.like(viaSnapshot.report.expectedHead, { found: true, matches: true });

  for (const bad of ['31', '31:xyz', `0:${HEAD.h}`, `x:${HEAD.h}`]) {
    const run = await runCli(['verify', '--dir', dir, '--expect-head', bad]);
    t.is(run.code, 2, bad);
    t.regex(run.stderr, /--expect-head/);
  }
});

test('verify takes no lock: it runs while journal.lock is held and leaves it', async (t) => {
  const dir = copyStore(t, 'verify-clean');
  // Held (kept fresh) for the whole test: on a busy machine two verify runs can outlast the 10 s stale limit.
  const releaseJournal = holdLock(t, dir, 'journal.lock');
  const releaseCompact = holdLock(t, dir, 'compact.lock');
  const before = fingerprint(dir);
  const { code, report } = await verifyJson(dir);
  t.is(code, 0);
  t.true(report.ok);
  t.deepEqual(fingerprint(dir), before);
  releaseJournal();
  releaseCompact();
  // With a writer holding the lock, an unfinished last line may be an append in progress: not a problem.
  const torn = copyStore(t, 'verify-torn-line');
  holdLock(t, torn, 'journal.lock');
  t.is((await verifyJson(torn)).code, 0);
});

test('verify on a missing store: exit 4; without --dir: exit 2; --help: exit 0', async (t) => {
  const missing = await runCli(['verify', '--dir', tempStoreDir(t)]);
  t.is(missing.code, 4);
  t.regex(missing.stderr, /^session-journal verify: STORE_NOT_FOUND: /);
  t.is((await runCli(['verify'])).code, 2);
  const help = await runCli(['verify', '--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /^Usage: session-journal verify --dir DIR/);
  t.regex(help.stdout, /--expect-head SEQ:HASH/);
});

test('a store written with hashChain: false: one HASH_MISSING problem for the whole unchained run', async (t) => {
  const dir = tempStoreDir(t);
  const store = SessionStore.openSync({ dir, hashChain: false, fsync: false, autoCompact: false });
  for (let i = 0; i < 20; i++) store.ensureSession(`s${i}`);
  await store.close();
  const { code, report } = await verifyJson(dir);
  t.is(code, 1);
  t.is(report.problems.length, 1);
  t.like(report.problems[0], { code: 'HASH_MISSING', file: 'journal-00000001.ndjson', line: 1 });
  t.regex(report.problems[0]!.message, /^20 consecutive records have no hash \(lines 1-20, seq 1-20\)/);
});

test('stores written and compacted by the library verify clean (random histories, several compactions)', async (t) => {
  for (const seed of [1, 2, 3]) {
    const dir = tempStoreDir(t);
    const clock = new FakeClock(T0);
    const store = openStore(dir, () => undefined, { clock: clock.read });
    const rnd = seededRandom(seed);
    for (let round = 0; round < 3; round++) {
      await randomHistory(store, clock, rnd, 150);
      clock.advance(30 * HOUR);
      await compactSessions({ dir, now: clock.read, ttlMs: 24 * HOUR, maxSessions: 10, onWarning: () => undefined });
    }
    await randomHistory(store, clock, rnd, 50);
    await store.close();
    const { code, report } = await verifyJson(dir);
    t.is(code, 0, JSON.stringify(report.problems, null, 2));
    t.deepEqual(report.notes, []);
    t.is(report.segments, 4);
  }
});

test('a duplicated line and a line moved far away are explained, without a cascade', async (t) => {
  const dir = copyStore(t, 'verify-clean');
  const file = path.join(dir, LIVE);
  const lines = fs.readFileSync(file, 'utf8').split('\n').slice(0, -1);
  const dup = [...lines.slice(0, 4), lines[3]!, ...lines.slice(4)];
  fs.writeFileSync(file, dup.map((l) => `${l}\n`).join(''));
  const d = await verifyJson(dir);
  t.deepEqual(d.report.problems.map((p) => [p.code, p.line]), [['RECORD_INSERTED', 5]]);

  const moved = [lines[0]!, lines[2]!, lines[3]!, lines[4]!, lines[5]!, lines[1]!, ...lines.slice(6)];
  fs.writeFileSync(file, moved.map((l) => `${l}\n`).join(''));
  const m = await verifyJson(dir);
  t.deepEqual(m.report.problems.map((p) => [p.code, p.line]), [
    ['RECORD_MOVED', 2],
    ['RECORD_MOVED', 6],
  ]);
});
