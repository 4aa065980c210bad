/**
 * Abandoned temporary files: the next compaction removes those provably
 * abandoned (this host, a dead pid) and leaves alone a live process's, another
 * host's, and anything not named like ours.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compactSessions } from '../../src/index.js';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';
import { FakeClock, NO_TTL, T0, deadPid, freshReplay, openStore, writeAgedSessions } from '../helpers/compaction-helpers.js';

async function storeWithData(t: import('ava').ExecutionContext, onWarning: (w: import('../../src/index.js').JournalWarning) => void): Promise<string> {
  const dir = tempStoreDir(t);
  const clock = new FakeClock(T0);
  const store = openStore(dir, onWarning, { clock: clock.read });
  await writeAgedSessions(store, clock, ['a', 'b'], 1000);
  await store.close();
  return dir;
}

test('leftovers: a temp file of a dead process on this host is removed by the next compaction; a live pid, another host and foreign names are left alone', async (t) => {
  const { warnings, onWarning } = collectWarnings();
  const dir = await storeWithData(t, onWarning);
  const host = os.hostname();
  const dead = await deadPid();
  const files = {
    dead: `snapshot-00000002.ndjson.tmp-${host}-${dead}-deadbeef`,
    live: `snapshot-00000002.ndjson.tmp-${host}-${process.pid}-deadbeef`,
    otherHost: `snapshot-00000002.ndjson.tmp-not-${host}.example-${dead}-deadbeef`,
    notHex: `snapshot-00000002.ndjson.tmp-${host}-${dead}-NOTHEX!!`,
    unrelated: 'notes.txt',
  };
  for (const name of Object.values(files)) fs.writeFileSync(path.join(dir, name), 'partial snapshot', { mode: 0o600 });

  const result = await compactSessions({ dir, onWarning, ttlMs: NO_TTL });
  t.is(result.status, 'compacted');
  const left = fs.readdirSync(dir);
  t.false(left.includes(files.dead), 'the dead writer\'s temp file is removed');
  for (const key of ['live', 'otherHost', 'notHex', 'unrelated'] as const) t.true(left.includes(files[key]), `${key} is left alone`);
  t.deepEqual((await freshReplay(dir, onWarning)).map((s) => s.id), ['a', 'b'], 'readers ignore temp files');
  t.deepEqual(warnings, []);
});

test('leftovers: removed even when the compaction has nothing else to do', async (t) => {
  const { warnings, onWarning } = collectWarnings();
  const dir = await storeWithData(t, onWarning);
  await compactSessions({ dir, onWarning, ttlMs: NO_TTL });
  const name = `snapshot-00000003.ndjson.tmp-${os.hostname()}-${await deadPid()}-0badf00d`;
  fs.writeFileSync(path.join(dir, name), '{"kind":"snapshot"', { mode: 0o600 });
  const result = await compactSessions({ dir, onWarning, ttlMs: NO_TTL });
  t.is(result.status, 'nothing-to-do');
  t.false(fs.existsSync(path.join(dir, name)));
  t.deepEqual(warnings, []);
});

test('leftovers: a directory named like a temp file is not removed', async (t) => {
  const { warnings, onWarning } = collectWarnings();
  const dir = await storeWithData(t, onWarning);
  const name = `snapshot-00000002.ndjson.tmp-${os.hostname()}-${await deadPid()}-deadbeef`;
  fs.mkdirSync(path.join(dir, name));
  await compactSessions({ dir, onWarning, ttlMs: NO_TTL });
  t.true(fs.statSync(path.join(dir, name)).isDirectory());
  t.deepEqual(warnings, []);
});

test('leftovers: an abandoned archive temp file (archive/*.gz.tmp-host-deadpid-xxxxxxxx) is removed by the next compaction', async (t) => {
  // archive.ts says a failed archive's temp file is "removed later as an
  // abandoned temp file"; it is written in archive/, so that is where the
  // compaction must look for it.
  const { warnings, onWarning } = collectWarnings();
  const dir = await storeWithData(t, onWarning);
  fs.mkdirSync(path.join(dir, 'archive'), { mode: 0o700 });
  const name = `journal-00000001.ndjson.gz.tmp-${os.hostname()}-${await deadPid()}-deadbeef`;
  const file = path.join(dir, 'archive', name);
  fs.writeFileSync(file, 'half a gzip', { mode: 0o600 });
  await compactSessions({ dir, onWarning, ttlMs: NO_TTL });
  t.false(fs.existsSync(file), `${name} is still in archive/`);
  t.deepEqual(warnings, []);
});
