/**
 * A private redis-server (the Debian package): a free loopback port, its
 * data in a temporary directory, durable settings (AOF, fsync always, no
 * RDB), ready once it answers PING (polled). It can be SIGKILLed and started
 * again on the same directory and port, as a crash and a restart. A missing
 * redis-server is an error with the reason, never a skip.
 *
 * The one copy of this code: the benchmarks start their server with it, and
 * the tests' helper (test/helpers/redis-server.ts) builds on it (bench/ may
 * not import test/).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const REDIS_SERVER = process.env.SJ_REDIS_SERVER ?? 'redis-server';
const READY_TIMEOUT_MS = 20_000;
const POLL_MS = 10;

/** Every server this process started, killed at exit so none outlives the run. */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** A port nothing listens on right now (the kernel's choice, then closed). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** One round trip of RESP PING over a fresh socket: the reply's first line, or the error. */
function pingOnce(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    let reply = '';
    const done = (text: string) => {
      socket.destroy();
      resolve(text);
    };
    socket.setTimeout(1000, () => done('timeout'));
    socket.once('error', (err) => done(`error ${(err as NodeJS.ErrnoException).code ?? err.message}`));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => {
      reply += data.toString('latin1');
      const end = reply.indexOf('\r\n');
      if (end !== -1) done(reply.slice(0, end));
    });
  });
}

export interface RedisServerOptions {
  /** Extra redis-server arguments (`['--maxmemory-policy', 'allkeys-lru']`). */
  args?: readonly string[];
}

export class RedisServer {
  private child: ChildProcess | undefined;
  private output = '';

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly args: readonly string[],
  ) {}

  /** Starts a server on a free port with its data in a fresh temporary directory; ready when it answers PING. */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sj-redis-'));
    const server = new RedisServer(await freePort(), dir, options.args ?? []);
    try {
      await server.launch();
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** SIGKILL: the server dies with whatever it had not written; its directory stays. Resolves once it has exited. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    if (child.exitCode === null && child.signalCode === null) {
      child.ref(); // its exit is awaited: it must keep the event loop alive until then
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    running.delete(child);
  }

  /** SIGSTOP: the server stops answering, its connections stay open (a hung or paused machine). */
  pause(): void {
    if (!this.child?.pid) throw new Error('the redis-server is not running');
    process.kill(this.child.pid, 'SIGSTOP');
  }

  /** SIGCONT after pause(): it goes on with what its sockets hold. */
  resume(): void {
    if (!this.child?.pid) throw new Error('the redis-server is not running');
    process.kill(this.child.pid, 'SIGCONT');
  }

  /** Starts the server again on the same directory and port (after kill): it loads its append-only file. */
  async restart(): Promise<void> {
    if (this.child) throw new Error('the redis-server is still running: kill() it first');
    await this.launch();
  }

  /** Kills the server and removes its directory. */
  async stop(): Promise<void> {
    await this.kill();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  private async launch(): Promise<void> {
    const argv = [
      '--port', String(this.port),
      '--bind', '127.0.0.1',
      '--protected-mode', 'yes',
      '--dir', this.dir,
      '--appendonly', 'yes',
      '--appendfsync', 'always',
      '--save', '',
      '--daemonize', 'no',
      '--logfile', '',
      ...this.args,
    ];
    // On the real clock, as CI's server (.ci/run starts it before the suite's clock is moved): a server is another machine.
    const { LD_PRELOAD: _preload, FAKETIME: _faketime, ...env } = process.env;
    const child = spawn(REDIS_SERVER, argv, { stdio: ['ignore', 'pipe', 'pipe'], env });
    this.output = '';
    const keep = (data: Buffer) => {
      this.output = (this.output + data.toString('utf8')).slice(-4000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const failed = new Promise<string>((resolve) => {
      child.once('error', (err) => {
        const code = (err as NodeJS.ErrnoException).code;
        resolve(code === 'ENOENT' ? `${REDIS_SERVER} is not installed (the Debian package redis-server; .ci/test-tools.sh installs it): the Redis tests need a real server` : `${REDIS_SERVER} could not be started: ${err.message}`);
      });
      child.once('exit', (code, signal) => resolve(`${REDIS_SERVER} exited (${signal ?? code}) before answering PING:\n${this.output}`));
    });
    this.child = child;
    running.add(child);
    let why: string | undefined;
    void failed.then((reason) => (why = reason));
    const deadline = performance.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (why !== undefined) break;
      const reply = await pingOnce(this.port);
      // While it loads its append-only file the server answers -LOADING: not ready yet.
      if (reply === '+PONG') {
        this.unrefChild(child);
        return;
      }
      if (performance.now() > deadline) {
        why = `${REDIS_SERVER} did not answer PING on port ${this.port} within ${READY_TIMEOUT_MS} ms (last: ${reply}):\n${this.output}`;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    running.delete(child);
    this.child = undefined;
    child.kill('SIGKILL');
    throw new Error(why);
  }

  /** The test process may end while the server runs (killed at exit): neither the child nor its pipes hold it. */
  private unrefChild(child: ChildProcess): void {
    child.unref();
    (child.stdout as unknown as net.Socket | null)?.unref?.();
    (child.stderr as unknown as net.Socket | null)?.unref?.();
  }
}
