/**
 * The archive: folded segments and superseded snapshots move to archive/ as
 * gzip (byte-exact), or are deleted with `archive: { keep: false }`; the
 * archive is pruned by age and by count. Large segments are compressed in
 * steps while the fold runs, and the fold keeps pace with the gzip.
 */
import test from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import os from 'node:os';
import { PrefixArchiver } from '../../src/storage/file/prefix-archiver.js';
import { listHistorySegments } from '../../src/storage/file/history-reader.js';
import { ErrorCodes, SessionJournalError, compactSessions } from '../../src/index.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';
import { DAY, FakeClock, NO_TTL, T0, deadPid, fingerprint, freshReplay, names, openStore, segmentsIn, snapshotsIn, writeAgedSessions } from '../helpers/compaction-helpers.js';

async function writeSome(dir: string, onWarning: (w: import('../../src/index.js').JournalWarning) => void, clock: FakeClock, ids: string[]): Promise<void> {
  const store = openStore(dir, onWarning, { clock: clock.read });
  await writeAgedSessions(store, clock, ids, 1000);
  await store.close();
}

const read = (...p: string[]) => fs.readFileSync(path.join(...p));

test('archive: folded segments and the old snapshot move to archive/ as gzip, byte-identical after gunzip', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const clock = new FakeClock(T0);
  const opts = { dir, onWarning, ttlMs: NO_TTL, now: () => clock.now };
  const archive = path.join(dir, 'archive');

  await writeSome(dir, onWarning, clock, ['a', 'b']);
  const segment1 = read(dir, 'journal-00000001.ndjson');
  const first = await compactSessions(opts);
  t.is(first.segmentsArchived, 1);
  t.deepEqual(fs.readdirSync(archive).sort(), ['journal-00000001.ndjson.gz']);
  const gz1 = read(archive, 'journal-00000001.ndjson.gz');
  t.true(gz1[0] === 0x1f && gz1[1] === 0x8b, 'gzip magic');
  const unzipped1 = zlib.gunzipSync(gz1);
  // The archived segment is the original plus the rotation marker the compaction appended.
  t.true(unzipped1.subarray(0, segment1.length).equals(segment1), 'the original bytes, unchanged');
  const tail = unzipped1.subarray(segment1.length).toString('utf8');
  t.true(tail.endsWith('\n') && !tail.slice(0, -1).includes('\n'), 'one more line');
  const marker = JSON.parse(tail) as { t: string; p: unknown };
  t.is(marker.t, 'journal.rotate');
  t.deepEqual(marker.p, { next: 2 });
  t.is(fs.statSync(archive).mode & 0o777, 0o700, 'archive/ is private');
  t.is(fs.statSync(path.join(archive, 'journal-00000001.ndjson.gz')).mode & 0o777, 0o600);

  await writeSome(dir, onWarning, clock, ['c']);
  const snapshot2 = read(dir, 'snapshot-00000002.ndjson');
  const segment2 = read(dir, 'journal-00000002.ndjson');
  const second = await compactSessions(opts);
  t.is(second.segmentsArchived, 1);
  t.deepEqual(fs.readdirSync(archive).sort(), ['journal-00000001.ndjson.gz', 'journal-00000002.ndjson.gz', 'snapshot-00000002.ndjson.gz']);
  t.true(zlib.gunzipSync(read(archive, 'snapshot-00000002.ndjson.gz')).equals(snapshot2), 'the old snapshot, byte-identical');
  t.true(zlib.gunzipSync(read(archive, 'journal-00000002.ndjson.gz')).subarray(0, segment2.length).equals(segment2));
  t.deepEqual(snapshotsIn(dir), ['snapshot-00000003.ndjson']);
  t.deepEqual(segmentsIn(dir), ['journal-00000003.ndjson']);
  t.false(names(dir).some((n) => n.includes('.tmp-')), 'no temporary file is left');
  t.false(fs.readdirSync(archive).some((n) => n.includes('.tmp-')));
  t.deepEqual((await freshReplay(dir, onWarning)).map((s) => s.id), ['a', 'b', 'c']);
  t.deepEqual(warnings, []);
});

test('archive: { keep: false } deletes folded files instead of archiving them', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const clock = new FakeClock(T0);
  const opts = { dir, onWarning, ttlMs: NO_TTL, now: () => clock.now, archive: { keep: false } };
  await writeSome(dir, onWarning, clock, ['a']);
  t.is((await compactSessions(opts)).segmentsArchived, 1);
  await writeSome(dir, onWarning, clock, ['b']);
  await compactSessions(opts);
  t.deepEqual(names(dir).filter((n) => n !== 'journal.lock'), ['journal-00000003.ndjson', 'snapshot-00000003.ndjson'], 'only the live segment and the new snapshot remain');
  t.false(fs.existsSync(path.join(dir, 'archive')) && fs.readdirSync(path.join(dir, 'archive')).length > 0, 'nothing archived');
  t.deepEqual((await freshReplay(dir, onWarning)).map((s) => s.id), ['a', 'b']);
  t.deepEqual(warnings, []);
});

