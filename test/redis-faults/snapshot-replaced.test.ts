/**
 * A reader that reads a snapshot's chunks while a compaction installs the
 * next generation: the install deletes the chunks being read, so the
 * reader meets "chunk ... is missing" for a snapshot that is fine. It must
 * read the newer snapshot, never go on with an EMPTY state (its view would
 * lack every folded session, and a turn added to one of them would be
 * acknowledged and dropped by the reducer).
 *
 * The race is made with real Redis traffic: a TCP proxy holds the reader's
 * GET of chunk 0 until a compaction on a connection of its own has
 * installed the next generation; then the GET goes on and finds nothing.
 * Both ways a store reads a snapshot are covered: the open, and a
 * catch-up that finds the stream trimmed past it and reloads.
 */
import test, { type ExecutionContext } from 'ava';
import { SessionStore, compactSessions, type JournalWarning } from '../../src/index.js';
import { ErrorCodes, SessionJournalError } from '../../src/errors.js';
import { RedisAuditTrail } from '../../src/audit/redis-trail.js';
import { RedisConnection } from '../../src/storage/redis/connection.js';
import { storeKeys } from '../../src/storage/redis/keys.js';
import { readManifest } from '../../src/storage/redis/snapshot-keys.js';
import { runCli, withoutStoreEnv } from '../helpers/compaction-helpers.js';
import { TEST_T0 } from '../helpers/fixture-now.js';
import { startRedisServer, uniquePrefix, type RedisServer } from '../helpers/redis-server.js';
import { freshView, withStore } from '../helpers/redis-faults.js';
import { TcpProxy, requestOf } from '../helpers/tcp-proxy.js';

const clock = () => TEST_T0;
const turn = (prompt: string) => ({ prompt, response: `re ${prompt}`, timestamp: new Date(TEST_T0) });

interface Race {
  server: RedisServer;
  proxy: TcpProxy;
  prefix: string;
  writer: SessionStore;
  /** One more turn in `s0`, then a compaction that installs the next generation. */
  compactAgain(): Promise<void>;
  /** The generation the manifest names now. */
  generation(): Promise<number>;
  /** The next `reads` reads of a snapshot's chunk 0 each wait for the next generation's install; answers how many were installed so far. */
  replaceReads(reads: number): Promise<() => number>;
}

async function race(t: ExecutionContext, name: string): Promise<Race> {
  const server = await startRedisServer(t);
  const proxy = await TcpProxy.start(server.port);
  t.teardown(() => proxy.close());
  const prefix = uniquePrefix(name);
  const redis = { url: server.url, prefix };
  const writer = await SessionStore.open({ redis, clock, onWarning: (w) => t.fail(`writer: ${w.code}: ${w.message}`) });
  t.teardown(() => writer.close());
  for (let i = 0; i < 5; i++) {
    writer.ensureSession(`s${i}`);
    writer.addTurn(`s${i}`, turn(`p${i}`));
  }
  await writer.flush();
  let extra = 0;
  const compactAgain = async (): Promise<void> => {
    writer.addTurn('s0', turn(`extra ${++extra}`));
    await writer.flush();
    t.is((await compactSessions({ redis, now: clock, ttlMs: 1e12, maxSessions: 1000 })).status, 'compacted');
  };
  const generation = () =>
    withStore(server.url, prefix, async (conn) => {
      const read = await readManifest(conn);
      if (read.kind !== 'ok') throw new Error(`no manifest: ${read.kind}`);
      return read.manifest.gen;
    });
  /** Holds the next GET of chunk 0 of `gen` until `before` resolved. */
  const holdChunkRead = (gen: number, before: () => Promise<unknown>) => proxy.beforeRequest(requestOf('GET', storeKeys(prefix).chunk(gen, 0)), before);
  const replaceReads = async (reads: number): Promise<() => number> => {
    let installed = 0;
    const holdNext = async (): Promise<void> => {
      if (installed === reads) return;
      holdChunkRead(await generation(), async () => {
        await compactAgain();
        installed++;
        await holdNext();
      });
    };
    await holdNext();
    return () => installed;
  };
  await compactAgain();
  return { server, proxy, prefix, writer, compactAgain, generation, replaceReads };
}

/** A turn `reader` adds to `id`, a session the snapshot folds, is in the store for a fresh open: the reader's view had the session. */
async function turnIsKept(t: ExecutionContext, r: Race, reader: SessionStore, id: string, prompt: string, before: string): Promise<void> {
  reader.addTurn(id, turn(prompt));
  await reader.flush();
  const after = await freshView(r.server.url, r.prefix, { clock });
  t.deepEqual(after.sessions.find((s) => s.id === id)?.turns.map((x) => x.prompt), [before, prompt]);
}

const snapshotWarnings = (warnings: readonly JournalWarning[]) => warnings.filter((w) => w.code === 'SNAPSHOT_UNREADABLE').map((w) => w.message);

