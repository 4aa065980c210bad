/**
 * Reading a store's stream (src/storage/redis/stream-reader.ts): whole
 * commits across pages, spread records joined, writers attributed, the
 * chain head followed, damaged entries warned at the stream key and entry
 * id, and the gaps a trim or a loss leaves, including the last entry read
 * holding another line now, or gone with no snapshot folding up to it.
 */
import test from 'ava';
import { StreamReader } from '../../src/storage/redis/stream-reader.js';
import { StoreScripts, type ChainHead } from '../../src/storage/redis/scripts.js';
import { RedisBatchEncoder } from '../../src/storage/redis/batch-encoder.js';
import { canonicalPayload, type JournalRecord, type Rejection } from '../../src/engine/record-codec.js';
import { formatWarning, type JournalWarning } from '../../src/engine/warnings.js';
import type { RedisConnection } from '../../src/storage/redis/connection.js';
import { sharedRedisUrl } from '../helpers/redis-server.js';
import { openTestConnection } from '../helpers/redis-conn.js';

const T0 = Date.UTC(2026, 10, 20, 9, 0, 0);
const MIB = 1024 * 1024;

interface Writer {
  head: ChainHead | undefined;
  write(...values: unknown[]): Promise<void>;
}

/** A writer that appends commits of kv.set records (one per value) and keeps its head. */
function writer(conn: RedisConnection, name: string, maxLineBytes = MIB): Writer {
  const scripts = new StoreScripts(conn);
  const encoder = new RedisBatchEncoder({ writerJson: JSON.stringify(name), maxLineBytes, hashChain: true });
  const w: Writer = {
    head: undefined,
    async write(...values) {
      const { batch } = encoder.encode(
        w.head,
        values.map((value, i) => ({ time: T0 + i, type: 'kv.set', payloadJson: canonicalPayload({ key: `k${i}`, value })! })),
      );
      const outcome = await scripts.append(w.head, batch);
      if (outcome.kind !== 'ok') throw new Error(`append: ${JSON.stringify(outcome)}`);
      w.head = batch.head;
    },
  };
  return w;
}

function reader(conn: RedisConnection, options: { after?: ChainHead; pageSize?: number; maxLineBytes?: number; reject?: (r: JournalRecord) => Rejection | undefined } = {}) {
  const records: JournalRecord[] = [];
  const warnings: JournalWarning[] = [];
  const stream = new StreamReader({
    conn,
    consumer: {
      apply: (r) => {
        records.push(r);
        return options.reject?.(r);
      },
    },
    after: options.after ?? { seq: 0, hash: '' },
    maxLineBytes: options.maxLineBytes ?? MIB,
    maxRecordBytes: 64 * MIB,
    warn: (w) => warnings.push(w),
    ...(options.pageSize !== undefined && { pageSize: options.pageSize }),
  });
  return { stream, records, warnings };
}

const valuesOf = (records: JournalRecord[]) => records.map((r) => (r.payload as { value: unknown }).value);

test('records are applied a whole commit at a time, also when a page ends inside one', async (t) => {
  const { conn } = await openTestConnection(t, await sharedRedisUrl());
  const w = writer(conn, '11@host-a');
  await w.write(1, 2, 3);
  await w.write(4);
  await w.write(5, 6, 7, 8);
  const { stream, records, warnings } = reader(conn, { pageSize: 2 });
  const applied: number[] = [];
  for (;;) {
    const page = await stream.readPage();
    if (page.kind !== 'read') return t.fail(JSON.stringify(page));
    applied.push(records.length);
    if (!page.more) break;
  }
  t.deepEqual(applied, [0, 4, 4, 8, 8], 'nothing of a commit before its last line is read');
  t.deepEqual(valuesOf(records), [1, 2, 3, 4, 5, 6, 7, 8]);
  t.deepEqual(records.map((r) => r.seq), [1, 2, 3, 4, 5, 6, 7, 8]);
  t.true(records.every((r) => r.writer === '11@host-a'), 'lines without w take the writer of their commit');
  t.deepEqual(stream.head, w.head);
  t.is(stream.lastHash, w.head!.hash);
  t.deepEqual(warnings, []);
});

