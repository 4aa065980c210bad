/**
 * readHistory beside a compaction: a segment listed and then gone (moved
 * into the archive) is a coded IO_ERROR whose cause is ENOENT, never a bare
 * system error (exit 70); auditTrail lists again and goes on.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { listHistorySegments, readHistory } from '../../src/storage/file/history-reader.js';
import { auditTrail } from '../../src/audit/replay-source.js';
import { DEFAULT_MAX_LINE_BYTES } from '../../src/engine/group-commit.js';
import { SessionJournalError } from '../../src/index.js';
import { copyFixtureStore } from '../helpers/fixture-store.js';

async function drain(items: AsyncIterable<{ kind: string }>): Promise<number> {
  let records = 0;
  for await (const item of items) if (item.kind === 'record') records++;
  return records;
}

test('a segment removed after it was listed is IO_ERROR with an ENOENT cause', async (t) => {
  const dir = copyFixtureStore(t, 'verify-clean', 'stores');
  const segments = listHistorySegments(dir);
  fs.rmSync(path.join(dir, 'journal-00000003.ndjson'));
  const err = await t.throwsAsync(drain(readHistory(dir, { maxLineBytes: DEFAULT_MAX_LINE_BYTES, segments })));
  t.true(err instanceof SessionJournalError);
  t.is((err as SessionJournalError).code, 'IO_ERROR');
  t.is(((err as SessionJournalError).cause as NodeJS.ErrnoException).code, 'ENOENT');
});

test('auditTrail goes on past a segment moved into the archive after it was listed', async (t) => {
  const dir = copyFixtureStore(t, 'verify-clean', 'stores');
  const all = await drain(auditTrail(dir));
  const trail = auditTrail(dir);
  const first = await trail.next(); // listed now
  t.is(first.value?.kind, 'segment');
  // As a compaction would: the live segment's bytes go to the archive under its name, the live one goes.
  const live = path.join(dir, 'journal-00000003.ndjson');
  const zlib = await import('node:zlib');
  fs.writeFileSync(path.join(dir, 'archive', 'journal-00000003.ndjson.gz'), zlib.gzipSync(fs.readFileSync(live)), { mode: 0o600 });
  fs.rmSync(live);
  t.is(await drain(trail), all, 'every record, once');
});
