/**
 * Wraps the file-system calls of `node:fs` (its default export is the very
 * object the library, fs streams and graceful-fs use) so a test can see,
 * fail or die at each call a compaction makes.
 *
 * Install it BEFORE the library is imported (use a dynamic import after
 * `installFsHook`): journal.ts captures `promisify(fs.fdatasync)` at load
 * time, and graceful-fs (proper-lockfile) clones fs when it loads; both then
 * hold the wrappers. Only calls on paths under `root`, and on descriptors
 * opened on such paths, are reported: the test runner's own I/O is not.
 */
import fs from 'node:fs';

export interface FsCall {
  /** 1-based number among the reported calls since the hook was set. */
  n: number;
  /** Function name, e.g. `renameSync`, `write` (callback style). */
  name: string;
  /** The path (or the path the descriptor was opened on). */
  target: string;
}

/** What to do at a call: let it run, fail it with an error, SIGKILL the process before it runs, or SIGSTOP it there (it runs once the parent sends SIGCONT). */
export type FsAction = undefined | Error | 'kill' | 'stop';
export type FsHook = (call: FsCall) => FsAction;

const PATH_SYNC = ['openSync', 'renameSync', 'unlinkSync', 'mkdirSync', 'rmdirSync', 'readdirSync', 'lstatSync', 'statSync', 'utimesSync'] as const;
const FD_SYNC = ['closeSync', 'readSync', 'writeSync', 'fsyncSync', 'fdatasyncSync', 'fstatSync', 'ftruncateSync'] as const;
const PATH_CB = ['open', 'rename', 'unlink', 'mkdir', 'rmdir', 'stat', 'lstat', 'utimes'] as const;
const FD_CB = ['close', 'read', 'write', 'writev', 'fsync', 'fdatasync', 'fstat'] as const;

let root: string | undefined;
let hook: FsHook | undefined;
let counter = 0;
const tracked = new Map<number, string>();
let installed = false;

function relevantPath(p: unknown): string | undefined {
  const s = typeof p === 'string' ? p : p instanceof URL ? p.pathname : Buffer.isBuffer(p) ? p.toString() : undefined;
  return s !== undefined && root !== undefined && s.startsWith(root) ? s : undefined;
}

function decide(name: string, target: string | undefined): FsAction {
  if (target === undefined || !hook) return undefined;
  const action = hook({ n: ++counter, name, target });
  if (action === 'kill') {
    process.kill(process.pid, 'SIGKILL');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
  }
  if (action === 'stop') {
    process.kill(process.pid, 'SIGSTOP'); // delivered at once: the call below runs after SIGCONT
    return undefined;
  }
  return action;
}

/** Wraps the fs functions once; `under` is the directory whose calls are reported. */
export function installFsHook(under: string): void {
  root = under;
  if (installed) return;
  installed = true;
  const f = fs as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const name of PATH_SYNC) {
    const orig = f[name]!;
    f[name] = function (this: unknown, ...args: unknown[]) {
      const target = relevantPath(args[0]);
      const action = decide(name, target);
      if (action instanceof Error) throw action;
      const result = orig.apply(this, args);
      if (name === 'openSync' && target !== undefined) tracked.set(result as number, target);
      return result;
    };
  }
  for (const name of FD_SYNC) {
    const orig = f[name]!;
    f[name] = function (this: unknown, ...args: unknown[]) {
      const target = tracked.get(args[0] as number);
      const action = decide(name, target);
      if (action instanceof Error) throw action;
      const result = orig.apply(this, args);
      if (name === 'closeSync') tracked.delete(args[0] as number);
      return result;
    };
  }
  for (const name of PATH_CB) {
    const orig = f[name]!;
    f[name] = function (this: unknown, ...args: unknown[]) {
      const target = relevantPath(args[0]);
      const action = decide(name, target);
      const cb = args[args.length - 1];
      if (action instanceof Error && typeof cb === 'function') {
        process.nextTick(cb as (e: Error) => void, action);
        return undefined;
      }
      if (name === 'open' && target !== undefined && typeof cb === 'function') {
        args[args.length - 1] = (err: Error | null, fd: number) => {
          if (!err) tracked.set(fd, target);
          (cb as (e: Error | null, fd: number) => void)(err, fd);
        };
      }
      return orig.apply(this, args);
    };
  }
  for (const name of FD_CB) {
    const orig = f[name]!;
    f[name] = function (this: unknown, ...args: unknown[]) {
      const target = tracked.get(args[0] as number);
      const action = decide(name, target);
      const cb = args[args.length - 1];
      if (action instanceof Error && typeof cb === 'function') {
        process.nextTick(cb as (e: Error) => void, action);
        return undefined;
      }
      if (name === 'close' && target !== undefined) tracked.delete(args[0] as number);
      return orig.apply(this, args);
    };
  }
}

/** Sets (or with undefined clears) the hook; numbering restarts at 1. */
export function setFsHook(next: FsHook | undefined): void {
  hook = next;
  counter = 0;
}

/** A system error as Node makes them. */
export function systemError(code: 'ENOSPC' | 'EIO' | 'EACCES', syscall: string, target: string): NodeJS.ErrnoException {
  const text = { ENOSPC: 'no space left on device', EIO: 'i/o error', EACCES: 'permission denied' }[code];
  const errno = { ENOSPC: -28, EIO: -5, EACCES: -13 }[code];
  return Object.assign(new Error(`${code}: ${text}, ${syscall} '${target}'`), { code, errno, syscall, path: target });
}
