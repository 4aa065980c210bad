/**
 * Loaded with `node --import` into the CLI, which passes it on to the
 * process it restarts (compact): with SJ_PAUSE set to a JSON PauseAt, the
 * process that makes the first file-system call named `call` on a path
 * under `dir` containing `match` writes its pid to `marker` and stops
 * itself (SIGSTOP) just before the call runs; it runs once the test sends
 * SIGCONT. So a test holds a compaction at a known point, sends its
 * signals while it is held, and lets it go on: no timing, no large store.
 */
import fs from 'node:fs';
import { installFsHook, setFsHook } from './crash-fs-hook.js';

export interface PauseAt {
  dir: string;
  /** An fs function name, e.g. `readSync`, `renameSync`. */
  call: string;
  /** A substring of the path. */
  match: string;
  /** A file outside `dir` that receives the pid of the process that paused. */
  marker: string;
}

const pauseAt = process.env.SJ_PAUSE ? (JSON.parse(process.env.SJ_PAUSE) as PauseAt) : undefined;
if (pauseAt) {
  installFsHook(pauseAt.dir);
  let paused = false;
  setFsHook((call) => {
    if (paused || call.name !== pauseAt.call || !call.target.includes(pauseAt.match)) return undefined;
    paused = true;
    fs.writeFileSync(pauseAt.marker, String(process.pid));
    return 'stop';
  });
}
