/**
 * Sessions restored from a snapshot are parsed when first read (issue 11,
 * E and D): a process that opens a store of many sessions to read one
 * parses one line, and every other read sees exactly what an eager restore
 * gave. A bad entry inside a snapshot whose hash matches (only a writer's
 * bug can make one) is reported with file and line when it is read, and
 * reads as absent, as it did when it was rejected at open.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { SessionStore, compactSessions, type SessionData } from '../../src/index.js';
import { readSnapshotSync } from '../../src/storage/file/snapshot-file.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';

const T0 = Date.parse('2026-03-01T00:00:00.000Z');
const clock = () => T0 + 60_000;
const YEAR = 365 * 24 * 3600 * 1000;

/** A store of `count` sessions (one with an extra field and a codex id), folded into one snapshot. */
async function compactedStore(t: Parameters<typeof tempStoreDir>[0], count: number): Promise<{ dir: string; written: SessionData[] }> {
  const dir = tempStoreDir(t);
  let now = T0;
  const store = SessionStore.openSync({ dir, autoCompact: false, maxSessions: 10_000, ttlMs: YEAR, clock: () => now, fsync: false });
  for (let i = 0; i < count; i++) {
    now += 1;
    const id = `s-${String(i).padStart(4, '0')}`;
    store.ensureSession(id);
    store.addTurn(id, { prompt: `p${i}`, response: `r${i}`, timestamp: new Date(T0 + i) });
  }
  store.setCodexConversationId('s-0001', 'conv-1');
  store.updateSession('s-0002', { alpha: 1 } as Partial<SessionData>);
  const written = store.listSessions().map((s) => structuredClone(s));
  await store.close();
  const result = await compactSessions({ dir, maxSessions: 10_000, ttlMs: YEAR, now: clock });
  t.is(result.status, 'compacted');
  return { dir, written };
}

/** Counts JSON.parse calls on lines that hold a session (the snapshot's entries), while `fn` runs. */
function sessionParses<T>(fn: () => T): { value: T; parses: number } {
  const parse = JSON.parse;
  let parses = 0;
  JSON.parse = ((text: string, reviver?: Parameters<typeof JSON.parse>[1]) => {
    if (typeof text === 'string' && text.includes('"turns":')) parses++;
    return parse(text, reviver);
  }) as typeof JSON.parse;
  try {
    return { value: fn(), parses };
  } finally {
    JSON.parse = parse;
  }
}

test('opening a snapshot of 300 sessions and reading one parses one entry; listSessions then parses the rest', async (t) => {
  const { dir } = await compactedStore(t, 300);
  const opened = sessionParses(() => SessionStore.openSync({ dir, readOnly: true, maxSessions: 10_000, ttlMs: YEAR, clock }));
  t.is(opened.parses, 1, 'at open, only the entry whose line begins with a field updateSession added (s-0002: its id is not read off the line)');
  const store = opened.value;
  const one = sessionParses(() => store.getSession('s-0150'));
  t.is(one.parses, 1);
  t.is(one.value?.turns[0]?.prompt, 'p150');
  const again = sessionParses(() => store.getSession('s-0150'));
  t.is(again.parses, 0, 'made once');
  const all = sessionParses(() => store.listSessions());
  t.is(all.value.length, 300);
  t.is(all.parses, 298);
});

test('what lazily restored sessions read is what was written: every field, the codex id, an added field, dates as Dates', async (t) => {
  const { dir, written } = await compactedStore(t, 40);
  const store = SessionStore.openSync({ dir, readOnly: true, maxSessions: 10_000, ttlMs: YEAR, clock });
  for (const w of written) t.deepEqual(store.getSession(w.id), w, w.id);
  t.true(store.getSession('s-0003')!.createdAt instanceof Date);
  t.deepEqual(store.listSessions(), written);
});

