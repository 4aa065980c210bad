/**
 * Snapshots on Redis (src/storage/redis/snapshot-keys.ts): the same text as
 * a snapshot file, in chunks cut at character boundaries, installed under
 * the fence, read back checked; a damaged, missing or foreign chunk makes
 * the snapshot unreadable, never a throw.
 */
import test from 'ava';
import fs from 'node:fs';
import { deleteSnapshotChunks, parseManifest, readManifest, readSnapshotChunks, writeSnapshotChunks } from '../../src/storage/redis/snapshot-keys.js';
import { StoreScripts } from '../../src/storage/redis/scripts.js';
import { writeSnapshotSync } from '../../src/storage/file/snapshot-writer.js';
import { SessionJournalError } from '../../src/errors.js';
import type { RedisConnection } from '../../src/storage/redis/connection.js';
import { sharedRedisUrl } from '../helpers/redis-server.js';
import { openTestConnection } from '../helpers/redis-conn.js';
import { tempStoreDir } from '../helpers/temp-store.js';

const HASH = 'WfC-d4-TUP00Ca5L-edqnQ';
// Multi-byte characters everywhere, so that chunk boundaries fall inside them.
const entries = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `s${i}`, note: `é€😀 ${'ü'.repeat(i % 17)}`, turns: [{ prompt: `p${i}` }] }));

async function lockToken(conn: RedisConnection): Promise<string> {
  const lock = await new StoreScripts(conn).acquireLock(60_000);
  if (lock.kind !== 'ok') throw new Error('lock held');
  return lock.token;
}

const chunkText = async (conn: RedisConnection, gen: number, chunks: number): Promise<string[]> =>
  Promise.all(Array.from({ length: chunks }, (_, i) => conn.command(['GET', conn.keys.chunk(gen, i)]) as Promise<string>));

test('a snapshot written as chunks is the text of a snapshot file, and reads back with every entry', async (t) => {
  const { conn } = await openTestConnection(t, await sharedRedisUrl());
  const token = await lockToken(conn);
  const gen = Number(token);
  const state = entries(200);
  const manifest = await writeSnapshotChunks(conn, gen, 42, HASH, state, { chunkBytes: 1000 });
  t.true(manifest.chunks > 10, `${manifest.chunks} chunks`);
  t.like(manifest, { seq: 42, h: HASH, gen });

  const dir = tempStoreDir(t);
  fs.mkdirSync(dir, { mode: 0o700 });
  const file = writeSnapshotSync(dir, gen, 42, HASH, state);
  const text = (await chunkText(conn, gen, manifest.chunks)).join('');
  t.is(text, fs.readFileSync(file.path, 'utf8'), 'the same bytes as the file format');
  t.is(Buffer.byteLength(text), manifest.bytes);
  for (const chunk of await chunkText(conn, gen, manifest.chunks)) t.true(Buffer.byteLength(chunk) <= 1000);
  t.true((await conn.command(['PTTL', conn.keys.chunk(gen, 0)])) as number > 0, 'not yet installed: they expire');

  t.deepEqual(await new StoreScripts(conn).installSnapshot(token, manifest, undefined), { kind: 'ok' });
  const read = await readManifest(conn);
  t.true(read.kind === 'ok' && typeof read.manifest.at === 'number', 'the install recorded its time');
  t.deepEqual(read, { kind: 'ok', manifest: { ...manifest, at: read.kind === 'ok' ? read.manifest.at : undefined } });
  const result = await readSnapshotChunks(conn, manifest);
  if (!result.ok) return t.fail(result.reason);
  t.like(result.header, { kind: 'snapshot', segment: gen, seq: 42, h: HASH });
  t.deepEqual(
    result.entries.map((e) => e.value),
    state,
  );
  t.like(result.entries[0]!.place, { file: conn.keys.chunk(gen, 0), line: 2 });
  const last = result.entries[199]!.place;
  t.true(Buffer.from(text).subarray(last.offset).toString().startsWith('{"id":"s199"'), 'offsets count bytes of the whole text');
  t.is(last.file, conn.keys.chunk(gen, chunkOf(text, last.offset, 1000)), 'the chunk where the line begins');
  t.is(last.line, 201);
});

/** The chunk holding byte `offset` of the text, cutting as the writer does. */
function chunkOf(text: string, offset: number, chunkBytes: number): number {
  const buf = Buffer.from(text);
  let start = 0;
  for (let i = 0; ; i++) {
    let cut = Math.min(start + chunkBytes, buf.length);
    while (cut < buf.length && (buf[cut]! & 0xc0) === 0x80) cut--;
    if (offset < cut) return i;
    start = cut;
  }
}

test('an empty state is a header and a footer in one chunk', async (t) => {
  const { conn } = await openTestConnection(t, await sharedRedisUrl());
  const manifest = await writeSnapshotChunks(conn, 3, 0, '', []);
  t.is(manifest.chunks, 1);
  const result = await readSnapshotChunks(conn, manifest);
  t.true(result.ok);
  t.is(result.ok && result.entries.length, 0);
});

