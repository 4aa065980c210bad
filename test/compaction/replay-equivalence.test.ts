/**
 * The state after compaction equals a fresh replay of all history minus what
 * retention removed (seeded random histories, compacted twice with writes in
 * between); and the same state always gives byte-identical snapshots.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { compactSessions } from '../../src/index.js';
import { seededRandom, serializeSessions } from '../helpers/child-protocol.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';
import {
  FakeClock,
  HOUR,
  T0,
  expectedRetention,
  freshReplay,
  liveSegment,
  openStore,
  randomHistory,
  recordsOf,
  sha256,
  snapshotsIn,
  type PlainSession,
} from '../helpers/compaction-helpers.js';

const SEEDS = [1, 7, 2026];
const TTL = 6 * HOUR;
const MAX = 10;

/** Compacts at `now` and checks the outcome against `expected` (a replay taken just before) minus the model's removals. */
async function compactAndCheck(
  t: import('ava').ExecutionContext,
  dir: string,
  expected: PlainSession[],
  now: number,
  onWarning: (w: import('../../src/index.js').JournalWarning) => void,
  label: string,
): Promise<void> {
  // TTL counts idleness up to the store's newest access, never past it (the compactor's clock guard).
  const newest = Math.max(...expected.map((s) => Date.parse(s.lastAccessedAt as string)));
  const model = expectedRetention(expected, Math.min(now, newest), TTL, MAX);
  const result = await compactSessions({ dir, onWarning, ttlMs: TTL, maxSessions: MAX, now: () => now });
  t.is(result.status, 'compacted', label);
  const removedCounts: Record<string, number> = {};
  if (model.expired.length) removedCounts.expired = model.expired.length;
  if (model.evicted.length) removedCounts.evicted = model.evicted.length;
  t.deepEqual(result.removed, removedCounts, `${label}: result.removed`);
  const deletes = recordsOf(dir, liveSegment(dir)).filter((r) => r.t === 'session.delete');
  t.deepEqual(
    deletes.map((r) => `${r.p.id as string}:${r.p.reason as string}`).sort(),
    [...model.expired.map((id) => `${id}:expired`), ...model.evicted.map((id) => `${id}:evicted`)].sort(),
    `${label}: the journaled retention deletes`,
  );
  const gone = new Set([...model.expired, ...model.evicted]);
  const survivors = expected.filter((s) => !gone.has(s.id));
  t.is(result.kept, survivors.length, `${label}: result.kept`);
  t.deepEqual(await freshReplay(dir, onWarning), survivors, `${label}: the reopened state is the replay minus retention`);
}

for (const seed of SEEDS) {
  test(`state after compaction equals a fresh replay minus TTL/LRU removals, twice with writes in between (seed ${seed})`, async (t) => {
    const dir = tempStoreDir(t);
    const { warnings, onWarning } = collectWarnings();
    const rnd = seededRandom(seed);
    const clock = new FakeClock(T0);

    // Round 1: history, replay, compact, compare.
    let store = openStore(dir, onWarning, { clock: clock.read });
    await randomHistory(store, clock, rnd, 400);
    await store.close();
    let expected = await freshReplay(dir, onWarning);
    t.true(expected.length > MAX, `seed ${seed}: the history leaves enough sessions for LRU to matter (${expected.length})`);
    t.true(expected.some((s) => s.codexConversationId !== undefined) && expected.some((s) => s.turns.length > 1));
    await compactAndCheck(t, dir, expected, clock.now + 30 * 60_000, onWarning, `seed ${seed} round 1`);

    // Round 2: more history on the compacted store (some ids new, some reused), compact again.
    store = openStore(dir, onWarning, { clock: clock.read });
    clock.advance(HOUR);
    await randomHistory(store, clock, rnd, 300, 's', 30);
    await store.close();
    expected = await freshReplay(dir, onWarning);
    await compactAndCheck(t, dir, expected, clock.now + 2 * HOUR, onWarning, `seed ${seed} round 2`);

    // Round 3: writes after the second compaction are replayed on top of its snapshot.
    store = openStore(dir, onWarning, { clock: clock.read });
    await randomHistory(store, clock, rnd, 100, 's', 30);
    const live = serializeSessions(store.listSessions());
    await store.close();
    t.deepEqual(await freshReplay(dir, onWarning), live, `seed ${seed}: the writer's view equals a replay of snapshot + new segment`);
    t.deepEqual(snapshotsIn(dir), ['snapshot-00000003.ndjson']);
    t.deepEqual(warnings, []);
  });
}

