import fs from 'node:fs';
import path from 'node:path';
import { ioError } from '../../errors.js';
import { closeQuietly, removeQuietly } from './store-files.js';
import { tempNameFor } from './store-layout.js';

/**
 * The clock of the file system that holds the store: the mtime of a probe
 * file written in `dir` just now. The kernel (or the NFS server) stamps it,
 * so a process whose own clock is wrong (a bad `now`, faketime, a
 * container's offset) cannot move it. Archive file ages are measured on this
 * clock too. The probe's name is fixed per process and matches the temporary
 * file pattern, so if removing it fails, the next compaction of this process
 * reuses and removes it, and after the process is gone any compaction does.
 */
export function fileSystemNow(dir: string): number {
  const probe = tempNameFor(path.join(dir, 'clock-probe'), true);
  let fd: number | undefined;
  try {
    fd = fs.openSync(probe, fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW, 0o600);
    fs.writeSync(fd, '\n'); // a write always sets mtime, on a new file or a reused one
    const mtime = fs.fstatSync(fd).mtimeMs;
    fs.closeSync(fd);
    fd = undefined;
    fs.unlinkSync(probe);
    return mtime;
  } catch (err) {
    if (fd !== undefined) closeQuietly(fd);
    removeQuietly(probe);
    throw ioError('clock probe', probe, err);
  }
}
