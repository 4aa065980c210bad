/**
 * Stores that stay open across compactions: in this process and in a child,
 * they keep writing (into the new segment), see retention deletes on their
 * next read, and end equal to a fresh replay. A reader that falls behind two
 * compactions (its next segment already archived) reloads and sees everything.
 */
import test from 'ava';
import os from 'node:os';
import { compactSessions } from '../../src/index.js';
import { StoreChild, killAll, serializeSessions } from '../helpers/child-protocol.js';
import { timeline } from '../helpers/child-clock.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';
import { FakeClock, HOUR, NO_TTL, T0, freshReplay, liveSegment, openStore, recordsOf, segmentsIn, snapshotsIn, turnOf, writeAgedSessions } from '../helpers/compaction-helpers.js';

const ids = (list: { id: string }[]) => list.map((s) => s.id).sort();

test('a live store in this process keeps working across a compaction: writes land in the new segment, retention deletes appear on its next read', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const clock = new FakeClock(T0);
  const store = openStore(dir, onWarning, { clock: clock.read });
  await writeAgedSessions(store, clock, ['stale-1', 'stale-2', 'rescued'], 1000);
  clock.advance(3 * HOUR);
  await writeAgedSessions(store, clock, ['keep-1', 'keep-2'], 1000);
  t.deepEqual(ids(store.listSessions()), ['keep-1', 'keep-2', 'rescued', 'stale-1', 'stale-2']);

  const result = await compactSessions({
    dir,
    onWarning,
    ttlMs: 2 * HOUR,
    now: () => clock.now,
    onStep: async (step) => {
      // Between rotation and retention the live store touches a session that
      // retention would expire: it writes to the new segment, and is spared.
      if (step === 'rotated') {
        store.addTurn('rescued', turnOf('during compaction', clock));
        await store.flush();
      }
    },
  });
  t.deepEqual(result.removed, { expired: 2 }, 'stale-1 and stale-2 expire; rescued was touched after the rotation');
  t.is(result.kept, 3);

  // No reopen: the next read applies the journaled deletes.
  t.deepEqual(ids(store.listSessions()), ['keep-1', 'keep-2', 'rescued']);
  t.is(store.getSession('stale-1'), undefined);
  t.deepEqual(
    store.getSession('rescued')?.turns.map((x) => x.prompt),
    ['hello rescued', 'during compaction'],
  );

  // Later writes go to the new live segment.
  clock.advance(1000);
  store.addTurn('keep-1', turnOf('after compaction', clock));
  store.ensureSession('brand-new');
  await store.flush();
  t.is(liveSegment(dir), 'journal-00000002.ndjson');
  const live = recordsOf(dir, 'journal-00000002.ndjson');
  t.true(live.some((r) => r.t === 'session.turn' && r.p.id === 'rescued'), 'the write made during compaction is in the new segment');
  t.true(live.some((r) => r.t === 'session.turn' && r.p.id === 'keep-1' && (r.p.turn as { prompt: string }).prompt === 'after compaction'));
  t.true(live.some((r) => r.t === 'session.create' && r.p.id === 'brand-new'));
  const seqs = live.map((r) => r.seq);
  t.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'sequence numbers keep increasing in the new segment');

  const view = serializeSessions(store.listSessions());
  await store.close();
  t.deepEqual(await freshReplay(dir, onWarning), view, "the live store's view equals a fresh replay");
  t.deepEqual(warnings, []);
});

test('a live store in a child process keeps working across a compaction and sees LRU evictions on its next read', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const child = new StoreChild('live-child');
  t.teardown(() => killAll([child]));
  await child.request({ op: 'open', dir, fsync: false, clock: timeline(T0) }, 'opened');
  // Six sessions with distinct access times (c0 oldest).
  const ops = ['c0', 'c1', 'c2', 'c3', 'c4', 'c5'].flatMap((id) => [{ k: 'ensure' as const, id }, { k: 'turn' as const, id, prompt: `first ${id}` }, { k: 'stall' as const, ms: 3 }]);
  await child.request({ op: 'ops', ops }, 'flushed');

  const result = await compactSessions({ dir, onWarning, maxSessions: 3, ttlMs: NO_TTL, now: () => T0 });
  t.deepEqual(result.removed, { evicted: 3 });

  // Without reopening, the child's next read drops the evicted sessions.
  t.deepEqual(ids((await child.request({ op: 'list' }, 'list')).sessions), ['c3', 'c4', 'c5']);

  // Its next write lands in the new segment.
  await child.request({ op: 'ops', ops: [{ k: 'turn', id: 'c5', prompt: 'after compaction' }] }, 'flushed');
  t.is(liveSegment(dir), 'journal-00000002.ndjson');
  const last = recordsOf(dir, 'journal-00000002.ndjson').at(-1)!;
  t.is(last.t, 'session.turn');
  t.is(last.p.id, 'c5');
  t.is(last.w, `${child.pid}@${os.hostname()}`);

  const childView = (await child.request({ op: 'list' }, 'list')).sessions;
  await child.close();
  t.deepEqual(await freshReplay(dir, onWarning), childView, "the child's view equals a fresh replay");
  t.deepEqual(child.warnings, []);
  t.deepEqual(warnings, []);
});

