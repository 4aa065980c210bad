/**
 * A writer that dies in the middle of its one write leaves half a line. This
 * writes such a half line under the store lock, exactly where the engine
 * writes (the end of the live segment), and then releases the lock, which is
 * what the survivors see once the dead writer's lock has gone stale (without
 * waiting the 10 s stale period). Used by the child-store.js `tear` command
 * and by the conformance suite's directory backend.
 */
import fs from 'node:fs';
import path from 'node:path';
import lockfile from 'proper-lockfile';

/** The live (highest-numbered) segment of a store directory, or undefined when there is none. */
export function liveSegmentPath(dir: string): string | undefined {
  const live = fs
    .readdirSync(dir)
    .filter((f) => /^journal-\d{8,}\.ndjson$/.test(f))
    .sort((a, b) => Number(a.slice(8, -7)) - Number(b.slice(8, -7)))
    .pop();
  return live === undefined ? undefined : path.join(dir, live);
}

/** Appends `text` (no newline added) to the live segment under the store lock; returns the segment's path. */
export function tearLiveSegment(dir: string, text: string): string {
  const file = liveSegmentPath(dir);
  if (!file) throw new Error('no segment to tear');
  const options = { lockfilePath: path.join(dir, 'journal.lock'), realpath: false, stale: 10_000 };
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      const release = lockfile.lockSync(dir, options);
      try {
        fs.appendFileSync(file, text);
      } finally {
        release();
      }
      return file;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
      Atomics.wait(sleeper, 0, 0, 1);
    }
  }
}
