/**
 * Loaded into child processes with NODE_OPTIONS=--import=<this file>: each
 * Node process started with SJ_PROCESS_LOG in its environment appends one
 * line to that file saying who it is, so a test can count the processes a
 * feature starts and see how they were started (parent, V8 flags, argv).
 */
import fs from 'node:fs';

/** One process as the log records it. */
export interface LoggedProcess {
  pid: number;
  ppid: number;
  execArgv: string[];
  argv: string[];
}

const log = process.env.SJ_PROCESS_LOG;
if (log) {
  const entry: LoggedProcess = { pid: process.pid, ppid: process.ppid, execArgv: process.execArgv, argv: process.argv.slice(1) };
  // One write of one short line with O_APPEND: lines of concurrent processes do not interleave.
  fs.appendFileSync(log, JSON.stringify(entry) + '\n');
}

/** The processes logged in `file` so far. */
export function readProcessLog(file: string): LoggedProcess[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as LoggedProcess);
}