test('a reader that falls behind two compactions reloads on its next read and sees everything', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const clock = new FakeClock(T0);
  const reader = openStore(dir, onWarning, { clock: clock.read });
  reader.ensureSession('a0');
  reader.addTurn('a0', turnOf('from the reader', clock));
  await reader.flush();
  t.deepEqual(ids(reader.listSessions()), ['a0']);

  const writer = openStore(dir, onWarning, { clock: clock.read });
  const compact = () => compactSessions({ dir, onWarning, ttlMs: NO_TTL, maxSessions: 100, now: () => clock.now });
  await writeAgedSessions(writer, clock, ['b1', 'b2'], 1000);
  t.is((await compact()).status, 'compacted');
  await writeAgedSessions(writer, clock, ['b3'], 1000);
  writer.deleteSession('b2');
  writer.addTurn('a0', turnOf('from the writer', clock));
  await writer.flush();
  t.is((await compact()).status, 'compacted');
  await writeAgedSessions(writer, clock, ['b4'], 1000);
  t.deepEqual(snapshotsIn(dir), ['snapshot-00000003.ndjson'], 'segment 2, where the reader would go next, is archived');
  t.deepEqual(segmentsIn(dir), ['journal-00000003.ndjson']);

  const view = serializeSessions(reader.listSessions());
  t.deepEqual(ids(view), ['a0', 'b1', 'b3', 'b4']);
  t.deepEqual(view.find((s) => s.id === 'a0')?.turns.map((x) => x.prompt), ['from the reader', 'from the writer']);
  t.deepEqual(view, await freshReplay(dir, onWarning), 'the reloaded view equals a fresh replay');

  // And it writes into the live segment.
  reader.addTurn('b4', turnOf('reader after reload', clock));
  await reader.flush();
  t.deepEqual(segmentsIn(dir), ['journal-00000003.ndjson']);
  t.true(recordsOf(dir, 'journal-00000003.ndjson').some((r) => r.t === 'session.turn' && r.p.id === 'b4' && (r.p.turn as { prompt: string }).prompt === 'reader after reload'));
  t.deepEqual(serializeSessions(writer.listSessions()), await freshReplay(dir, onWarning));
  await Promise.all([reader.close(), writer.close()]);
  t.deepEqual(warnings, []);
});

test('a store whose only activity is a queued touch, left behind by two compactions, writes it where readers see it (no reads before the flush)', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const clock = new FakeClock(T0);
  const reader = openStore(dir, onWarning, { clock: clock.read, touchFlushMs: 60_000 });
  reader.ensureSession('a0');
  await reader.flush();
  clock.advance(HOUR);
  t.truthy(reader.getSession('a0')); // queues a deferred touch at T0 + 1 h
  const touchedAt = new Date(clock.now).toISOString();

  const writer = openStore(dir, onWarning, { clock: clock.read });
  const compact = () => compactSessions({ dir, onWarning, ttlMs: NO_TTL, now: () => clock.now });
  await writeAgedSessions(writer, clock, ['b1'], 1000);
  await compact();
  await writeAgedSessions(writer, clock, ['b2'], 1000);
  await compact();
  await writer.close();
  t.deepEqual(segmentsIn(dir), ['journal-00000003.ndjson']);

  // The first thing the reader does is commit its queued touch.
  await reader.flush();
  const replay = await freshReplay(dir, onWarning);
  t.is(replay.find((s) => s.id === 'a0')?.lastAccessedAt, touchedAt, `the touch is in the live segment, so a replay sees it (segments now: ${segmentsIn(dir).join(', ')})`);
  t.deepEqual(segmentsIn(dir), ['journal-00000003.ndjson'], 'no folded (archived) segment is re-created');
  t.deepEqual(serializeSessions(reader.listSessions()), replay);
  await reader.close();
  t.deepEqual(warnings, []);
});
