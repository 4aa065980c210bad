/**
 * `session-journal repair`, run as the real binary against committed damaged
 * stores (fixtures/stores/repair-*, fixtures/journals/*): the quarantine holds
 * exactly the bad bytes, the journal replays without a warning afterwards,
 * every valid record is kept and the hash chain is intact; --dry-run changes
 * nothing; locks; a live writer appending during the repair loses nothing.
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { TORN_SEAL, chainHashOf, decodeRecord } from '../../src/engine/record-codec.js';
import { WarningCodes, type JournalWarning } from '../../src/index.js';
import { openChildren, killAll } from '../helpers/child-protocol.js';
import { collectWarnings, fixturePath, tempStoreDir } from '../helpers/temp-store.js';
import { copyFixtureStore } from '../helpers/fixture-store.js';
import { matchesGoldenJson } from '../helpers/golden.js';
import { STORES_NOW } from '../helpers/fixture-now.js';
import { timeline } from '../helpers/child-clock.js';
import { holdLock } from '../helpers/held-lock.js';
import { fingerprint, freshReplay, runCli as runCliWithin, type PlainSession } from '../helpers/compaction-helpers.js';

/** The binary, with a generous kill timeout: these tests spawn many processes on a possibly busy machine. */
const runCli = (args: string[], options: Parameters<typeof runCliWithin>[1] = {}) => runCliWithin(args, { timeoutMs: 120_000, ...options });

const REPO = new URL('../../../', import.meta.url).pathname;
const GOLDEN = path.join(REPO, 'test/golden/export');
const STORE_FIXTURES = ['repair-torn-mid-file', 'repair-garbage', 'repair-zero-filled-tail', 'repair-torn-live-tail'];
/** Warning codes of bytes that are not records: what repair removes. */
const DAMAGE = new Set<string>([WarningCodes.UNPARSABLE_LINE, WarningCodes.INCOMPLETE_RECORD, WarningCodes.ZERO_FILLED, WarningCodes.NOT_AN_OBJECT, WarningCodes.INVALID_ENVELOPE, WarningCodes.INCOMPLETE_TAIL, WarningCodes.BOM_IGNORED]);

interface Item {
  file: string;
  line: number;
  offset: number;
  length: number;
  reason: string;
  message: string;
  quarantineOffset: number;
}
interface RepairedFile {
  file: string;
  quarantine: string | null;
  index: string | null;
  bytesBefore: number;
  bytesAfter: number;
  items: Item[];
}
interface RepairDoc {
  status: string;
  dryRun: boolean;
  rotated: { closed: string; next: string } | null;
  wouldRotate?: string | null;
  files: RepairedFile[];
  itemsMoved: number;
  bytesMoved: number;
  left: { file: string; line: number; offset: number; reason: string; message: string }[];
}

/** Copies a committed store (fixtures/<kind>/<name>) into a private temp dir, 0700 / 0600. */
const copyStore = (t: ExecutionContext, kind: 'stores' | 'journals', name: string): string => copyFixtureStore(t, name, kind);

function segmentBytes(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const n of fs.readdirSync(dir).filter((n) => /^journal-\d{8,}\.ndjson$/.test(n))) out.set(n, fs.readFileSync(path.join(dir, n)));
  return out;
}

async function replayWarnings(dir: string): Promise<{ sessions: PlainSession[]; warnings: JournalWarning[] }> {
  const { warnings, onWarning } = collectWarnings();
  const sessions = await freshReplay(dir, onWarning);
  return { sessions, warnings };
}

/** Every record's `h` links to the one before (from the base snapshot's head), across segments in order. */
function checkChain(t: ExecutionContext, dir: string, damaged = false): number {
  const names = fs.readdirSync(dir).sort();
  const snapshots = names.filter((n) => /^snapshot-\d{8,}\.ndjson$/.test(n));
  let prev = '';
  let base = 0;
  if (snapshots.length > 0) {
    const header = JSON.parse(fs.readFileSync(path.join(dir, snapshots[snapshots.length - 1]!), 'utf8').split('\n')[0]!) as { h: string; segment: number };
    prev = header.h;
    base = header.segment;
  }
  let checked = 0;
  for (const n of names.filter((n) => /^journal-\d{8,}\.ndjson$/.test(n) && Number(n.slice(8, -7)) >= base)) {
    for (const line of fs.readFileSync(path.join(dir, n), 'utf8').split('\n')) {
      if (line === '') continue;
      if (damaged && !decodeRecord(line).ok) continue;
      t.true(decodeRecord(line).ok, `${n}: a record: ${line.slice(0, 80)}`);
      const raw = JSON.parse(line) as { v: unknown; seq: unknown; ts: unknown; w: unknown; t: unknown; p: unknown; h: string };
      t.is(raw.h, chainHashOf(prev, raw), `${n} seq ${String(raw.seq)}: chain link`);
      prev = raw.h;
      checked++;
    }
  }
  return checked;
}

