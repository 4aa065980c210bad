/**
 * Writers in real processes whose clocks disagree (each child's store runs on
 * a fixed `clock`, see child-store.ts): 10 years and 2 days ahead, 2 days
 * behind. A reader hides what its own clock finds expired or over its limit,
 * but journals nothing, so no writer deletes another's live sessions; and a
 * lagging writer's mutation never moves lastAccessedAt back. Every
 * acknowledged mutation is in a fresh replay exactly once.
 *
 * "Now" of these tests: T0 (2026-01-01T12:00Z) is the correct time.
 */
import test from 'ava';
import { compactSessions } from '../../src/index.js';
import { DAY, HOUR, T0, freshReplay } from '../helpers/compaction-helpers.js';
import { StoreChild, killAll, readJournalLines, type Op, type PlainSession } from '../helpers/child-protocol.js';
import { timeline } from '../helpers/child-clock.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';

const TTL = DAY;
const YEAR = 365 * DAY;

async function child(t: import('ava').ExecutionContext, children: StoreChild[], name: string, dir: string, clockMs: number, extra: { maxSessions?: number } = {}): Promise<StoreChild> {
  const c = new StoreChild(name);
  children.push(c);
  await c.request({ op: 'open', dir, fsync: false, clock: timeline(clockMs), clockMs, ttlMs: TTL, ...extra }, 'opened');
  return c;
}

const run = (c: StoreChild, ops: Op[]) => c.request({ op: 'ops', ops }, 'flushed');
const listed = async (c: StoreChild) => (await c.request({ op: 'list' }, 'list')).sessions.map((s) => s.id).sort();
const deletesIn = (dir: string) => readJournalLines(dir).filter((l) => l.record?.t === 'session.delete');
const promptsOf = (sessions: PlainSession[]) => sessions.flatMap((s) => s.turns.map((turn) => `${s.id}/${turn.prompt}`)).sort();

test('a writer 10 years ahead (and one 2 days ahead) hides the others\' sessions in its own view but deletes none of them', async (t) => {
  const dir = tempStoreDir(t);
  const children: StoreChild[] = [];
  t.teardown(() => killAll(children));
  const ok = await child(t, children, 'ok', dir, T0);
  const fast = await child(t, children, 'fast-10y', dir, T0 + 10 * YEAR, { maxSessions: 2 });
  const ahead = await child(t, children, 'ahead-2d', dir, T0 + 2 * DAY);

  const mine = ['a1', 'a2', 'a3'];
  await run(ok, mine.flatMap((id): Op[] => [{ k: 'ensure', id }, { k: 'turn', id, prompt: 'ok-1' }]));

  // By the fast clock all of them are 10 years idle; it also creates more than its limit of 2.
  t.deepEqual(await listed(fast), []);
  await run(fast, ['f1', 'f2', 'f3'].flatMap((id, i): Op[] => [{ k: 'clock', ms: T0 + 10 * YEAR + i }, { k: 'ensure', id }, { k: 'turn', id, prompt: 'fast-1' }, { k: 'list' }]));
  t.deepEqual(await listed(fast), ['f2', 'f3'], 'its own view: only its newest 2');
  t.deepEqual(await listed(ahead), ['f1', 'f2', 'f3'], '2 days on, the correct writer\'s sessions are hidden from this one');
  await run(ahead, [{ k: 'ensure', id: 'd1' }, { k: 'turn', id: 'd1', prompt: 'ahead-1' }, { k: 'list' }]);

  // The correct writer still has every session, and goes on using its own.
  t.deepEqual(await listed(ok), [...mine, 'd1', 'f1', 'f2', 'f3']);
  await run(ok, mine.map((id): Op => ({ k: 'turn', id, prompt: 'ok-2' })));
  t.deepEqual(deletesIn(dir), [], 'no reader journaled a delete');

  await Promise.all(children.map((c) => c.close()));
  t.deepEqual(children.flatMap((c) => c.warnings), []);
  const { warnings, onWarning } = collectWarnings();
  const replay = await freshReplay(dir, onWarning);
  t.deepEqual(promptsOf(replay), [
    ...mine.flatMap((id) => [`${id}/ok-1`, `${id}/ok-2`]),
    'd1/ahead-1',
    'f1/fast-1',
    'f2/fast-1',
    'f3/fast-1',
  ].sort(), 'every acknowledged turn, once');
  t.deepEqual(warnings, []);
});

