import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readStoreSubdir } from './store-files.js';
import { tempFileOwner } from './store-layout.js';

/** True when `pid` names no running process on this host. */
function isDead(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Removes temporary files this store's writers left behind, but only those
 * provably abandoned: the name says they were made on this host by a process
 * that no longer runs. Anything else (another host's, a live process's, an
 * unknown name) is left alone. A symlink in place of `dir` is refused
 * (SYMLINK_REFUSED), never followed. Returns the paths removed.
 */
export function removeAbandonedTempFiles(dir: string): string[] {
  const removed: string[] = [];
  const names = readStoreSubdir(dir);
  const host = os.hostname();
  for (const name of names) {
    const owner = tempFileOwner(name);
    if (!owner || owner.host !== host || !isDead(owner.pid)) continue;
    const file = path.join(dir, name);
    try {
      if (!fs.lstatSync(file).isFile()) continue;
      fs.unlinkSync(file);
      removed.push(file);
    } catch {
      // gone already, or not ours to remove
    }
  }
  return removed;
}
