import { ErrorCodes, SessionJournalError, ioError } from '../../errors.js';
import { ARCHIVE_DIR, archivedName, archivedNumberOf, isStoreName, segmentName, segmentNumberOf, snapshotName, snapshotNumberOf } from './store-layout.js';
import type { Stats } from 'node:fs';
const fs = process.getBuiltinModule('node:fs');
const path = process.getBuiltinModule('node:path');

// The names themselves are store-layout.ts's; these are re-exported for the modules that list and open files.
export { segmentName, segmentNumberOf, snapshotName };
export { LOCK_NAME } from './store-layout.js';

export interface StoreListing {
  /** Segment numbers, ascending. */
  segments: number[];
  /** Snapshot numbers, ascending. */
  snapshots: number[];
}

export const archiveDir = (dir: string): string => path.join(dir, ARCHIVE_DIR);
export const archivedSegmentPath = (dir: string, n: number): string => path.join(archiveDir(dir), archivedName(segmentName(n)));
export const archivedSnapshotPath = (dir: string, n: number): string => path.join(archiveDir(dir), archivedName(snapshotName(n)));

/** The segments and snapshots in archive/ (none when it is missing), ascending. */
export function listArchive(dir: string): StoreListing {
  const segments: number[] = [];
  const snapshots: number[] = [];
  for (const name of readStoreSubdir(archiveDir(dir))) {
    const seg = archivedNumberOf(name, 'journal');
    if (seg !== undefined) segments.push(seg);
    const snap = archivedNumberOf(name, 'snapshot');
    if (snap !== undefined) snapshots.push(snap);
  }
  const asc = (a: number, b: number) => a - b;
  return { segments: segments.sort(asc), snapshots: snapshots.sort(asc) };
}

export function listStore(dir: string): StoreListing {
  const segments: number[] = [];
  const snapshots: number[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { segments, snapshots };
    throw ioError('readdir', dir, err);
  }
  for (const name of names) {
    const seg = segmentNumberOf(name);
    if (seg !== undefined) segments.push(seg);
    const snap = snapshotNumberOf(name);
    if (snap !== undefined) snapshots.push(snap);
  }
  const asc = (a: number, b: number) => a - b;
  return { segments: segments.sort(asc), snapshots: snapshots.sort(asc) };
}

/**
 * Checks (and with `create`, makes) the store directory: a real directory,
 * not a symlink, not writable by group or others. Returns false when it does
 * not exist and was not created.
 */
export function prepareStoreDir(dir: string, create: boolean): boolean {
  let st: Stats;
  try {
    st = fs.lstatSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('lstat', dir, err);
    if (!create) return false;
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (mkErr) {
      throw ioError('mkdir', dir, mkErr);
    }
    st = fs.lstatSync(dir);
  }
  if (st.isSymbolicLink()) {
    throw new SessionJournalError(ErrorCodes.SYMLINK_REFUSED, `store directory ${dir} is a symbolic link; pass its real path`, { details: { path: dir } });
  }
  if (!st.isDirectory()) {
    throw new SessionJournalError(ErrorCodes.NOT_A_DIRECTORY, `store path ${dir} is not a directory`, { details: { path: dir } });
  }
  if ((st.mode & 0o022) !== 0) {
    throw new SessionJournalError(
      ErrorCodes.UNSAFE_PERMISSIONS,
      `store directory ${dir} is writable by group or others (mode ${(st.mode & 0o777).toString(8)}); run chmod 700 on it`,
      { details: { path: dir, mode: st.mode & 0o777 } },
    );
  }
  return true;
}

/**
 * Makes a lock directory just taken 0700, as every directory of the store:
 * proper-lockfile creates it with a plain mkdir, so it would be 0755 under
 * umask 022. When the chmod fails the lock is released before the error is
 * thrown, so a failed acquisition never leaves a lock behind.
 */
export function restrictLockDir(lockPath: string, release: () => void): void {
  try {
    fs.chmodSync(lockPath, 0o700);
  } catch (err) {
    try {
      release();
    } catch {
      // the chmod failure is the error to report; a lock left behind goes stale
    }
    throw ioError('chmod', lockPath, err);
  }
}

/**
 * The names in a directory of the store (archive/, quarantine/) that may be
 * missing: [] when it is. It gets prepareStoreDir's checks first, so a
 * symlink in its place is refused (SYMLINK_REFUSED) instead of listed, and
 * nothing is ever deleted in the directory it points to.
 */
export function readStoreSubdir(dir: string): string[] {
  if (!prepareStoreDir(dir, false)) return [];
  try {
    return fs.readdirSync(dir);
  } catch (err) {
    throw ioError('readdir', dir, err);
  }
}

/** prepareStoreDir for a store that must already exist: STORE_NOT_FOUND when it does not. */
export function requireStoreDir(dir: string): void {
  if (!prepareStoreDir(dir, false)) throw new SessionJournalError(ErrorCodes.STORE_NOT_FOUND, `no store at ${dir}`, { details: { dir } });
}

/**
 * requireStoreDir, and the directory must hold a store's names (isStoreName):
 * NOT_A_STORE for an empty or unrelated directory, naming the subdirectories
 * that are stores (a store's parent given by mistake). For the command-line
 * tools, which would otherwise report such a directory as a clean, empty store.
 */
export function requireStore(dir: string): void {
  requireStoreDir(dir);
  const names = readStoreSubdir(dir);
  if (names.some(isStoreName)) return;
  const stores = names.filter((name) => isStoreBelow(path.join(dir, name))).sort();
  const found = stores.length === 0 ? (names.length === 0 ? ' (it is empty)' : '') : `; ${stores.map((n) => path.join(dir, n)).join(', ')} ${stores.length === 1 ? 'is one' : 'are stores'}`;
  throw new SessionJournalError(ErrorCodes.NOT_A_STORE, `${dir} is not a store: it holds no segment (journal-*.ndjson), snapshot or archive/${found}`, { details: { dir, stores } });
}