test('catchUp reads every page; another writer interleaved is attributed to its own commits', async (t) => {
  const { conn } = await openTestConnection(t, await sharedRedisUrl());
  const a = writer(conn, '1@a');
  const b = writer(conn, '2@b');
  await a.write('a1', 'a2');
  b.head = a.head;
  await b.write('b1', 'b2', 'b3');
  a.head = b.head;
  await a.write('a3');
  const { stream, records } = reader(conn, { pageSize: 3 });
  t.deepEqual(await stream.catchUp(), { kind: 'read', entries: 6, more: false });
  t.deepEqual(records.map((r) => `${r.writer}:${String((r.payload as { value: unknown }).value)}`), ['1@a:a1', '1@a:a2', '2@b:b1', '2@b:b2', '2@b:b3', '1@a:a3']);
  // Nothing new: a page of nothing, the head where the reader is.
  t.deepEqual(await stream.catchUp(), { kind: 'read', entries: 0, more: false });
});

test('a record spread over several lines is joined, across pages', async (t) => {
  const { conn } = await openTestConnection(t, await sharedRedisUrl());
  const w = writer(conn, '1@a', 600);
  const big = 'é'.repeat(1500);
  await w.write('small', big, 'after');
  const lines = (await conn.command(['XLEN', conn.keys.log])) as number;
  t.true(lines > 4, `spread over parts (${lines} lines)`);
  const { stream, records, warnings } = reader(conn, { pageSize: 1, maxLineBytes: 600 });
  t.is((await stream.catchUp()).kind, 'read');
  t.deepEqual(valuesOf(records), ['small', big, 'after']);
  t.is(records[1]!.lines, lines - 2);
  t.is(records[2]!.seq, lines);
  t.deepEqual(warnings, []);
});

test('damage is warned at the stream key and entry id; the commits around it are applied', async (t) => {
  const { conn } = await openTestConnection(t, await sharedRedisUrl());
  const w = writer(conn, '1@a');
  await w.write(1);
  // Something outside the protocol added a line that is not a record, and an entry without its field.
  await conn.command(['XADD', conn.keys.log, '2-0', 'r', 'not json']);
  await conn.command(['XADD', conn.keys.log, '3-0', 'x', 'y']);
  await conn.command(['SET', conn.keys.head, `3 ${w.head!.hash}`]);
  w.head = { seq: 3, hash: w.head!.hash };
  await w.write(4, 'refused');
  const { stream, records, warnings } = reader(conn, { reject: (r) => ((r.payload as { value: unknown }).value === 'refused' ? { code: 'INVALID_PAYLOAD', message: 'no thanks' } : undefined) });
  t.is((await stream.catchUp()).kind, 'read');
  t.deepEqual(valuesOf(records), [1, 4, 'refused']);
  t.deepEqual(
    warnings.map((x) => [x.code, x.file, x.entry]),
    [
      ['UNPARSABLE_LINE', conn.keys.log, '2-0'],
      ['UNPARSABLE_LINE', conn.keys.log, '3-0'],
      ['INVALID_PAYLOAD', conn.keys.log, '5-0'],
    ],
  );
  t.regex(formatWarning(warnings[0]!), new RegExp(`warning UNPARSABLE_LINE \\{${conn.keys.prefix.replace(/[.]/g, '\\.')}\\}:log entry 2-0: not valid JSON`));
  t.is(stream.lastSeq, 5);
});

test('a stream trimmed past the snapshot the reader started from is a gap: nothing applied', async (t) => {
  const { conn } = await openTestConnection(t, await sharedRedisUrl());
  const w = writer(conn, '1@a');
  await w.write(1, 2, 3);
  const at3 = w.head!;
  await w.write(4, 5);
  await w.write(6);
  await conn.command(['XTRIM', conn.keys.log, 'MINID', '6-0']);
  const { stream, records } = reader(conn, { after: at3 });
  const gap = await stream.catchUp();
  t.like(gap, { kind: 'gap', expected: 4, found: 6 });
  t.deepEqual(records, []);
  t.is(stream.lastSeq, 3, 'the reader stays where it was');
  // From the newer snapshot (seq 5), the same stream reads fine.
  const fresh = reader(conn, { after: { seq: 5, hash: 'x' } });
  t.deepEqual(await fresh.stream.catchUp(), { kind: 'read', entries: 1, more: false });
  t.deepEqual(valuesOf(fresh.records), [6]);
});

test('a stream trimmed empty while the head is past the reader is a gap too; at the head it is not', async (t) => {
  const { conn } = await openTestConnection(t, await sharedRedisUrl());
  const w = writer(conn, '1@a');
  await w.write(1);
  const at1 = w.head!;
  await w.write(2, 3);
  await conn.command(['XTRIM', conn.keys.log, 'MINID', '4-0']);
  t.is(await conn.command(['XLEN', conn.keys.log]), 0);
  const behind = reader(conn, { after: at1 });
  const gap = await behind.stream.catchUp();
  t.like(gap, { kind: 'gap', expected: 2, found: undefined, head: w.head });
  t.regex(gap.kind === 'gap' ? gap.reason : '', /ends at seq 1 but the head .* is 3/);
  const current = reader(conn, { after: w.head! });
  t.deepEqual(await current.stream.catchUp(), { kind: 'read', entries: 0, more: false });
});