/** Builds a store from a seeded history with its own clock, closes it, compacts it at a fixed instant. */
async function buildAndCompact(t: import('ava').ExecutionContext, seed: number, onWarning: (w: import('../../src/index.js').JournalWarning) => void): Promise<string> {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(T0);
  const store = openStore(dir, onWarning, { clock: clock.read });
  await randomHistory(store, clock, seededRandom(seed), 300);
  await store.close();
  const now = clock.now + 60_000;
  const result = await compactSessions({ dir, onWarning, ttlMs: TTL, maxSessions: MAX, now: () => now });
  t.true(result.kept > 3, `seed ${seed}: the snapshot holds sessions (${result.kept})`);
  return dir;
}

test('determinism: the same operations with the same clock give byte-identical snapshots (same sha256)', async (t) => {
  const { warnings, onWarning } = collectWarnings();
  const a = await buildAndCompact(t, 42, onWarning);
  const b = await buildAndCompact(t, 42, onWarning);
  const name = 'snapshot-00000002.ndjson';
  t.deepEqual(snapshotsIn(a), [name]);
  t.deepEqual(snapshotsIn(b), [name]);
  const bytesA = fs.readFileSync(path.join(a, name));
  const bytesB = fs.readFileSync(path.join(b, name));
  t.true(bytesA.length > 100);
  t.is(sha256(bytesA), sha256(bytesB));
  t.true(bytesA.equals(bytesB), 'byte-identical');
  // A different history gives a different snapshot (the comparison is not vacuous).
  const c = await buildAndCompact(t, 43, onWarning);
  t.not(sha256(fs.readFileSync(path.join(c, name))), sha256(bytesA));
  t.deepEqual(warnings, []);
});

test('determinism: the same operations give identical snapshot entries and footer (everything but the header)', async (t) => {
  const { warnings, onWarning } = collectWarnings();
  const a = await buildAndCompact(t, 42, onWarning);
  const b = await buildAndCompact(t, 42, onWarning);
  const body = (dir: string) => fs.readFileSync(path.join(dir, 'snapshot-00000002.ndjson'), 'utf8').split('\n').slice(1).join('\n');
  t.true(body(a).length > 100);
  t.is(sha256(body(a)), sha256(body(b)));
  const header = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'snapshot-00000002.ndjson'), 'utf8').split('\n')[0]!) as Record<string, unknown>;
  t.is(header(a).seq, header(b).seq);
  t.is(header(a).segment, header(b).segment);
  t.deepEqual(warnings, []);
});

test('determinism: every snapshot line has its keys sorted, at every depth; the header has no timestamp', async (t) => {
  const { warnings, onWarning } = collectWarnings();
  const dir = await buildAndCompact(t, 5, onWarning);
  const lines = fs.readFileSync(path.join(dir, 'snapshot-00000002.ndjson'), 'utf8').split('\n');
  t.is(lines.pop(), '', 'ends with a newline');
  const unsorted: string[] = [];
  const check = (value: unknown, where: string) => {
    if (Array.isArray(value)) value.forEach((v, i) => check(v, `${where}[${i}]`));
    else if (value !== null && typeof value === 'object') {
      const keys = Object.keys(value);
      const sorted = [...keys].sort();
      if (keys.join('\0') !== sorted.join('\0')) unsorted.push(`${where}: ${keys.join(',')}`);
      for (const k of keys) check((value as Record<string, unknown>)[k], `${where}.${k}`);
    }
  };
  lines.forEach((l, i) => check(JSON.parse(l), `line ${i + 1}`));
  t.deepEqual(unsorted, []);
  const header = JSON.parse(lines[0]!) as Record<string, unknown>;
  t.deepEqual(Object.keys(header), ['h', 'kind', 'segment', 'seq', 'v'], 'no timestamp in the header');
  // The header carries the seq and hash-chain link of the rotation marker that closed the last folded segment.
  const archived = zlib.gunzipSync(fs.readFileSync(path.join(dir, 'archive', 'journal-00000001.ndjson.gz'))).toString('utf8').trim().split('\n');
  const marker = JSON.parse(archived[archived.length - 1]!) as { t: string; seq: number; h: string };
  t.is(marker.t, 'journal.rotate');
  t.is(header.seq, marker.seq);
  t.is(header.h, marker.h);
  t.is(header.kind, 'snapshot');
  t.is(header.segment, 2);
  const footer = JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
  // The footer's sha256 covers every byte before it (docs/FORMAT.md, "Snapshots").
  t.deepEqual(footer, { end: true, entries: lines.length - 2, sha256: sha256(lines.slice(0, -1).map((l) => l + '\n').join('')) });
  t.true(lines.some((l) => l.includes('"codexConversationId"')), 'sessions with nested and optional fields are present');
  t.deepEqual(warnings, []);
});
