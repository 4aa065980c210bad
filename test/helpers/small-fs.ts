/**
 * A real, small file system for the fault tests: an ext4 image on a loop
 * device, mounted under the test's temp dir, so a full disk is the kernel's
 * ENOSPC (short writes included), not an injected error. Needs root, as CI
 * has (.ci/run runs as root); unmounted and removed when the test ends.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { tempStoreDir } from './temp-store.js';

export function mountSmallExt4(t: ExecutionContext, sizeMiB: number): string {
  if (process.getuid?.() !== 0) throw new Error('this test mounts a loop ext4 image and needs root (CI runs as root)');
  const base = tempStoreDir(t);
  fs.mkdirSync(base, { recursive: true, mode: 0o700 });
  const image = path.join(base, 'disk.img');
  const mountPoint = path.join(base, 'mnt');
  fs.mkdirSync(mountPoint, { mode: 0o700 });
  fs.writeFileSync(image, Buffer.alloc(0));
  fs.truncateSync(image, sizeMiB * 1024 * 1024);
  execFileSync('mkfs.ext4', ['-q', '-F', '-b', '1024', '-m', '0', image], { stdio: 'pipe' });
  execFileSync('mount', ['-o', 'loop', image, mountPoint], { stdio: 'pipe' });
  t.teardown(() => {
    try {
      execFileSync('umount', ['-l', mountPoint], { stdio: 'pipe' });
    } catch {
      // already gone
    }
  });
  fs.chmodSync(mountPoint, 0o700);
  return mountPoint;
}

/** Fills the file system with one file until the kernel says ENOSPC; returns its path (delete it to free the space). */
export function fillDisk(dir: string): string {
  const filler = path.join(dir, 'filler.bin');
  const fd = fs.openSync(filler, 'w', 0o600);
  const chunk = Buffer.alloc(16 * 1024, 0x61);
  try {
    for (let size = chunk.length; size >= 1; ) {
      try {
        fs.writeSync(fd, chunk, 0, size);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
        size = Math.floor(size / 2); // the last blocks: smaller writes, down to one byte
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return filler;
}
