import { AUTO_COMPACT_CLAIM_NAME, tempNameFor } from './store-layout.js';
import { closeQuietly, removeQuietly } from './store-files.js';
const fs = process.getBuiltinModule('node:fs');
const os = process.getBuiltinModule('node:os');
const path = process.getBuiltinModule('node:path');

/**
 * The automatic compaction's claim, `compact.claim`: one small JSON file
 * that tells every process of a store whether an automatic compaction is
 * running, found the compaction lock busy, or failed, and since when (on
 * the clock of the store that started it).
 *
 * Why a file, and not only the compaction lock: a short-lived process (a
 * hook's fork) starts the child and exits at once, so the next process must
 * learn from the directory, not from memory, that one is already running
 * (the lock is taken only once the child has started, ~50 ms later), and
 * that one failed: otherwise every later fork would start a child that fails
 * the same way, and nobody would hear why. The starting process creates it
 * (O_EXCL: one starter wins); the child settles it when it ends: removed on
 * success, rewritten whole (temporary file and rename) with its state and
 * the tail of its stderr otherwise. A claim whose holder was killed goes
 * stale after the state's back-off, measured from `at`.
 */
export type ClaimState = 'running' | 'busy' | 'failed';

export interface CompactionClaim {
  state: ClaimState;
  /** When it was claimed or settled, epoch ms, on the claiming store's clock. */
  at: number;
  /** Who: `pid@host` of the process that wrote it. */
  by: string;
  /** For 'failed': the end of the child's stderr (its error line). */
  message?: string;
}

/** Larger than any claim this module writes: a bigger file is not one, and is never read whole. */
const MAX_CLAIM_BYTES = 8 * 1024;
/** Of a failed child's stderr, the end is kept (its error line and hint come last). */
const MAX_MESSAGE_CHARS = 2000;

/** Where the claim of the store in `dir` is. */
export const claimPath = (dir: string): string => path.join(dir, AUTO_COMPACT_CLAIM_NAME);
const STATES: readonly ClaimState[] = ['running', 'busy', 'failed'];

function encode(claim: CompactionClaim): string {
  return JSON.stringify({ ...claim, ...(claim.message !== undefined && { message: claim.message.slice(-MAX_MESSAGE_CHARS) }) }) + '\n';
}

/**
 * The claim in `dir`, undefined when there is none. What is not a claim (a
 * torn or foreign file, a directory, a FIFO, a symlink) reads as 'damaged':
 * the caller treats it as stale, never as a reason to throw.
 */
export function readClaim(dir: string): CompactionClaim | 'damaged' | undefined {
  const file = claimPath(dir);
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : 'damaged';
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.size > MAX_CLAIM_BYTES) return 'damaged';
    const buffer = Buffer.alloc(st.size);
    const n = fs.readSync(fd, buffer, 0, st.size, 0);
    const value = JSON.parse(buffer.toString('utf8', 0, n)) as Partial<CompactionClaim>;
    if (!STATES.includes(value.state as ClaimState) || typeof value.at !== 'number' || !Number.isFinite(value.at) || typeof value.by !== 'string') return 'damaged';
    return { state: value.state!, at: value.at, by: value.by, ...(typeof value.message === 'string' && { message: value.message }) };
  } catch {
    return 'damaged';
  } finally {
    closeQuietly(fd);
  }
}

const writer = (): string => `${process.pid}@${os.hostname()}`;

/**
 * Claims the automatic compaction of `dir` as running at `now`: true when
 * this process made the claim, false when another process's claim is there
 * (it won the race). Any other failure (a full disk, a read-only store) is
 * false too: no claim, no child.
 */
export function tryClaim(dir: string, now: number): boolean {
  return writeNew(claimPath(dir), { state: 'running', at: now, by: writer() });
}

/** Removes a claim found stale (or damaged), so that tryClaim can make a new one. */
export function dropClaim(dir: string): void {
  removeQuietly(claimPath(dir));
}

/**
 * Settles the claim when the compaction ends: removed on success, else
 * replaced whole by `state` (rename: a reader sees the old claim or the new,
 * never a torn one). Never throws: a claim that cannot be settled goes stale
 * after the back-off of 'running', which is as good as 'failed'.
 */
export function settleClaim(dir: string, outcome: { state: 'done' } | { state: 'busy' | 'failed'; at: number; message?: string }): void {
  if (outcome.state === 'done') return dropClaim(dir);
  const file = claimPath(dir);
  const temp = tempNameFor(file);
  try {
    if (!writeNew(temp, { state: outcome.state, at: outcome.at, by: writer(), ...(outcome.message !== undefined && { message: outcome.message }) })) return;
    fs.renameSync(temp, file);
  } catch {
    removeQuietly(temp);
  }
}

/** Creates `file` (0600, exclusive, no symlink) holding `claim`; false when it could not be created or written (then it is gone). */
function writeNew(file: string, claim: CompactionClaim): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  } catch {
    return false;
  }
  try {
    fs.writeSync(fd, encode(claim));
    return true;
  } catch {
    removeQuietly(file); // an empty claim would read as damaged; none at all is plainer
    return false;
  } finally {
    closeQuietly(fd);
  }
}