/** `bytes` without the given ranges. */
function without(bytes: Buffer, items: readonly { offset: number; length: number }[]): Buffer {
  const parts: Buffer[] = [];
  let from = 0;
  for (const i of [...items].sort((a, b) => a.offset - b.offset)) {
    parts.push(bytes.subarray(from, i.offset));
    from = i.offset + i.length;
  }
  parts.push(bytes.subarray(from));
  return Buffer.concat(parts);
}

/**
 * The quarantine holds exactly the bad bytes (and its index says where each
 * came from), and the rewritten segment is the original without them: the
 * good lines byte for byte, plus, for the segment that was live, the newline
 * and rotation marker the repair's rotation appended.
 */
function checkQuarantine(t: ExecutionContext, dir: string, before: Map<string, Buffer>, doc: RepairDoc): void {
  for (const f of doc.files) {
    const original = before.get(f.file)!;
    const bad = fs.readFileSync(path.join(dir, f.quarantine!));
    const index = JSON.parse(fs.readFileSync(path.join(dir, f.index!), 'utf8')) as { file: string; items: Item[] };
    t.is(index.file, f.file);
    t.deepEqual(index.items, f.items, 'the index lists the items of the report');
    t.is(bad.length, f.items.reduce((n, i) => n + i.length, 0), 'nothing else in the quarantine file');
    let appended = Buffer.alloc(0);
    if (doc.rotated?.closed === f.file && original[original.length - 1] !== 0x0a) appended = Buffer.from(TORN_SEAL, 'latin1'); // the rotation sealed the torn tail
    const closedOriginal = Buffer.concat([original, appended]);
    for (const item of f.items) {
      t.deepEqual(bad.subarray(item.quarantineOffset, item.quarantineOffset + item.length), closedOriginal.subarray(item.offset, item.offset + item.length), `${f.file}:${item.line} quarantined byte for byte`);
    }
    const now = fs.readFileSync(path.join(dir, f.file));
    const kept = without(closedOriginal, f.items);
    t.deepEqual(now.subarray(0, kept.length), kept, `${f.file}: the good bytes are kept, byte for byte, in order`);
    const rest = now.subarray(kept.length).toString('utf8');
    if (doc.rotated?.closed === f.file) {
      const marker = decodeRecord(rest.replace(/\n$/, ''));
      t.true(marker.ok && marker.record.type === 'journal.rotate', `${f.file} ends with the rotation marker`);
    } else {
      t.is(rest, '', `${f.file}: nothing added`);
    }
    t.is(now.length, f.bytesAfter);
  }
}

function normalize(doc: RepairDoc): unknown {
  const text = JSON.stringify(doc, null, 2).replace(/\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}Z/g, '<TIME>');
  const out = JSON.parse(text) as RepairDoc;
  // V8's JSON.parse messages change between Node versions.
  for (const f of out.files) for (const i of f.items) i.message = i.message.replace(/^(not valid JSON[^:]*): .*$/, '$1: <parser message>');
  // The rotation marker names the repairing process (pid@host): its length varies.
  for (const f of out.files) {
    if (out.rotated?.closed !== f.file) continue;
    const removed = f.bytesBefore - f.bytesAfter;
    (f as unknown as Record<string, unknown>).bytesBefore = '<varies: ends with the rotation marker>';
    (f as unknown as Record<string, unknown>).bytesAfter = `<bytesBefore - ${removed}>`;
  }
  for (const l of out.left) l.message = l.message.replace(/^(not valid JSON[^:]*): .*(; left in place.*)$/, '$1: <parser message>$2');
  return out;
}

