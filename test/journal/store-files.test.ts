/**
 * openStoreFile opens only regular files: a FIFO in a store file's place
 * would block open() (and read()) forever, so what is not a regular file is
 * refused from lstat alone, in every mode, without being opened. A test that
 * regressed would hang its worker: ava's timeout fails it.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { openStoreFile, closeQuietly } from '../../src/storage/file/store-files.js';
import { SessionJournalError } from '../../src/index.js';
import { tempStoreDir } from '../helpers/temp-store.js';

const MODES = ['read', 'append', 'append-create'] as const;
const KINDS: Array<[string, (file: string) => void, string]> = [
  ['a FIFO', (file) => execFileSync('mkfifo', ['-m', '600', file]), 'NOT_A_FILE'],
  ['a directory', (file) => fs.mkdirSync(file, { mode: 0o700 }), 'NOT_A_FILE'],
  ['a dangling symlink', (file) => fs.symlinkSync(`${file}.missing`, file), 'SYMLINK_REFUSED'],
];

for (const [kind, make, code] of KINDS) {
  for (const mode of MODES) {
    test(`${kind} in a store file's place is refused with ${code} in mode ${mode}, without being opened or created`, (t) => {
      const dir = tempStoreDir(t);
      fs.mkdirSync(dir, { mode: 0o700 });
      const file = path.join(dir, 'journal-00000001.ndjson');
      make(file);
      const err = t.throws(() => openStoreFile(file, mode));
      t.true(err instanceof SessionJournalError);
      t.is((err as SessionJournalError).code as string, code);
      t.false(fs.existsSync(`${file}.missing`), 'a symlink target is never created');
    });
  }
}

test('a missing file is undefined unless created, and a created one is a regular 0600 file', (t) => {
  const dir = tempStoreDir(t);
  fs.mkdirSync(dir, { mode: 0o700 });
  const file = path.join(dir, 'journal-00000001.ndjson');
  t.is(openStoreFile(file, 'read'), undefined);
  t.is(openStoreFile(file, 'append'), undefined);
  const fd = openStoreFile(file, 'append-create')!;
  closeQuietly(fd);
  t.true(fs.lstatSync(file).isFile());
  t.is(fs.lstatSync(file).mode & 0o777, 0o600);
});
