/**
 * Child processes of the peer workloads: a JSON-lines conversation with a
 * long-running child (ready, go, report), the child's side of "go", and the
 * wall time of a short one from spawn to exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { now } from '../common.js';

export interface JsonChild {
  child: ChildProcess;
  /** The next line the child prints, parsed; rejects if it exits first. */
  next<T>(): Promise<T>;
  /** Writes the last line to the child's stdin and closes it (an open stdin would keep the child alive). */
  sendLast(line: string): void;
  exited: Promise<number>;
}

export function startJsonChild(args: readonly string[]): JsonChild {
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  let buf = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buf += chunk.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) !== -1) {
      lines.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
  const next = async <T>(): Promise<T> => {
    while (lines.length === 0) {
      const code = await Promise.race([new Promise<undefined>((resolve) => waiters.push(() => resolve(undefined))), exited]);
      if (typeof code === 'number' && lines.length === 0) throw new Error(`child ${args.join(' ')} exited with ${code}`);
    }
    return JSON.parse(lines.shift()!) as T;
  };
  return { child, next, sendLast: (line) => child.stdin!.end(`${line}\n`), exited };
}

/** In the child: resolves when the parent sends "go" on stdin (JsonChild.sendLast). */
export function waitForGo(): Promise<void> {
  return new Promise((resolve) => {
    let buf = '';
    const onData = (chunk: Buffer): void => {
      buf += chunk.toString();
      if (buf.includes('go')) {
        process.stdin.off('data', onData);
        process.stdin.pause();
        resolve();
      }
    };
    process.stdin.on('data', onData);
  });
}

/** Runs `node ...args` to the end: wall ms from spawn to exit, and what it printed. */
export function timedRun(args: readonly string[]): Promise<{ ms: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.on('error', reject);
    let ms = 0;
    child.on('exit', () => (ms = now() - t0)); // the wall time ends at exit; the output is complete at 'close'
    child.on('close', (code) => {
      if (code === 0) resolve({ ms, stdout });
      else reject(new Error(`node ${args.join(' ')} exited with ${code}`));
    });
  });
}