const golden = (t: ExecutionContext, name: string, actual: unknown): void => matchesGoldenJson(t, path.join(GOLDEN, name), actual);

for (const name of STORE_FIXTURES) {
  test(`repair ${name}: quarantine holds exactly the bad bytes, the journal is clean, every record kept, the chain intact`, async (t) => {
    const dir = copyStore(t, 'stores', name);
    const before = segmentBytes(dir);
    const damaged = await replayWarnings(dir);
    t.true(damaged.warnings.some((w) => DAMAGE.has(w.code)), 'the fixture is damaged');
    const recordsBefore = checkChain(t, dir, true);

    const run = await runCli(['repair', '--dir', dir, '--json']);
    t.is(run.code, 0, run.stderr);
    t.is(run.stderr, '');
    t.is(run.stdout.split('\n').filter(Boolean).length, 1, 'one JSON document');
    const doc = JSON.parse(run.stdout) as RepairDoc;
    t.is(doc.status, 'repaired');
    t.true(doc.itemsMoved > 0);
    t.deepEqual(doc.left, []);
    checkQuarantine(t, dir, before, doc);
    golden(t, `repair-json-${name}.json`, normalize(doc));

    const repaired = await replayWarnings(dir);
    t.deepEqual(repaired.warnings, [], 'replay finds nothing to skip');
    t.deepEqual(repaired.sessions, damaged.sessions, 'the same sessions: every valid record kept');
    t.is(checkChain(t, dir), recordsBefore + (doc.rotated ? 1 : 0), 'every record kept (plus the rotation marker), the chain intact');

    const verify = await runCli(['verify', '--dir', dir, '--json']);
    t.is(verify.code, 0, `verify after repair: ${verify.stdout}${verify.stderr}`);

    // A second run finds nothing and writes nothing.
    const quarantined = fs.readdirSync(path.join(dir, 'quarantine')).sort();
    const again = await runCli(['repair', '--dir', dir, '--json']);
    t.is(again.code, 0);
    t.is((JSON.parse(again.stdout) as RepairDoc).status, 'clean');
    t.deepEqual(fs.readdirSync(path.join(dir, 'quarantine')).sort(), quarantined);
  });
}

test('repair --dry-run reports the same items, changes nothing, takes no lock, exits 0 as the repair would', async (t) => {
  const dir = copyStore(t, 'stores', 'repair-garbage');
  const print = fingerprint(dir);
  const release = holdLock(t, dir, 'compact.lock'); // held by a "compaction": a dry run does not wait for it
  const run = await runCli(['repair', '--dir', dir, '--dry-run', '--json']);
  t.is(run.code, 0, run.stderr);
  t.is(run.stderr, '');
  const doc = JSON.parse(run.stdout) as RepairDoc;
  t.is(doc.status, 'would-repair');
  t.is(doc.wouldRotate, 'journal-00000001.ndjson');
  t.true(doc.files.every((f) => f.quarantine === null && f.index === null));
  golden(t, 'repair-dry-run-json-repair-garbage.json', normalize(doc));
  release();
  t.deepEqual(fingerprint(dir), print, 'nothing changed');

  const real = JSON.parse((await runCli(['repair', '--dir', dir, '--json'])).stdout) as RepairDoc;
  t.deepEqual(
    real.files.map((f) => f.items),
    doc.files.map((f) => f.items),
    'the dry run announced exactly what moved',
  );
});

test('repair prints what moved and where; a clean store: "clean", exit 0, no quarantine directory', async (t) => {
  const dir = copyStore(t, 'stores', 'repair-torn-mid-file');
  const run = await runCli(['repair', '--dir', dir]);
  t.is(run.code, 0, run.stderr);
  t.is(run.stderr, '');
  const lines = run.stdout.split('\n').filter(Boolean);
  t.regex(lines[0]!, /^moved 1 item \(132 bytes\) out of journal-00000001\.ndjson to quarantine\/journal-00000001\.ndjson\.\S+\.bad \(index quarantine\/journal-00000001\.ndjson\.\S+\.json\)$/);
  t.regex(lines[1]!, /^ {2}line 4, byte 660, 132 bytes: UNPARSABLE_LINE /);
  t.is(lines[lines.length - 1], 'repaired: 1 item, 132 bytes moved to quarantine');
  t.false(run.stdout.includes('\u001b['), 'no colour when stdout is not a terminal');

  const clean = await runCli(['repair', '--dir', dir]);
  t.deepEqual(clean, { code: 0, stdout: 'clean: nothing to repair\n', stderr: '' });

  const fresh = copyStore(t, 'journals', 'crlf-line-endings');
  t.deepEqual(await runCli(['repair', '--dir', fresh]), { code: 0, stdout: 'clean: nothing to repair\n', stderr: '' });
  t.false(fs.existsSync(path.join(fresh, 'quarantine')));
});