/**
 * Seeds archive/ with gzip files whose mtimes are `agesDays` days before T0:
 * the compactions that prune them run at `now: atT0`. (What a compaction
 * archives itself is stamped by the file system, later than T0: the newest.)
 */
const atT0 = () => T0;

function seedArchive(dir: string, agesDays: number[]): string[] {
  const archive = path.join(dir, 'archive');
  fs.mkdirSync(archive, { recursive: true, mode: 0o700 });
  return agesDays.map((age, i) => {
    const name = `journal-${String(90 + i).padStart(8, '0')}.ndjson.gz`;
    const file = path.join(archive, name);
    fs.writeFileSync(file, zlib.gzipSync(`old ${i}\n`), { mode: 0o600 });
    const when = (T0 - age * DAY) / 1000;
    fs.utimesSync(file, when, when);
    return name;
  });
}

test('pruneArchive by age: archived files older than maxAgeMs are deleted, younger ones and other names kept', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  await writeSome(dir, onWarning, new FakeClock(T0), ['a']);
  const seeded = seedArchive(dir, [45, 31, 29, 2]);
  fs.writeFileSync(path.join(dir, 'archive', 'NOTES.txt'), 'kept: not an archive name\n');
  const result = await compactSessions({ dir, onWarning, ttlMs: NO_TTL, now: atT0, archive: { maxAgeMs: 30 * DAY } });
  t.is(result.archiveFilesPruned, 2);
  t.deepEqual(fs.readdirSync(path.join(dir, 'archive')).sort(), ['NOTES.txt', 'journal-00000001.ndjson.gz', seeded[2]!, seeded[3]!].sort());
  t.deepEqual(warnings, []);
});

test('pruneArchive by count: only the maxFiles newest archived files are kept', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  await writeSome(dir, onWarning, new FakeClock(T0), ['a']);
  const seeded = seedArchive(dir, [5, 1, 4, 2, 3]);
  const result = await compactSessions({ dir, onWarning, ttlMs: NO_TTL, now: atT0, archive: { maxFiles: 3 } });
  t.is(result.archiveFilesPruned, 3, 'five seeded + one new, three kept');
  // Newest: the segment just archived (now), then 1 and 2 days old.
  t.deepEqual(fs.readdirSync(path.join(dir, 'archive')).sort(), ['journal-00000001.ndjson.gz', seeded[1]!, seeded[3]!].sort());
  t.deepEqual(warnings, []);
});

test('archive/ symlinked to another directory: compaction refuses with SYMLINK_REFUSED before changing anything, and the files there (old archives, a dead writer\'s temp file) are left alone', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  await writeSome(dir, onWarning, new FakeClock(T0), ['a', 'b']);
  const elsewhere = path.join(path.dirname(dir), 'elsewhere');
  fs.mkdirSync(elsewhere, { mode: 0o700 });
  const old = path.join(elsewhere, 'journal-00000090.ndjson.gz');
  fs.writeFileSync(old, zlib.gzipSync('not the store\'s\n'), { mode: 0o600 });
  const when = (T0 - 45 * DAY) / 1000;
  fs.utimesSync(old, when, when);
  fs.writeFileSync(path.join(elsewhere, `journal-00000091.ndjson.gz.tmp-${os.hostname()}-${await deadPid()}-deadbeef`), 'partial', { mode: 0o600 });
  fs.symlinkSync(elsewhere, path.join(dir, 'archive'));
  const before = { store: fingerprint(dir), elsewhere: fingerprint(elsewhere) };

  // keep: false reaches the pruning without archiving anything; the default archives first.
  for (const archive of [{ keep: false, maxAgeMs: 30 * DAY }, { maxAgeMs: 30 * DAY }]) {
    const err = await t.throwsAsync(compactSessions({ dir, onWarning, ttlMs: NO_TTL, archive }), { instanceOf: SessionJournalError });
    t.is((err as SessionJournalError).code, ErrorCodes.SYMLINK_REFUSED, JSON.stringify(archive));
    t.deepEqual(fingerprint(elsewhere), before.elsewhere, 'nothing deleted or written through the link');
    t.deepEqual(fingerprint(dir), before.store, 'the store itself is unchanged: no rotation, no snapshot');
  }
  // Readers refuse it the same way rather than list through it.
  t.is(t.throws(() => listHistorySegments(dir), { instanceOf: SessionJournalError })?.code, ErrorCodes.SYMLINK_REFUSED);
  t.deepEqual(warnings, []);
});