test('an open whose snapshot is replaced while its chunks are read reads the newer snapshot, not an empty state', async (t) => {
  const r = await race(t, 'replaced-open');
  const gen = await r.generation();
  const installed = await r.replaceReads(1);
  const warnings: JournalWarning[] = [];
  const reader = await SessionStore.open({ redis: { url: r.proxy.url, prefix: r.prefix }, clock, onWarning: (w) => warnings.push(w) });
  t.teardown(() => reader.close());
  t.is(installed(), 1, 'the next generation was installed while the reader waited for its chunk');
  t.true((await r.generation()) > gen);
  t.deepEqual(snapshotWarnings(warnings), [], 'no snapshot called unreadable');
  const fresh = await freshView(r.server.url, r.prefix, { clock });
  t.deepEqual(reader.listSessions().map((s) => s.id).sort(), ['s0', 's1', 's2', 's3', 's4']);
  t.is(reader.getSession('s0')?.turns.length, 3, 'the view has every turn the newer snapshot folds');
  t.deepEqual(fresh.sessions.map((s) => s.id).sort(), ['s0', 's1', 's2', 's3', 's4']);

  // The view is whole, so a turn added to a folded session is kept.
  await turnIsKept(t, r, reader, 's3', 'after the race', 'p3');
});

test('a catch-up that reloads from a snapshot replaced while its chunks are read reads the newer snapshot', async (t) => {
  const r = await race(t, 'replaced-follow');
  const warnings: JournalWarning[] = [];
  const reader = await SessionStore.open({ redis: { url: r.proxy.url, prefix: r.prefix }, clock, onWarning: (w) => warnings.push(w) });
  t.teardown(() => reader.close());
  // A compaction trims the stream past what the reader has read: its catch-up reloads from the snapshot.
  await r.compactAgain();
  const installed = await r.replaceReads(1);
  await reader.catchUp();
  t.is(installed(), 1, 'the next generation was installed while the reload waited for its chunk');
  t.deepEqual(snapshotWarnings(warnings), [], 'no snapshot called unreadable');
  t.deepEqual(reader.listSessions().map((s) => s.id).sort(), ['s0', 's1', 's2', 's3', 's4']);
  t.deepEqual(reader.getSession('s0')?.turns.map((x) => x.prompt), ['p0', 'extra 1', 'extra 2', 'extra 3']);
  await turnIsKept(t, r, reader, 's4', 'after the reload', 'p4');
});

test('the audit trail of a store whose snapshot is replaced while it is read starts after the newer snapshot, with no unreadable-snapshot problem', async (t) => {
  const r = await race(t, 'replaced-audit');
  const gen = await r.generation();
  await r.replaceReads(1);
  const conn = await RedisConnection.open({ url: r.proxy.url, prefix: r.prefix, onWarning: () => undefined });
  t.teardown(() => conn.close());
  const trail = await RedisAuditTrail.open(conn);
  t.is(trail.base.kind, 'snapshot');
  if (trail.base.kind !== 'snapshot') return;
  t.true(trail.base.snapshot.ok, 'the snapshot read is the newer one, whole');
  t.true(trail.base.manifest.gen > gen);
  const problems: string[] = [];
  for await (const item of trail.items()) if (item.kind === 'problem') problems.push(item.warning.code);
  t.deepEqual(problems, []);
});

test('a snapshot replaced during every one of five reads fails the open with STORE_CHANGING, not an empty state', async (t) => {
  const r = await race(t, 'replaced-always');
  await r.replaceReads(5);
  const warnings: JournalWarning[] = [];
  const error = await t.throwsAsync(SessionStore.open({ redis: { url: r.proxy.url, prefix: r.prefix }, clock, onWarning: (w) => warnings.push(w) }), { instanceOf: SessionJournalError });
  t.is((error as SessionJournalError | undefined)?.code, ErrorCodes.STORE_CHANGING);
  t.regex(error?.message ?? '', /newer snapshot during each of 5 reads/);
  t.deepEqual(snapshotWarnings(warnings), []);
});

test('replay of a Redis store whose snapshot is replaced during every read exits 3 (STORE_CHANGING: retry later)', async (t) => {
  const r = await race(t, 'replaced-cli');
  await r.replaceReads(5);
  const run = await runCli(['replay', '--redis', r.proxy.url, '--prefix', r.prefix], { env: withoutStoreEnv({ NO_COLOR: '1' }), timeoutMs: 120_000 });
  t.is(run.code, 3, run.stderr);
  t.regex(run.stderr, /STORE_CHANGING: .*newer snapshot during each of 5 reads/);
  t.regex(run.stderr, /hint: compactions kept changing the store while replay read it; retry later\n/);
  t.is(run.stdout, '', 'no history printed from a state it could not read');
});

test('a catch-up whose reload fails with STORE_CHANGING keeps the view it had; the next catch-up reads the store', async (t) => {
  const r = await race(t, 'replaced-kept');
  const reader = await SessionStore.open({ redis: { url: r.proxy.url, prefix: r.prefix }, clock, onWarning: (w) => t.fail(`reader: ${w.code}: ${w.message}`) });
  t.teardown(() => reader.close());
  await r.compactAgain(); // trims past the reader: its catch-up reloads
  await r.replaceReads(5);
  const error = await t.throwsAsync(reader.catchUp(), { instanceOf: SessionJournalError });
  t.is((error as SessionJournalError | undefined)?.code, ErrorCodes.STORE_CHANGING);
  t.deepEqual(reader.listSessions().map((s) => s.id).sort(), ['s0', 's1', 's2', 's3', 's4'], 'the view as it was, not emptied');
  t.deepEqual(reader.getSession('s0')?.turns.map((x) => x.prompt), ['p0', 'extra 1']);

  await reader.catchUp();
  t.deepEqual(reader.getSession('s0')?.turns.map((x) => x.prompt), ['p0', ...Array.from({ length: 7 }, (_, i) => `extra ${i + 1}`)]);
  await turnIsKept(t, r, reader, 's2', 'after', 'p2');
});