test('repair shows binary garbage escaped, never raw control bytes', async (t) => {
  const dir = copyStore(t, 'stores', 'repair-garbage');
  const run = await runCli(['repair', '--dir', dir, '--dry-run']);
  t.is(run.code, 0);
  t.false(/[\u0000-\u0008\u000b-\u001f]/.test(run.stdout), 'no control characters but newlines');
  t.regex(run.stdout, /\\x00/);
});

// Every damaged-journal fixture: repair leaves the state as a writer would see it and nothing a replay skips as damage.
const JOURNAL_FIXTURES = fs.readdirSync(fixturePath('journals')).sort();
for (const name of JOURNAL_FIXTURES) {
  test(`repair fixtures/journals/${name}: same state, no damage left, quarantine exact`, async (t) => {
    const dir = copyStore(t, 'journals', name);
    const expectedDir = copyStore(t, 'journals', name);
    // What every writer does before appending: seal an unfinished last line (record separator, newline).
    const segs = [...segmentBytes(expectedDir).keys()].sort();
    const live = segs[segs.length - 1];
    if (live) {
      const bytes = fs.readFileSync(path.join(expectedDir, live));
      if (bytes.length > 0 && bytes[bytes.length - 1] !== 0x0a) fs.appendFileSync(path.join(expectedDir, live), Buffer.from(TORN_SEAL, 'latin1'));
    }
    const expected = await replayWarnings(expectedDir);
    const before = segmentBytes(dir);

    const run = await runCli(['repair', '--dir', dir, '--json']);
    t.is(run.code, 0, run.stderr);
    const doc = JSON.parse(run.stdout) as RepairDoc;
    checkQuarantine(t, dir, before, doc);
    const after = await replayWarnings(dir);
    t.deepEqual(after.sessions, expected.sessions);
    t.deepEqual(
      after.warnings.filter((w) => DAMAGE.has(w.code)),
      [],
      'no damage left',
    );
    // What replay still skips for other reasons is listed, not touched.
    for (const l of doc.left) t.true([WarningCodes.UNSUPPORTED_VERSION, WarningCodes.LINE_TOO_LONG].includes(l.reason as 'LINE_TOO_LONG'), l.reason);
  });
}

test('repair leaves records of a newer format version in place and lists them', async (t) => {
  const dir = copyStore(t, 'journals', 'future-version-3');
  const print = fingerprint(dir);
  const run = await runCli(['repair', '--dir', dir, '--json']);
  t.is(run.code, 0);
  const doc = JSON.parse(run.stdout) as RepairDoc;
  t.is(doc.status, 'clean');
  t.deepEqual(
    doc.left.map((l) => [l.line, l.reason]),
    [
      [3, 'UNSUPPORTED_VERSION'],
      [4, 'UNSUPPORTED_VERSION'],
    ],
  );
  t.deepEqual(fingerprint(dir), print);
});

test('an unfinished tail while a writer holds the journal lock is left alone (it may be an append in progress)', async (t) => {
  const dir = copyStore(t, 'stores', 'repair-torn-live-tail');
  const print = fingerprint(dir);
  const release = holdLock(t, dir, 'journal.lock'); // a writer is in its commit
  for (const args of [['--dry-run'], []]) {
    const run = await runCli(['repair', '--dir', dir, '--json', '--lock-timeout', '300ms', ...args]);
    t.is(run.code, 0, run.stderr);
    const doc = JSON.parse(run.stdout) as RepairDoc;
    t.is(doc.status, 'clean');
    t.is(doc.left.length, 1);
    t.is(doc.left[0]!.reason, 'INCOMPLETE_TAIL');
    t.regex(doc.left[0]!.message, /writer holds the journal lock/);
  }
  release();
  t.deepEqual(fingerprint(dir), print, 'nothing changed');
});

