/**
 * Automatic compaction: a store whose journal outgrows its snapshot
 * (autoCompact { minBytes, growthPercent }) spawns `session-journal compact`
 * in a child process; nothing written is lost. autoCompact: false never
 * compacts.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { SessionStore } from '../../src/index.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';
import { freshReplay, serializeSessions, snapshotsIn, turnOf, waitFor } from '../helpers/compaction-helpers.js';

const SESSIONS = Array.from({ length: 8 }, (_, i) => `auto-${i}`);
const filler = 'y'.repeat(200);

/** Writes `count` turns round-robin over SESSIONS, flushing every 10; returns the prompts per session. */
async function writeTurns(store: SessionStore, from: number, count: number, prompts: Map<string, string[]>): Promise<void> {
  for (let i = from; i < from + count; i++) {
    const id = SESSIONS[i % SESSIONS.length]!;
    const prompt = `turn ${i} ${filler}`;
    store.addTurn(id, turnOf(prompt));
    prompts.get(id)!.push(prompt);
    if (i % 10 === 9) await store.flush();
  }
  await store.flush();
}

/** The running automatic compaction of a store, if any (private; the test waits for it to end). */
const compactionOf = (store: SessionStore) => (store as unknown as { compaction?: Promise<number> }).compaction;

test('auto-compaction: a store that outgrows minBytes spawns a compaction (a snapshot appears) and nothing is lost', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const store = SessionStore.openSync({ dir, fsync: false, onWarning, autoCompact: { minBytes: 16 * 1024, growthPercent: 100 } });
  const prompts = new Map(SESSIONS.map((id) => [id, [] as string[]]));
  for (const id of SESSIONS) store.ensureSession(id);
  await writeTurns(store, 0, 150, prompts); // ~50 KB of journal

  t.true(await waitFor(() => snapshotsIn(dir).length > 0, 10_000, 50), 'a snapshot appears within 10 s');

  // Keep writing while (or after) it runs.
  await writeTurns(store, 150, 60, prompts);
  for (let i = 0; i < 20 && compactionOf(store); i++) await compactionOf(store);
  const view = serializeSessions(store.listSessions());
  await store.close();
  t.true(await waitFor(() => !fs.existsSync(path.join(dir, 'compact.lock')), 10_000), 'no compaction still runs');

  const replay = await freshReplay(dir, onWarning);
  t.deepEqual(replay.map((s) => s.id), [...SESSIONS].sort());
  for (const s of replay) t.deepEqual(s.turns.map((x) => x.prompt), prompts.get(s.id), `${s.id}: every turn, in order`);
  t.deepEqual(view, replay, "the writer's view equals a fresh replay");
  t.true(fs.existsSync(path.join(dir, 'archive')), 'the folded segment was archived');
  t.deepEqual(warnings, [], 'no AUTO_COMPACT_FAILED (nor any other warning)');
});

test('auto-compaction: autoCompact: false never compacts', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const store = SessionStore.openSync({ dir, fsync: false, onWarning, autoCompact: false });
  const prompts = new Map(SESSIONS.map((id) => [id, [] as string[]]));
  for (const id of SESSIONS) store.ensureSession(id);
  await writeTurns(store, 0, 150, prompts);
  t.is(compactionOf(store), undefined);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  await store.close();
  t.deepEqual(snapshotsIn(dir), []);
  t.false(fs.existsSync(path.join(dir, 'compact.lock')));
  t.false(fs.existsSync(path.join(dir, 'archive')));
  t.deepEqual(fs.readdirSync(dir).filter((n) => n.startsWith('journal-')), ['journal-00000001.ndjson']);
  t.deepEqual(warnings, []);
});
