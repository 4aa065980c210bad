/**
 * A segment that becomes shorter than what a reader has read of it: writers
 * never take bytes back, so only a tool or a person can do it (truncate,
 * an editor). A reader notices (SEGMENT_SHRANK), and either goes back to the
 * start of the commit it had not applied yet, or replays the store again, so
 * that its view never holds what the file no longer does.
 */
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { Journal, SessionStore, type JournalWarning } from '../../src/index.js';
import { tempStoreDir } from '../helpers/temp-store.js';

/** The fixtures' "now" for this family. */
const NOW = Date.UTC(2026, 10, 21, 9, 0, 0);
const SEGMENT = 'journal-00000001.ndjson';

function open(dir: string, warnings: JournalWarning[] = []) {
  return SessionStore.openSync({ dir, clock: () => NOW, autoCompact: false, onWarning: (w) => warnings.push(w) });
}
const turn = (prompt: string) => ({ prompt, response: 'r', timestamp: new Date(NOW) });
const prompts = (store: SessionStore, id: string) => store.getSession(id)?.turns.map((x) => x.prompt);

test('truncated below records already applied: the reader replays the store again and matches a fresh replay', async (t) => {
  const dir = tempStoreDir(t);
  const writer = open(dir);
  writer.ensureSession('s1');
  writer.addTurn('s1', turn('one'));
  await writer.flush();
  const keep = fs.statSync(path.join(dir, SEGMENT)).size;
  writer.addTurn('s1', turn('two'));
  await writer.close();

  const warnings: JournalWarning[] = [];
  const reader = open(dir, warnings);
  t.deepEqual(prompts(reader, 's1'), ['one', 'two']);
  fs.truncateSync(path.join(dir, SEGMENT), keep); // someone cut the file back
  t.deepEqual(prompts(reader, 's1'), ['one'], 'the view no longer holds the cut turn');
  t.deepEqual(warnings.map((w) => w.code), ['SEGMENT_SHRANK']);
  t.deepEqual(prompts(open(dir), 's1'), ['one'], 'a fresh replay agrees');
  await reader.close();
});

test('truncated inside a commit not yet applied: the reader goes back to where it began and applies what comes next', async (t) => {
  const dir = tempStoreDir(t);
  const writer = open(dir);
  writer.ensureSession('s1');
  await writer.flush();
  const file = path.join(dir, SEGMENT);
  const before = fs.statSync(file).size;
  // The first two of three records of a commit whose write failed half-way (the kernel's short write).
  const record = (seq: number, extra: string) => `{"v":1,"seq":${seq},"ts":"2026-11-21T09:00:00.000Z","w":"1@elsewhere"${extra},"t":"session.turn","p":{"id":"s1","turn":{"prompt":"lost-${seq}","response":"r","timestamp":"2026-11-21T09:00:00.000Z"}}}\n`;
  fs.appendFileSync(file, record(2, ',"c":"0000aaaa","n":3') + record(3, ''));

  const warnings: JournalWarning[] = [];
  const reader = open(dir, warnings);
  t.deepEqual(prompts(reader, 's1'), [], 'an unfinished commit is not applied');
  fs.truncateSync(file, before);
  writer.addTurn('s1', turn('after'));
  await writer.close();
  t.deepEqual(prompts(reader, 's1'), ['after']);
  t.deepEqual(warnings.map((w) => w.code), ['SEGMENT_SHRANK']);
  t.deepEqual(prompts(open(dir), 's1'), ['after'], 'a fresh replay agrees');
  await reader.close();
});

test('truncated below records already applied while an async open replays it: the open starts again and matches a fresh replay', async (t) => {
  const dir = tempStoreDir(t);
  const writer = open(dir);
  writer.ensureSession('s1');
  for (let i = 0; i < 400; i++) writer.addTurn('s1', { prompt: `p${i}`, response: 'r'.repeat(500), timestamp: new Date(NOW) });
  await writer.close();
  const file = path.join(dir, SEGMENT);
  const keep = Math.floor(fs.statSync(file).size / 2);

  const warnings: JournalWarning[] = [];
  let cut = false;
  const kv = { turns: new Map<string, number>() };
  const journal = await Journal.open({
    dir,
    consumer: {
      reset: () => kv.turns.clear(),
      restore: () => undefined,
      apply: (r) => {
        kv.turns.set(r.type, (kv.turns.get(r.type) ?? 0) + 1);
        return undefined;
      },
    },
    create: false,
    onWarning: (w) => warnings.push(w),
    // Between two reads of the replay, past `keep`: someone cuts the file back below what was applied.
    replayPace: (bytes) => {
      if (!cut && bytes > keep + 70_000) {
        cut = true;
        fs.truncateSync(file, keep);
      }
      return undefined;
    },
  });
  t.true(cut);
  t.deepEqual(warnings.map((w) => w.code), ['SEGMENT_SHRANK', 'INCOMPLETE_TAIL']);
  await journal.close();
  const fresh = open(dir);
  t.is(kv.turns.get('session.turn'), fresh.getSession('s1')?.turns.length, 'the open holds what a fresh replay holds, not what was cut');
  await fresh.close();
});
