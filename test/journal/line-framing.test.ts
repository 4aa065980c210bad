/**
 * One set of line rules for every reader (src/storage/file/line-framing.ts): the
 * journal's segment reader and the history reader behind verify and replay
 * must agree on where a line ends and how long it is. They did not: the
 * history reader counted the CR of a CRLF line against maxLineBytes, so a
 * record the journal applied was LINE_TOO_LONG for `replay`.
 */
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { readHistory } from '../../src/storage/file/history-reader.js';
import { SessionStore } from '../../src/index.js';
import { JOURNALS_NOW } from '../helpers/fixture-now.js';
import { tempStoreDir } from '../helpers/temp-store.js';

test('a CRLF line exactly maxLineBytes long is a record for the journal and for the history reader alike', async (t) => {
  const dir = tempStoreDir(t);
  fs.mkdirSync(dir, { mode: 0o700 });
  const line = '{"v":1,"seq":1,"ts":"2026-11-21T09:00:00.000Z","w":"1@host","t":"session.create","p":{"id":"s1"}}';
  fs.writeFileSync(path.join(dir, 'journal-00000001.ndjson'), `${line}\r\n`, { mode: 0o600 });
  const maxLineBytes = Buffer.byteLength(line);

  const warnings: string[] = [];
  const store = SessionStore.openSync({ dir, maxLineBytes, clock: () => JOURNALS_NOW, autoCompact: false, onWarning: (w) => warnings.push(w.code) });
  t.deepEqual(store.listSessions().map((s) => s.id), ['s1']);
  store.closeSync();
  const kinds: string[] = [];
  for await (const item of readHistory(dir, { maxLineBytes })) kinds.push(item.kind === 'problem' ? item.warning.code : item.kind);
  t.deepEqual(warnings, []);
  t.deepEqual(kinds.filter((k) => k !== 'segment'), ['record']);
});
