/**
 * Runs a command in a pseudo-terminal, as a person at a terminal runs it:
 * the command is the session leader of a new terminal and its process group
 * (with every child it starts) is the foreground group, so a Ctrl-C typed
 * there (byte 0x03 written to the terminal's master side) is turned into a
 * SIGINT for that whole group by the kernel's line discipline, not sent by
 * the test to one process. python3's pty module does the terminal work; the
 * test drives it through stdin (one command a line) and reads what the
 * terminal shows on stdout.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';

const DRIVER = String.raw`
import json, os, pty, select, sys
pid, master = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
def tell(message):
    os.write(2, (json.dumps(message) + "\n").encode())
tell({"pid": pid})
commands = b""
status = None
while True:
    ready, _, _ = select.select([master, 0] if commands is not None else [master], [], [], 0.05)
    if master in ready:
        try:
            data = os.read(master, 65536)
        except OSError:
            data = b""
        if data:
            os.write(1, data)
        elif status is not None:
            break
    if 0 in ready:
        chunk = os.read(0, 4096)
        if not chunk:
            commands = None
        else:
            commands += chunk
            while b"\n" in commands:
                line, commands = commands.split(b"\n", 1)
                if line == b"ctrl-c":
                    os.write(master, b"\x03")
    if status is None:
        done, raw = os.waitpid(pid, os.WNOHANG)
        if done:
            status = {"code": os.WEXITSTATUS(raw)} if os.WIFEXITED(raw) else {"signal": os.WTERMSIG(raw)}
            # What the command wrote last is still in the terminal: read until it is drained.
            while select.select([master], [], [], 0.2)[0]:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    break
                if not data:
                    break
                os.write(1, data)
            break
tell(status)
`;

export interface PtyRun {
  /** The command's pid (the session leader). */
  pid: Promise<number>;
  /** Everything the terminal showed so far (stdout and stderr, echoed input). */
  output(): string;
  /** Types Ctrl-C at the terminal. */
  ctrlC(): void;
  /** How the command ended: its exit code, or the signal that killed it. */
  exit: Promise<{ code?: number; signal?: number; output: string }>;
  /** Ends the command and the driver (SIGKILL) if they still run: for a test's teardown. */
  kill(): void;
}

/** Starts `command` in a new pseudo-terminal. The driver is killed if the test outlives it. */
export function runInPty(command: string, args: readonly string[], env: NodeJS.ProcessEnv): PtyRun {
  const driver: ChildProcessWithoutNullStreams = spawn('python3', ['-c', DRIVER, command, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  let reports = '';
  driver.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const messages: Array<Record<string, number>> = [];
  const waiters: Array<() => void> = [];
  driver.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    reports += chunk;
    for (;;) {
      const nl = reports.indexOf('\n');
      if (nl === -1) break;
      const line = reports.slice(0, nl);
      reports = reports.slice(nl + 1);
      try {
        messages.push(JSON.parse(line) as Record<string, number>);
      } catch {
        messages.push({ driverError: 1 });
        output += `\n[pty driver] ${line}\n`;
      }
      for (const w of waiters.splice(0)) w();
    }
  });
  const nth = (n: number) =>
    new Promise<Record<string, number>>((resolve, reject) => {
      const check = () => {
        if (messages.length > n) resolve(messages[n]!);
        else waiters.push(check);
      };
      driver.once('close', () => (messages.length > n ? resolve(messages[n]!) : reject(new Error(`pty driver ended early: ${output}${reports}`))));
      check();
    });
  const exit = new Promise<{ code?: number; signal?: number; output: string }>((resolve, reject) => {
    driver.once('close', () => {
      const status = messages[1];
      if (!status) reject(new Error(`pty driver ended without a status: ${output}${reports}`));
      else resolve({ ...status, output });
    });
  });
  return {
    pid: nth(0).then((m) => m.pid!),
    output: () => output,
    ctrlC: () => driver.stdin.write('ctrl-c\n'),
    exit,
    kill: () => {
      const pid = messages[0]?.pid;
      if (pid !== undefined && processState(pid) !== undefined) process.kill(pid, 'SIGKILL');
      if (driver.exitCode === null) driver.kill('SIGKILL');
    },
  };
}

/** The process's state letter from /proc (R, S, T for stopped, Z...), or undefined once it is gone. */
export function processState(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/** True when `signal` (a number) waits to be delivered to `pid`, for the thread or the whole process. */
export function signalPending(pid: number, signal: number): boolean {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const mask = BigInt(1) << BigInt(signal - 1);
    return ['SigPnd', 'ShdPnd'].some((field) => {
      const hex = new RegExp(`^${field}:\\s*([0-9a-f]+)$`, 'm').exec(status)?.[1];
      return hex !== undefined && (BigInt(`0x${hex}`) & mask) !== BigInt(0);
    });
  } catch {
    return false;
  }
}

/** The pids of the live children of `pid` (from /proc/PID/task/PID/children). */
export function childrenOf(pid: number): number[] {
  try {
    return fs
      .readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter((s) => s !== '')
      .map(Number);
  } catch {
    return [];
  }
}