test('a writer 2 days behind does not move lastAccessedAt back: its turn on a live session does not expire it', async (t) => {
  const dir = tempStoreDir(t);
  const children: StoreChild[] = [];
  t.teardown(() => killAll(children));
  const ok = await child(t, children, 'ok', dir, T0);
  const lagging = await child(t, children, 'behind-2d', dir, T0 - 2 * DAY);

  await run(ok, [{ k: 'ensure', id: 's1' }, { k: 'turn', id: 's1', prompt: 'ok-1' }]);
  await run(lagging, [{ k: 'ensure', id: 's1' }, { k: 'turn', id: 's1', prompt: 'late-1' }, { k: 'conv', id: 's1', cid: 'c1' }, { k: 'update', id: 's1', data: { model: 'm' } }]);
  const seen = (await lagging.request({ op: 'get', id: 's1' }, 'session')).session;
  t.is(seen?.lastAccessedAt, new Date(T0).toISOString(), 'the lagging writer sees the later access too');

  // An hour later by the correct clock, s1 is an hour idle, not two days.
  await run(ok, [{ k: 'clock', ms: T0 + HOUR }, { k: 'list' }]);
  t.deepEqual(await listed(ok), ['s1']);
  await Promise.all(children.map((c) => c.close()));

  const { warnings, onWarning } = collectWarnings();
  const result = await compactSessions({ dir, onWarning, ttlMs: TTL, now: () => T0 + HOUR });
  t.deepEqual(result.removed, {}, 'compaction at the correct time expires nothing');
  const [s1] = await freshReplay(dir, onWarning);
  t.is(s1?.lastAccessedAt, new Date(T0).toISOString());
  t.is(s1?.createdAt, new Date(T0).toISOString(), 'createdAt is the first create\'s');
  t.deepEqual(promptsOf(s1 ? [s1] : []), ['s1/late-1', 's1/ok-1']);
  t.is(s1?.codexConversationId, 'c1');
  t.deepEqual(warnings, []);
});

test('writers 2 days behind, on time and 2 days ahead, at once on shared sessions: every acknowledged turn once, lastAccessedAt the latest', async (t) => {
  const dir = tempStoreDir(t);
  const children: StoreChild[] = [];
  t.teardown(() => killAll(children));
  const offsets = [-2 * DAY, 0, 2 * DAY];
  const writers = await Promise.all(offsets.map((offset, w) => child(t, children, `w${w}`, dir, T0 + offset)));
  const shared = ['shared-1', 'shared-2'];
  const COUNT = 60;
  await Promise.all(writers.map((c, w) => c.request({ op: 'write', writer: `w${w}`, sessions: shared, count: COUNT, flushEvery: 7 }, 'done', 45_000)));
  for (const c of writers) t.is(c.acked, COUNT - 1);
  // The one behind lists: by its clock nothing is idle, so it sees both; nothing is deleted by anyone.
  t.deepEqual(await listed(writers[0]!), shared);
  await Promise.all(children.map((c) => c.close()));
  t.deepEqual(deletesIn(dir), []);

  const { warnings, onWarning } = collectWarnings();
  const replay = await freshReplay(dir, onWarning);
  const expected = writers.flatMap((_, w) => Array.from({ length: COUNT }, (_, i) => `${shared[i % shared.length]}/w${w}:${i}`));
  t.deepEqual(promptsOf(replay), expected.sort());
  for (const s of replay) t.is(s.lastAccessedAt, new Date(T0 + 2 * DAY).toISOString(), `${s.id}: the fastest writer's time, whatever the commit order`);
  t.deepEqual(warnings, []);
});