test('a damaged byte in a chunk is found (the manifest sha256), and so is a missing chunk', async (t) => {
  const { conn } = await openTestConnection(t, await sharedRedisUrl());
  const manifest = await writeSnapshotChunks(conn, 5, 9, HASH, entries(50), { chunkBytes: 500 });
  t.true((await readSnapshotChunks(conn, manifest)).ok);
  // One byte of an entry changed, still valid JSON and the same length: only the hashes can tell.
  const key = conn.keys.chunk(5, 2);
  const chunk = (await conn.command(['GET', key])) as string;
  const at = chunk.indexOf('"p');
  await conn.command(['SETRANGE', key, String(Buffer.byteLength(chunk.slice(0, at + 2))), 'q']);
  const damaged = await readSnapshotChunks(conn, manifest);
  t.false(damaged.ok);
  t.regex(damaged.ok ? '' : damaged.reason, /sha256/);

  await conn.command(['DEL', conn.keys.chunk(5, 3)]);
  const missing = await readSnapshotChunks(conn, manifest);
  t.false(missing.ok);
  t.regex(missing.ok ? '' : missing.reason, /chunk .*:snap:5:3 is missing/);
});

test('a manifest that does not describe its chunks is unreadable: wrong generation in the header, wrong seq, wrong size', async (t) => {
  const { conn } = await openTestConnection(t, await sharedRedisUrl());
  const manifest = await writeSnapshotChunks(conn, 6, 9, HASH, entries(5));
  // Chunks of generation 6 copied under generation 7: the header says 6.
  for (let i = 0; i < manifest.chunks; i++) await conn.command(['COPY', conn.keys.chunk(6, i), conn.keys.chunk(7, i)]);
  const foreign = await readSnapshotChunks(conn, { ...manifest, gen: 7 });
  t.false(foreign.ok);
  t.regex(foreign.ok ? '' : foreign.reason, /header segment 6 is not the 7 of the manifest/);
  const seq = await readSnapshotChunks(conn, { ...manifest, seq: 10 });
  t.regex(seq.ok ? '' : seq.reason, /the header folds seq 9/);
  const size = await readSnapshotChunks(conn, { ...manifest, bytes: manifest.bytes + 1 });
  t.regex(size.ok ? '' : size.reason, /hold \d+ bytes, the manifest says/);
  const tooBig = await readSnapshotChunks(conn, manifest, { maxSnapshotBytes: 100, maxSnapshotLineBytes: 100 });
  t.regex(tooBig.ok ? '' : tooBig.reason, /over maxSnapshotBytes/);
});

test('a snapshot readers would refuse is not written (SNAPSHOT_TOO_LARGE), and leaves no chunk', async (t) => {
  const { conn } = await openTestConnection(t, await sharedRedisUrl());
  const err = await t.throwsAsync(writeSnapshotChunks(conn, 8, 1, HASH, entries(300), { chunkBytes: 200, limits: { maxSnapshotBytes: 5000, maxSnapshotLineBytes: 1000 } }));
  t.is((err as SessionJournalError).code, 'SNAPSHOT_TOO_LARGE');
  t.is(await conn.command(['EXISTS', conn.keys.chunk(8, 0), conn.keys.chunk(8, 1)]), 0);
  const line = await t.throwsAsync(writeSnapshotChunks(conn, 8, 1, HASH, [{ big: 'x'.repeat(2000) }], { limits: { maxSnapshotBytes: 1e6, maxSnapshotLineBytes: 1000 } }));
  t.regex(line!.message, /maxSnapshotLineBytes/);
});

test('a stopped write deletes its chunks and rejects with the reason', async (t) => {
  const { conn } = await openTestConnection(t, await sharedRedisUrl());
  const controller = new AbortController();
  const reason = new Error('stop');
  let n = 0;
  function* state() {
    for (;;) {
      if (++n === 400) controller.abort(reason);
      yield { id: `s${n}`, pad: 'y'.repeat(50) };
    }
  }
  t.is(await t.throwsAsync(writeSnapshotChunks(conn, 9, 1, HASH, state(), { chunkBytes: 1000, signal: controller.signal })), reason);
  t.is(await conn.command(['EXISTS', conn.keys.chunk(9, 0)]), 0);
  await deleteSnapshotChunks(conn, 9, 3); // nothing left to delete: no error
});

test('manifests that do not check are "bad" with the reason, an absent one "none"', (t) => {
  t.deepEqual(parseManifest([]), { kind: 'none' });
  const good = ['seq', '4', 'h', '', 'gen', '2', 'chunks', '1', 'bytes', '80', 'sha256', 'b'.repeat(64)];
  t.is(parseManifest(good).kind, 'ok');
  const bad = (field: string, value: string) => {
    const fields = [...good];
    fields[fields.indexOf(field) + 1] = value;
    const read = parseManifest(fields);
    return read.kind === 'bad' ? read.reason : `not bad: ${read.kind}`;
  };
  t.regex(bad('seq', '-1'), /seq "-1"/);
  t.regex(bad('gen', '0'), /gen "0" is not a whole number >= 1/);
  t.regex(bad('chunks', '1.5'), /chunks/);
  t.regex(bad('h', 'nope'), /not a chain hash/);
  t.regex(bad('sha256', 'abc'), /64 hex digits/);
});