/** A manifest in {P}:snap folding up to `head` (its chunks are not read here: only the reader's check looks at it). */
async function manifestAt(conn: RedisConnection, head: ChainHead): Promise<void> {
  await conn.command(['HSET', conn.keys.snap, 'seq', String(head.seq), 'h', head.hash, 'gen', '1', 'chunks', '1', 'bytes', '1', 'sha256', 'a'.repeat(64)]);
}

test('the entry a reader read last, trimmed by a compaction that folds exactly up to it, is no gap: the reader reads on', async (t) => {
  const { conn } = await openTestConnection(t, await sharedRedisUrl());
  const w = writer(conn, '1@a');
  await w.write(1, 2);
  const { stream, records, warnings } = reader(conn);
  t.like(await stream.catchUp(), { kind: 'read', entries: 2 });
  // A compaction at the head: the snapshot folds up to seq 2, the stream is trimmed empty.
  await manifestAt(conn, w.head!);
  await conn.command(['XTRIM', conn.keys.log, 'MINID', '3-0']);
  await w.write(3);
  t.deepEqual(await stream.catchUp(), { kind: 'read', entries: 1, more: false });
  t.deepEqual(valuesOf(records), [1, 2, 3], 'the commit after the trim is applied');
  t.deepEqual(warnings, []);
});

test('the entry a reader read last, holding another line now (a failover lost it, another writer wrote that seq), is a gap: nothing of the other history is applied', async (t) => {
  const { conn } = await openTestConnection(t, await sharedRedisUrl());
  const w = writer(conn, '1@a');
  await w.write(1);
  const at1 = w.head!;
  await w.write(2);
  const { stream, records } = reader(conn);
  t.like(await stream.catchUp(), { kind: 'read', entries: 2 });
  // The store comes back without seq 2 (a replica that lacked it), and another writer writes seq 2 and 3 there.
  await conn.command(['XDEL', conn.keys.log, '2-0']);
  await conn.command(['XSETID', conn.keys.log, '1-0']);
  await conn.command(['SET', conn.keys.head, `${at1.seq} ${at1.hash}`]);
  const other = writer(conn, '2@b');
  other.head = at1;
  await other.write(20);
  await other.write(30);
  const gap = await stream.catchUp();
  t.like(gap, { kind: 'gap', expected: 3 });
  t.regex(gap.kind === 'gap' ? gap.reason : '', /holds another line in entry 2-0/);
  t.deepEqual(valuesOf(records), [1, 2], 'the other history was not applied');
  // No entry there and no snapshot that folds exactly up to it is a gap too.
  const trimmed = reader(conn);
  await trimmed.stream.catchUp();
  await manifestAt(conn, { seq: 3, hash: at1.hash }); // a snapshot of another chain at that seq
  await conn.command(['XTRIM', conn.keys.log, 'MINID', '4-0']);
  await other.write(40);
  const missing = await trimmed.stream.catchUp();
  t.like(missing, { kind: 'gap' });
  t.regex(missing.kind === 'gap' ? missing.reason : '', /no longer holds entry 3-0/);
});

test('a stream deleted under a reader (records lost) is a gap', async (t) => {
  const { conn } = await openTestConnection(t, await sharedRedisUrl());
  const w = writer(conn, '1@a');
  await w.write(1, 2);
  await conn.command(['DEL', conn.keys.log]);
  const gap = await reader(conn).stream.catchUp();
  t.like(gap, { kind: 'gap', expected: 1, found: undefined });
});

test('readNew waits (XREAD BLOCK) for what another connection appends', async (t) => {
  const url = await sharedRedisUrl();
  const { conn } = await openTestConnection(t, url);
  const { conn: follower } = await openTestConnection(t, url, { prefix: conn.keys.prefix });
  const w = writer(conn, '1@a');
  await w.write(1);
  const { stream, records } = reader(follower);
  t.deepEqual(await stream.readNew(1000), { kind: 'read', entries: 1, more: false }, 'what is there already comes at once');
  const waiting = stream.readNew(10_000);
  await w.write(2, 3);
  t.deepEqual(await waiting, { kind: 'read', entries: 2, more: false });
  t.deepEqual(valuesOf(records), [1, 2, 3]);
  const started = performance.now();
  t.deepEqual(await stream.readNew(50), { kind: 'read', entries: 0, more: false });
  t.true(performance.now() - started >= 40, 'it waited');
});