test('pruneArchive also runs when there is nothing to compact', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  await writeSome(dir, onWarning, new FakeClock(T0), ['a']);
  await compactSessions({ dir, onWarning, ttlMs: NO_TTL });
  const seeded = seedArchive(dir, [10, 1]);
  const result = await compactSessions({ dir, onWarning, ttlMs: NO_TTL, now: atT0, archive: { maxAgeMs: 5 * DAY } });
  t.is(result.status, 'nothing-to-do');
  t.is(result.archiveFilesPruned, 1);
  t.deepEqual(fs.readdirSync(path.join(dir, 'archive')).sort(), ['journal-00000001.ndjson.gz', seeded[1]!].sort());
  t.deepEqual(warnings, []);
});

test('archive of a multi-MiB segment: compressed in 1 MiB steps while the fold runs, plus what was appended during the fold, byte-identical after gunzip', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const clock = new FakeClock(T0);
  const store = openStore(dir, onWarning, { clock: clock.read });
  const id = store.createSession();
  // Text that compresses poorly, so the gzip has real work in several steps.
  const noise = (i: number) => crypto.createHash('sha256').update(String(i)).digest('hex').repeat(400);
  for (let i = 0; i < 160; i++) store.addTurn(id, { prompt: noise(i), response: `r${i}`, timestamp: new Date(clock.now) });
  await store.flush();
  const prefixBytes = fs.statSync(path.join(dir, 'journal-00000001.ndjson')).size;
  t.true(prefixBytes > 3 * 1024 * 1024, `segment of ${prefixBytes} bytes`);

  let segmentAtArchive: Buffer | undefined;
  const result = await compactSessions({
    dir,
    onWarning,
    ttlMs: NO_TTL,
    now: () => clock.now,
    onStep: async (step) => {
      if (step === 'replayed') {
        // After the sizes for the ahead-of-time gzip were taken: this lands in the tail.
        store.addTurn(id, { prompt: 'during the fold', response: 'tail', timestamp: new Date(clock.now) });
        await store.flush();
      }
      if (step === 'snapshot-written') segmentAtArchive = read(dir, 'journal-00000001.ndjson');
    },
  });
  await store.close();
  t.is(result.status, 'compacted');
  t.true(segmentAtArchive !== undefined && segmentAtArchive.length > prefixBytes, 'the segment grew during the compaction');
  const unzipped = zlib.gunzipSync(read(dir, 'archive', 'journal-00000001.ndjson.gz'));
  t.true(unzipped.equals(segmentAtArchive!), 'prefix and tail together are the segment as folded, byte for byte');
  t.deepEqual(warnings, []);
});

test('PrefixArchiver pacing: a replay far ahead of the gzip waits for it, and a prefix that cannot be made releases the wait instead of hanging', async (t) => {
  const dir = tempStoreDir(t);
  fs.mkdirSync(dir, { mode: 0o700 });
  const size = 12 * 1024 * 1024;
  fs.writeFileSync(path.join(dir, 'journal-00000001.ndjson'), crypto.randomBytes(size), { mode: 0o600 });
  const archiver = new PrefixArchiver(dir, new Map([['journal-00000001.ndjson', size], ['journal-00000002.ndjson', 4096]]));
  t.is(archiver.paceTo(1024), undefined, 'a replay within the lead never waits');
  const wait = archiver.paceTo(size);
  t.true(wait instanceof Promise, 'a replay 12 MiB ahead waits');
  await wait;
  const prefix = await archiver.take('journal-00000001.ndjson');
  t.true(prefix !== undefined && zlib.gunzipSync(fs.readFileSync(prefix.tempPath)).equals(fs.readFileSync(path.join(dir, 'journal-00000001.ndjson'))));
  // journal-00000002.ndjson does not exist: its job fails, counts as done, and the failure comes with take().
  await archiver.paceTo(size + 4096);
  t.is(archiver.paceTo(size + 4096), undefined);
  const err = await t.throwsAsync(archiver.take('journal-00000002.ndjson'));
  t.is((err as { code?: string }).code, ErrorCodes.IO_ERROR);
  await archiver.dispose();
  fs.unlinkSync(prefix!.tempPath);
  t.deepEqual(fs.readdirSync(dir), ['journal-00000001.ndjson'], 'no temporary file left');
});
