/**
 * Snapshot reads are bounded (DEFAULT_SNAPSHOT_LIMITS: 1 GiB a snapshot,
 * 128 MiB a line): past a bound a snapshot is { ok: false } with the reason
 * (readers report SNAPSHOT_UNREADABLE and use an older base), never a thrown
 * ERR_STRING_TOO_LONG; and writeSnapshotSync refuses to publish what readers
 * would refuse (SNAPSHOT_TOO_LARGE, nothing left behind). Small limits
 * stand in for the defaults here; test/cli/non-regular-files.test.ts runs a
 * real 300 MB line against the defaults.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { readArchivedSnapshotSync, readSnapshotSync } from '../../src/storage/file/snapshot-file.js';
import { writeSnapshotSync } from '../../src/storage/file/snapshot-writer.js';
import { SessionJournalError } from '../../src/index.js';
import { tempStoreDir } from '../helpers/temp-store.js';

const LIMITS = { maxSnapshotBytes: 4096, maxSnapshotLineBytes: 256 };
const HASH = '0'.repeat(64);

function storeDir(t: Parameters<typeof tempStoreDir>[0]): string {
  const dir = tempStoreDir(t);
  fs.mkdirSync(dir, { mode: 0o700 });
  return dir;
}

const entries = (n: number, bytes: number) => Array.from({ length: n }, (_, i) => ({ id: `s${i}`, pad: 'x'.repeat(bytes) }));

test('a snapshot within the limits is written and read back', (t) => {
  const dir = storeDir(t);
  const written = writeSnapshotSync(dir, 2, 5, HASH, entries(3, 100), LIMITS);
  const read = readSnapshotSync(written.path, () => undefined, LIMITS);
  t.true(read.ok);
  t.is(read.ok && read.entries.length, 3);
});

for (const [name, list, why] of [
  ['a line over maxSnapshotLineBytes', entries(1, 300), /maxSnapshotLineBytes/],
  ['a snapshot over maxSnapshotBytes', entries(40, 200), /maxSnapshotBytes/],
] as const) {
  test(`${name} is read as unreadable with the reason, and never written (SNAPSHOT_TOO_LARGE, no file left)`, (t) => {
    const dir = storeDir(t);
    const big = writeSnapshotSync(dir, 2, 5, HASH, list); // the defaults allow it
    const read = readSnapshotSync(big.path, () => undefined, LIMITS);
    t.false(read.ok);
    t.regex(read.ok ? '' : read.reason, why);
    fs.rmSync(big.path);

    const err = t.throws(() => writeSnapshotSync(dir, 2, 5, HASH, list, LIMITS));
    t.true(err instanceof SessionJournalError);
    t.is((err as SessionJournalError).code, 'SNAPSHOT_TOO_LARGE');
    t.deepEqual(fs.readdirSync(dir), [], 'neither the snapshot nor its temporary file');
  });
}

test('an archived snapshot that decompresses past maxSnapshotBytes (a gzip bomb) is unreadable, not inflated whole', (t) => {
  const dir = storeDir(t);
  const file = path.join(dir, 'snapshot-00000002.ndjson.gz');
  fs.writeFileSync(file, zlib.gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20)), { mode: 0o600 });
  const read = readArchivedSnapshotSync(file, LIMITS);
  t.false(read.ok);
  t.regex(read.ok ? '' : read.reason, /maxSnapshotBytes/);
});

test('an archived snapshot with a line over maxSnapshotLineBytes is unreadable with the reason', (t) => {
  const dir = storeDir(t);
  const live = writeSnapshotSync(dir, 2, 5, HASH, entries(1, 300));
  const file = `${live.path}.gz`;
  fs.writeFileSync(file, zlib.gzipSync(fs.readFileSync(live.path)), { mode: 0o600 });
  const read = readArchivedSnapshotSync(file, LIMITS);
  t.false(read.ok);
  t.regex(read.ok ? '' : read.reason, /line 2 is \d+ bytes, over maxSnapshotLineBytes/);
});

for (const [kind, make] of [
  ['a FIFO', (file: string) => execFileSync('mkfifo', ['-m', '600', file])],
  ['a directory', (file: string) => fs.mkdirSync(file, { mode: 0o700 })],
] as const) {
  test(`${kind} named like a snapshot, live or archived, is unreadable (not opened), not an error`, (t) => {
    const dir = storeDir(t);
    const live = path.join(dir, 'snapshot-00000002.ndjson');
    const archived = path.join(dir, 'snapshot-00000001.ndjson.gz');
    make(live);
    make(archived);
    for (const read of [readSnapshotSync(live, () => undefined), readArchivedSnapshotSync(archived)]) {
      t.false(read.ok);
      t.regex(read.ok ? '' : read.reason, /not a regular file/);
    }
  });
}