test('a writer mutates a session still unparsed: the mutation lands on the restored session and survives reopen', async (t) => {
  const { dir } = await compactedStore(t, 20);
  const store = SessionStore.openSync({ dir, autoCompact: false, maxSessions: 10_000, ttlMs: YEAR, clock });
  store.addTurn('s-0007', { prompt: 'later', response: 'yes', timestamp: new Date(T0 + 99) });
  t.false(store.deleteSession('nope'));
  t.true(store.deleteSession('s-0008'));
  await store.close();
  const reopened = SessionStore.openSync({ dir, readOnly: true, maxSessions: 10_000, ttlMs: YEAR, clock });
  t.deepEqual(reopened.getSession('s-0007')?.turns.map((turn) => turn.prompt), ['p7', 'later']);
  t.is(reopened.getSession('s-0008'), undefined);
  t.is(reopened.listSessions().length, 19);
});

/** Rewrites one entry of the snapshot and its footer's hash, as a writer with a bug would publish it. */
function plantBadEntry(dir: string, id: string, edit: (line: string) => string): { file: string; line: number } {
  const file = path.join(dir, fs.readdirSync(dir).find((f) => /^snapshot-\d+\.ndjson$/.test(f))!);
  const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
  const index = lines.findIndex((l) => l.includes(`"id":"${id}"`));
  lines[index] = edit(lines[index]!);
  const body = lines.slice(0, -1);
  const footer = JSON.parse(lines[lines.length - 1]!) as { end: true; entries: number; sha256: string };
  footer.sha256 = crypto.createHash('sha256').update(body.map((l) => `${l}\n`).join('')).digest('hex');
  fs.writeFileSync(file, `${[...body, JSON.stringify(footer)].join('\n')}\n`);
  return { file, line: index + 1 };
}

test('a bad entry in a snapshot whose hash matches: reported with file and line when read, and absent; the others read', async (t) => {
  const { dir } = await compactedStore(t, 10);
  const planted = plantBadEntry(dir, 's-0004', (l) => l.replace(/"createdAt":"[^"]*"/, '"createdAt":"2026-02-30T00:00:00.000Z"'));
  const { warnings, onWarning } = collectWarnings();
  const store = SessionStore.openSync({ dir, readOnly: true, maxSessions: 10_000, ttlMs: YEAR, clock, onWarning });
  t.deepEqual(warnings, [], 'nothing is parsed, so nothing is found, at open');
  t.is(store.getSession('s-0004'), undefined);
  t.is(warnings.length, 1);
  t.like(warnings[0], { code: 'INVALID_DATE', file: planted.file, line: planted.line });
  t.is(store.getSession('s-0005')?.turns.length, 1);
  t.is(store.listSessions().length, 9);
  t.is(warnings.length, 1, 'reported once');
});

test('an entry whose id read off the line differs from the parsed one is refused when made (INVALID_PAYLOAD), not filed under the wrong id', async (t) => {
  const { dir } = await compactedStore(t, 5);
  // The line still starts like s-0002's, but a later, duplicate top-level id wins in JSON.parse.
  const planted = plantBadEntry(dir, 's-0003', (l) => l.replace(/\}$/, ',"zz":0}').replace('"turns":', '"id":"other","turns":'));
  const { warnings, onWarning } = collectWarnings();
  const store = SessionStore.openSync({ dir, readOnly: true, maxSessions: 10_000, ttlMs: YEAR, clock, onWarning });
  t.is(store.getSession('s-0003'), undefined);
  t.is(store.getSession('other'), undefined);
  t.like(warnings[0], { code: 'INVALID_PAYLOAD', file: planted.file, line: planted.line });
});

test("an entry's line is let go once it is parsed: a reader that parses every entry (compaction) does not hold the state twice", async (t) => {
  const { dir } = await compactedStore(t, 3);
  const file = path.join(dir, fs.readdirSync(dir).find((f) => /^snapshot-\d+\.ndjson$/.test(f))!);
  const result = readSnapshotSync(file, () => undefined);
  if (!result.ok) return t.fail(result.reason);
  const entry = result.entries.find((e) => e.text.includes('"id":"s-0001"'))!;
  t.true(entry.text.startsWith('{"codexConversationId":"conv-1"'));
  t.is((entry.value as { id: string }).id, 's-0001');
  t.is(entry.text, '');
  t.is((entry.value as { id: string }).id, 's-0001', 'the value stays');
});