test('repair while another compaction holds compact.lock: exit 3 after --lock-timeout, nothing changed', async (t) => {
  const dir = copyStore(t, 'stores', 'repair-garbage');
  holdLock(t, dir, 'compact.lock');
  const print = fingerprint(dir);
  const run = await runCli(['repair', '--dir', dir, '--lock-timeout', '300ms']);
  t.is(run.code, 3, run.stderr);
  t.is(run.stdout, '');
  t.regex(run.stderr, /^session-journal repair: LOCK_TIMEOUT: .*\nhint: .*retry/);
  t.deepEqual(fingerprint(dir), print);
});

test('repair with damage in the live segment while writers hold the journal lock: exit 3, nothing changed', async (t) => {
  const dir = copyStore(t, 'stores', 'repair-garbage');
  holdLock(t, dir, 'journal.lock');
  const print = fingerprint(dir);
  const run = await runCli(['repair', '--dir', dir, '--lock-timeout', '300ms']);
  t.is(run.code, 3, run.stderr);
  t.regex(run.stderr, /LOCK_TIMEOUT/);
  t.deepEqual(fingerprint(dir), print);
  t.false(fs.existsSync(path.join(dir, 'compact.lock')), 'its compaction lock released');
});

test('repair: usage errors exit 2, a missing store exits 4, --help exits 0', async (t) => {
  const missing = tempStoreDir(t);
  const run = await runCli(['repair', '--dir', missing]);
  t.is(run.code, 4);
  t.regex(run.stderr, /^session-journal repair: STORE_NOT_FOUND: /);
  t.false(fs.existsSync(missing));
  t.is((await runCli(['repair', '--dir', missing, '--lock-timeout', 'soon'])).code, 2);
  t.is((await runCli(['repair', '--dir', missing, 'extra'])).code, 2);
  t.is((await runCli(['repair'])).code, 2);
  const help = await runCli(['repair', '--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /^Usage: session-journal repair --dir DIR/);
});

test('repair beside a live writer process appending all the time: every acknowledged turn survives', async (t) => {
  const dir = copyStore(t, 'stores', 'repair-garbage');
  const damaged = await replayWarnings(dir);
  // The writer runs at the fixture's now: on the wall clock its 24 h TTL would expire the fixture's sessions.
  const [writer] = await openChildren(1, 'repair-writer', { dir, fsync: false, clock: timeline(STORES_NOW.repair) });
  t.teardown(() => killAll([writer!]));
  // It writes until the repair is over (at most `count`), however fast or slow the machine.
  const count = 1_000_000;
  writer!.send({ op: 'write', writer: 'w', sessions: ['live-a', 'live-b'], count, flushEvery: 1, pauseMs: 2, untilStopped: true });
  while (writer!.acked < 50) await new Promise((resolve) => setTimeout(resolve, 10));

  const run = await runCli(['repair', '--dir', dir, '--json']);
  t.is(run.code, 0, run.stderr);
  const doc = JSON.parse(run.stdout) as RepairDoc;
  t.is(doc.status, 'repaired');
  t.truthy(doc.rotated);
  t.true(writer!.acked < count - 1, `the repair ran while the writer was still writing (acked ${writer!.acked})`);

  writer!.send({ op: 'stop-writing' });
  const written = ((await writer!.next('done', 60_000)) as unknown as { count: number }).count;
  await writer!.close();
  const after = await replayWarnings(dir);
  t.deepEqual(after.warnings, [], 'clean');
  const prompts = after.sessions.filter((s) => s.id.startsWith('live-')).flatMap((s) => s.turns.map((turn) => turn.prompt));
  t.is(prompts.length, written, 'every turn the writer wrote is there');
  t.deepEqual([...prompts].sort(), Array.from({ length: written }, (_, i) => `w:${i}`).sort());
  t.deepEqual(
    after.sessions.filter((s) => !s.id.startsWith('live-')),
    damaged.sessions,
    "the fixture's sessions are unchanged",
  );
  checkChain(t, dir);
});