/** A real directory (not a symlink) holding a store's names. */
function isStoreBelow(dir: string): boolean {
  try {
    return fs.lstatSync(dir).isDirectory() && fs.readdirSync(dir).some(isStoreName);
  } catch {
    return false; // unreadable: not one we can name
  }
}

/**
 * Opens a store file without following symlinks, creating it 0600 when
 * `create`. Returns undefined when it does not exist and was not created.
 *
 * Only a regular file is ever opened: a FIFO would block the open (and a
 * read) forever, a device could be anything. So the name is lstat'ed first
 * and anything else is refused (NOT_A_FILE, SYMLINK_REFUSED) without being
 * opened; O_NOFOLLOW | O_NONBLOCK and an fstat of what was opened guard the
 * race where the name is replaced in between (on a regular file O_NONBLOCK
 * changes nothing).
 */
export function openStoreFile(file: string, mode: 'read' | 'append' | 'append-create'): number | undefined {
  const { O_RDONLY, O_RDWR, O_APPEND, O_CREAT, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
  let existing: Stats | undefined;
  try {
    existing = fs.lstatSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('lstat', file, err);
    if (mode !== 'append-create') return undefined;
  }
  // A symlink is left to O_NOFOLLOW (ELOOP, kept as the cause): opening one never blocks.
  if (existing && !existing.isSymbolicLink()) refuseUnlessRegular(file, existing);
  const flags = mode === 'read' ? O_RDONLY : O_RDWR | O_APPEND | (mode === 'append-create' ? O_CREAT : 0);
  let fd: number;
  try {
    fd = fs.openSync(file, flags | O_NOFOLLOW | O_NONBLOCK, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') refuseUnlessRegular(file, { isSymbolicLink: () => true, isFile: () => false }, err);
    if (code === 'EISDIR' || code === 'ENXIO') refuseUnlessRegular(file, { isSymbolicLink: () => false, isFile: () => false }, err);
    throw ioError('open', file, err);
  }
  try {
    refuseUnlessRegular(file, fs.fstatSync(fd));
  } catch (err) {
    closeQuietly(fd);
    throw ioError('fstat', file, err);
  }
  return fd;
}

/** SYMLINK_REFUSED or NOT_A_FILE unless `st` is a regular file. */
type FileType = Pick<Stats, 'isSymbolicLink' | 'isFile'> & Partial<Pick<Stats, 'isDirectory' | 'isFIFO' | 'isSocket' | 'isCharacterDevice' | 'isBlockDevice'>>;

function refuseUnlessRegular(file: string, st: FileType, cause?: unknown): void {
  if (st.isSymbolicLink()) {
    throw new SessionJournalError(ErrorCodes.SYMLINK_REFUSED, `store file ${file} is a symbolic link; refusing to follow it`, { cause, details: { path: file } });
  }
  if (!st.isFile()) {
    throw new SessionJournalError(ErrorCodes.NOT_A_FILE, `store file ${file} is not a regular file (${fileKind(st)}); move it out of the store`, { cause, details: { path: file, kind: fileKind(st) } });
  }
}

/** What a non-regular file is, for messages. */
function fileKind(st: FileType): string {
  if (st.isDirectory?.()) return 'a directory';
  if (st.isFIFO?.()) return 'a FIFO';
  if (st.isSocket?.()) return 'a socket';
  if (st.isCharacterDevice?.() || st.isBlockDevice?.()) return 'a device';
  return 'another kind of file';
}

/**
 * The size of a store file by name, without following a symlink; 0 when it
 * is gone (a compaction moved it meanwhile). For totals and progress only.
 */
export function fileSizeOrZero(file: string): number {
  try {
    return fs.lstatSync(file).size;
  } catch {
    return 0;
  }
}

/** The size of an open file. */
export function fdSize(fd: number, file: string): number {
  try {
    return fs.fstatSync(fd).size;
  } catch (err) {
    throw ioError('fstat', file, err);
  }
}

/** Reads `length` bytes at `position` into `buffer` (fewer only at end of file); returns the count. */
export function readFully(fd: number, file: string, buffer: Buffer, position: number, length: number): number {
  let total = 0;
  try {
    while (total < length) {
      const n = fs.readSync(fd, buffer, total, length - total, position + total);
      if (n === 0) break;
      total += n;
    }
  } catch (err) {
    throw ioError('read', file, err);
  }
  return total;
}

/** Writes all of `bytes` at the descriptor's position (a short write is continued); system errors are thrown as they are. */
export function writeFully(fd: number, bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.length) written += fs.writeSync(fd, bytes, written, bytes.length - written);
}

/** fsync of a directory, so a created or renamed entry survives power loss. */
export function fsyncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    fs.fsyncSync(fd);
  } catch (err) {
    throw ioError('fsync', dir, err);
  } finally {
    if (fd !== undefined) closeQuietly(fd);
  }
}

/**
 * Removes a temporary file on a failure path, where it may never have been
 * created or may already be renamed: a leftover is cleaned up by the next
 * compaction (its name says whose it is).
 */
export function removeQuietly(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch {
    // see above
  }
}

/**
 * Closes a descriptor whose data is already written (or never was): a
 * failing close has nothing left to lose and must not hide the real outcome.
 */
export function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // see above
  }
}

export const storePath = (dir: string, name: string): string => path.join(dir, name);
