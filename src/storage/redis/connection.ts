import { ErrorCodes, SessionJournalError, requirePositive } from '../../errors.js';
import { RepeatedFailure, WarningCodes, writeWarningToStderr, type WarningHandler } from '../../engine/warnings.js';
import { storeKeys, type StoreKeys } from './keys.js';

/**
 * One store's connection to Redis, through node-redis (the optional peer
 * dependency `redis`, loaded at the first connection, so file-only users
 * never load or install it).
 *
 * Why this module reconnects itself instead of using node-redis's
 * reconnection: node-redis retries the first connection forever (an open
 * must fail at once with REDIS_UNAVAILABLE), waits between retries on a
 * timer that keeps the process alive and outlives close(), and emits an
 * 'error' event per attempt. Here each node-redis client connects once
 * (`reconnectStrategy: false`); when it dies, a new one is made after a
 * backoff on an unref'd timer that close() clears. While no client is ready,
 * a command fails at once with REDIS_UNAVAILABLE: nothing is queued for a
 * later connection (`disableOfflineQueue` as well, for the moment a client
 * dies), so a caller never waits on a server that is gone, and never has a
 * write replayed behind its back after it gave up on it.
 *
 * A command waits for its reply at most its timeout, sent or not (node-redis
 * stops timing a command once it is written to the socket, so a stopped or
 * unreachable server would hold it for ever): then its connection is
 * dropped and replaced, and the command is in doubt. A command written to a
 * connection that died may still run later (the bytes can sit in the
 * server's socket buffer, or in the network): retireLostConnections() makes
 * the server close such connections (CLIENT KILL by id and address, learnt
 * with CLIENT INFO when each connection was made), so that a writer reading
 * back a commit in doubt reads its final fate.
 *
 * The socket is unref'd while no command is in flight, so an idle store
 * does not keep the process alive (a directory store holds no handle
 * either), and ref'd while one is, so `await store.flush()` at the end of a
 * script is not cut short by the process exiting under it.
 */

/** A reply as node-redis gives it over RESP2: strings, integers, nil, arrays. */
export type RedisReply = string | number | null | RedisReply[];

export interface RedisConnectOptions {
  /** `redis://[user:password@]host[:port][/db]` or `rediss://…` (TLS). */
  url: string;
  /** The store's prefix P (keys.ts); validated here, INVALID_OPTION. */
  prefix: string;
  /** How long one connection attempt may take to connect (default 5000 ms); its handshake then has commandTimeoutMs. */
  connectTimeoutMs?: number;
  /**
   * How long a command may wait for its reply (default 10000 ms), sent or
   * not; then its connection is dropped and replaced. A command that timed
   * out may still have run.
   */
  commandTimeoutMs?: number;
  /** Where lost connections (REDIS_DISCONNECTED, collapsed) and reconnections (RECOVERED) are reported; default stderr. */
  onWarning?: WarningHandler;
  /** Told each time a new connection is ready after one was lost (a reader may have missed nothing, but a writer's reply may be in doubt). */
  onReconnect?: () => void;
}

export interface CommandOptions {
  /** Overrides commandTimeoutMs for this command (a blocking XREAD needs its block time and more). */
  timeoutMs?: number;
}

/** What this module uses of node-redis, kept narrow so the rest of the backend does not depend on its types. */
interface NodeRedisClient {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  connect(): Promise<unknown>;
  sendCommand(args: string[], options?: { timeout?: number }): Promise<unknown>;
  multi(): NodeRedisMulti;
  on(event: 'error', listener: (err: unknown) => void): unknown;
  ref(): void;
  unref(): void;
  destroy(): void;
}

interface NodeRedisMulti {
  addCommand(args: string[]): NodeRedisMulti;
  exec(): Promise<unknown[]>;
}

/** The parts of the `redis` package this backend uses. */
export interface NodeRedis {
  createClient(options: Record<string, unknown>): NodeRedisClient;
  ErrorReply: abstract new (...args: never[]) => Error;
}

let loading: Promise<NodeRedis> | undefined;

/**
 * node-redis, imported at first use. A missing package is
 * REDIS_NOT_INSTALLED saying how to install it; `importer` replaces the
 * import (tests).
 */
export function loadNodeRedis(importer?: () => Promise<unknown>): Promise<NodeRedis> {
  if (importer) return importRedis(importer);
  const pending = (loading ??= importRedis(() => import('redis')));
  // A failed import is tried again next time (the package may have been installed since).
  pending.catch(() => {
    if (loading === pending) loading = undefined;
  });
  return pending;
}

async function importRedis(importer: () => Promise<unknown>): Promise<NodeRedis> {
  let mod: unknown;
  try {
    mod = await importer();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new SessionJournalError(ErrorCodes.REDIS_NOT_INSTALLED, 'the Redis backend needs the package "redis" (node-redis), an optional peer dependency of session-journal: npm install redis', { cause: err });
    }
    throw err;
  }
  const m = mod as Partial<NodeRedis> & { default?: Partial<NodeRedis> };
  const api = typeof m.createClient === 'function' ? m : m.default;
  if (typeof api?.createClient !== 'function' || typeof api.ErrorReply !== 'function') {
    throw new SessionJournalError(ErrorCodes.REDIS_NOT_INSTALLED, 'the package "redis" that was found is not node-redis 5 or newer (no createClient / ErrorReply): npm install redis@^6', {});
  }
  return api as NodeRedis;
}

/** The server's address without credentials, for messages and warnings: `redis://host:port/db`. */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw new SessionJournalError(ErrorCodes.INVALID_OPTION, 'redis.url is not a URL (redis://host:port or rediss://host:port)', { cause: err, details: { option: 'redis.url' } });
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new SessionJournalError(ErrorCodes.INVALID_OPTION, `redis.url must begin with redis:// or rediss://, got ${parsed.protocol}//`, { details: { option: 'redis.url' } });
  }
  return `${parsed.protocol}//${parsed.host}${parsed.pathname.length > 1 ? parsed.pathname : ''}`;
}

/**
 * Error replies that mean "not now" rather than "no": the server is
 * loading its data after a restart, running a long script, failing over,
 * or a replica was written to. A commit that meets one was not written and
 * is tried again, as when the server cannot be reached.
 */
const PASSING_REPLIES = new Set(['LOADING', 'BUSY', 'MASTERDOWN', 'TRYAGAIN', 'CLUSTERDOWN', 'READONLY', 'NOREPLICAS']);

/** How the server names one connection: CLIENT KILL ID <id> ADDR <addr> closes that one and no other. */
interface ClientIdentity {
  id: string;
  addr: string;
}

/** Dead connections remembered for retireLostConnections(); older ones are forgotten (a process reconnecting in a loop). */
const MAX_LOST_IDENTITIES = 32;
const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;
const FIRST_RETRY_MS = 50;
const MAX_RETRY_MS = 2000;

/** The message of an error reply inside a failed MULTI (node-redis's own says only how many failed). */
function replyMessage(err: Error): string {
  const replies = (err as { replies?: unknown[]; errorIndexes?: number[] }).replies;
  const first = (err as { errorIndexes?: number[] }).errorIndexes?.[0];
  const inner = first !== undefined ? replies?.[first] : undefined;
  return inner instanceof Error ? inner.message : err.message;
}

export class RedisConnection {
  readonly keys: StoreKeys;
  /** The server and the store, for messages: `redis://host:port {P}`. */
  readonly where: string;
  private client: NodeRedisClient | undefined;
  /** The server's id and address of `client` (CLIENT INFO), if it told them. */
  private identity: ClientIdentity | undefined;
  /** Connections that died since the last retireLostConnections(), oldest first. */
  private readonly lostIdentities: ClientIdentity[] = [];
  private closed = false;
  /** Connections made so far, the first included: a write and a WAIT went over one connection when this did not change between them. */
  private connectionsMade = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private retries = 0;
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly lost: RepeatedFailure;
  private readonly connectTimeoutMs: number;
  private readonly commandTimeoutMs: number;

  private constructor(
    private readonly redis: NodeRedis,
    private readonly options: RedisConnectOptions,
  ) {
    this.keys = storeKeys(options.prefix);
    this.where = `${redactUrl(options.url)} {${this.keys.prefix}}`;
    this.connectTimeoutMs = requirePositive('redis.connectTimeoutMs', options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
    this.commandTimeoutMs = requirePositive('redis.commandTimeoutMs', options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS);
    this.lost = new RepeatedFailure(WarningCodes.REDIS_DISCONNECTED, 'the connection to Redis', this.where, options.onWarning ?? writeWarningToStderr, Date.now);
  }

  /**
   * Connects, or fails with REDIS_UNAVAILABLE (REDIS_NOT_INSTALLED without
   * node-redis, INVALID_OPTION for a bad url or prefix). The first attempt is
   * the only one: an open does not wait for a server that is not there.
   */
  static async open(options: RedisConnectOptions, redis?: NodeRedis): Promise<RedisConnection> {
    // Options first: a bad prefix is reported as such even where node-redis is missing.
    redactUrl(options.url);
    storeKeys(options.prefix);
    const conn = new RedisConnection(redis ?? (await loadNodeRedis()), options);
    const client = conn.newClient();
    let identity: ClientIdentity | undefined;
    try {
      identity = await conn.connectClient(client); // ref'd meanwhile: the caller awaits it
    } catch (err) {
      client.destroy();
      throw conn.unavailable(`cannot connect to ${conn.where}`, err, false);
    }
    client.unref();
    conn.client = client;
    conn.identity = identity;
    conn.connectionsMade++;
    return conn;
  }

  /** True while a connection is ready (commands are sent, not refused at once). */
  get isReady(): boolean {
    return this.client?.isReady === true;
  }

  /**
   * Sends one command. Fails with REDIS_UNAVAILABLE while disconnected (at
   * once), when the connection drops or the reply times out, or on a passing
   * error reply (LOADING, READONLY...); REDIS_COMMAND_FAILED on any other
   * error reply. `details.maybeExecuted` is false only when the command was
   * surely never run (it was refused before being sent, or Redis replied
   * with an error).
   */
  command(args: readonly string[], options: CommandOptions = {}): Promise<RedisReply> {
    return this.track((client) => client.sendCommand([...args]), String(args[0]), options.timeoutMs ?? this.commandTimeoutMs) as Promise<RedisReply>;
  }

  /** Runs commands in one MULTI/EXEC, atomically; the replies in order. Errors as for command(). */
  transaction(commands: ReadonlyArray<readonly string[]>): Promise<RedisReply[]> {
    return this.track((client) => {
      const multi = client.multi();
      for (const args of commands) multi.addCommand([...args]);
      return multi.exec();
    }, 'MULTI', this.commandTimeoutMs) as Promise<RedisReply[]>;
  }

  /** Which connection commands go over now (see waitForReplicas). */
  get connectionNumber(): number {
    return this.connectionsMade;
  }

  /**
   * WAIT: how many replicas have this connection's last write, waiting up to
   * `timeoutMs` for `replicas` of them. WAIT counts only the writes of the
   * connection it is sent on, so when the connection is no longer number
   * `wroteOn` (the one the caller's write went over; undefined: unknown),
   * `proofWrite` goes first, on the same connection: replication is one
   * ordered stream, so a replica that has it has every write before it.
   */
  waitForReplicas(replicas: number, timeoutMs: number, wroteOn: number | undefined, proofWrite: readonly string[]): Promise<RedisReply> {
    return this.track(
      (client) => {
        // Both on one socket, in order: the connection cannot change between them. A failed proof fails the WAIT's answer too.
        const proof = wroteOn === this.connectionsMade ? undefined : client.sendCommand([...proofWrite]);
        const waited = client.sendCommand(['WAIT', String(replicas), String(timeoutMs)]);
        return proof ? Promise.all([proof, waited]).then(([, acked]) => acked) : waited;
      },
      'WAIT',
      timeoutMs + this.commandTimeoutMs,
    ) as Promise<RedisReply>;
  }

  /**
   * Makes the server close every connection of this process that died
   * (dropped, timed out) since the last call, if it still has it open: once
   * this resolves, nothing sent on them can run any more, so what the store
   * holds is their commands' final outcome. CLIENT KILL by id and address
   * (a restarted server reuses ids, not id and address together). A server
   * that refuses CLIENT (an ACL, a managed service) cannot be asked: the
   * connections are forgotten. REDIS_UNAVAILABLE while disconnected.
   */
  async retireLostConnections(): Promise<void> {
    while (this.lostIdentities.length > 0) {
      const lost = this.lostIdentities[0]!;
      try {
        await this.command(['CLIENT', 'KILL', 'ID', lost.id, 'ADDR', lost.addr]);
      } catch (err) {
        if (!(err instanceof SessionJournalError) || err.code !== ErrorCodes.REDIS_COMMAND_FAILED) throw err;
      }
      this.lostIdentities.shift();
    }
  }

  /**
   * Waits for commands in flight (each has its timeout), then closes the
   * connection and stops reconnecting: nothing of this connection keeps the
   * process alive afterwards. Idempotent.
   */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await Promise.allSettled([...this.inFlight]);
    const client = this.client;
    this.client = undefined;
    client?.destroy();
  }

  private async track(send: (client: NodeRedisClient) => Promise<unknown>, what: string, timeoutMs: number): Promise<unknown> {
    if (this.closed) throw new SessionJournalError(ErrorCodes.CLOSED, `the Redis connection of ${this.where} is closed`);
    const client = this.client;
    if (!client?.isReady) throw this.unavailable(`${what} not sent: not connected to ${this.where} (reconnecting)`, undefined, false);
    let pending: Promise<unknown>;
    try {
      pending = send(client);
    } catch (err) {
      throw this.mapError(err, what);
    }
    pending.catch(() => undefined); // rejected after a timeout, when the dropped connection fails it
    if (this.inFlight.size === 0) client.ref();
    this.inFlight.add(pending);
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'expired'>((resolve) => {
      timer = setTimeout(() => resolve('expired'), timeoutMs);
      timer.unref(); // the socket, ref'd while a command is in flight, keeps the process alive
    });
    try {
      const outcome = await Promise.race([pending.then((reply) => ({ reply })), expired]);
      if (outcome !== 'expired') return outcome.reply;
      this.abandon(client, `no reply to ${what} within ${timeoutMs} ms`);
      throw this.unavailable(`${what} to ${this.where}: no reply within ${timeoutMs} ms (the server is stopped, overloaded or out of reach); the connection was dropped`, undefined, true);
    } catch (err) {
      throw this.mapError(err, what);
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(pending);
      if (this.inFlight.size === 0) this.client?.unref();
    }
  }

  private mapError(err: unknown, what: string): SessionJournalError {
    if (err instanceof SessionJournalError) return err;
    if (err instanceof this.redis.ErrorReply) {
      const message = replyMessage(err);
      const word = message.split(' ', 1)[0] ?? '';
      if (PASSING_REPLIES.has(word)) return this.unavailable(`${what} refused by ${this.where}: ${message}`, err, false);
      return new SessionJournalError(ErrorCodes.REDIS_COMMAND_FAILED, `${what} failed on ${this.where}: ${message}`, { cause: err, details: { reply: message, maybeExecuted: false } });
    }
    const name = (err as Error | undefined)?.name;
    // Refused before it was written to a socket: surely not run.
    const notSent = name === 'ClientOfflineError' || name === 'ClientClosedError';
    return this.unavailable(`${what} to ${this.where} failed: ${(err as Error | undefined)?.message ?? String(err)}`, err, !notSent);
  }

  private unavailable(message: string, cause: unknown, maybeExecuted: boolean): SessionJournalError {
    const why = (cause as NodeJS.ErrnoException | undefined)?.code ?? (cause as Error | undefined)?.message;
    const text = cause !== undefined && !message.includes(String(why)) ? `${message}: ${why}` : message;
    return new SessionJournalError(ErrorCodes.REDIS_UNAVAILABLE, text, { cause, details: { where: this.where, maybeExecuted } });
  }

  private newClient(): NodeRedisClient {
    const client = this.redis.createClient({
      url: this.options.url,
      // RESP2: plain arrays and strings, as every server version and proxy speaks them.
      RESP: 2,
      maintNotifications: 'disabled',
      disableOfflineQueue: true,
      socket: { reconnectStrategy: false, connectTimeout: this.connectTimeoutMs },
    });
    // Never an unhandled 'error' event (which would crash the process): a dead connection is replaced, the rest is warned.
    client.on('error', (err) => this.onClientError(client, err));
    return client;
  }

  private onClientError(client: NodeRedisClient, err: unknown): void {
    // A client still connecting reports through connect()'s rejection; an old one is already replaced.
    if (client !== this.client || this.closed) return;
    const message = (err as Error | undefined)?.message ?? String(err);
    if (client.isOpen) {
      this.lost.failed(message, 'the connection is kept');
      return;
    }
    this.abandon(client, message);
  }

  /**
   * Drops the current connection and reconnects. What was sent on it may
   * still run (retireLostConnections), so the server's name for it is kept.
   */
  private abandon(client: NodeRedisClient, message: string): void {
    if (client !== this.client) return;
    this.client = undefined;
    if (this.identity) this.lostIdentities.push(this.identity);
    if (this.lostIdentities.length > MAX_LOST_IDENTITIES) this.lostIdentities.shift();
    this.identity = undefined;
    client.destroy(); // also while closing: close() waits for the commands this fails
    if (!this.closed) this.scheduleReconnect(message);
  }

  /**
   * connect(), then CLIENT INFO for the server's id and address of the
   * connection, within connectTimeoutMs for the TCP connection and
   * commandTimeoutMs for the commands of the handshake: node-redis's
   * connectTimeout covers the TCP connection only, and a stopped server
   * accepts connections (its kernel does) but would hold the handshake for
   * ever. A server that refuses CLIENT INFO gives no identity.
   */
  private async connectClient(client: NodeRedisClient): Promise<ClientIdentity | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const limitMs = this.connectTimeoutMs + this.commandTimeoutMs;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no handshake within ${limitMs} ms`)), limitMs);
    });
    const handshake = async (): Promise<ClientIdentity | undefined> => {
      await client.connect();
      let info: unknown;
      try {
        info = await client.sendCommand(['CLIENT', 'INFO']);
      } catch (err) {
        if (err instanceof this.redis.ErrorReply) return undefined;
        throw err;
      }
      const id = /(?:^|\s)id=(\d+)(?:\s|$)/.exec(String(info))?.[1];
      const addr = /(?:^|\s)addr=(\S+)(?:\s|$)/.exec(String(info))?.[1];
      return id && addr ? { id, addr } : undefined;
    };
    const attempt = handshake();
    attempt.catch(() => undefined); // rejected after a timeout, when the caller destroys the client
    try {
      return await Promise.race([attempt, expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  private scheduleReconnect(message: string): void {
    if (this.closed) return;
    // Exponential backoff, shortened by up to 20 % at random so that processes that lost the server together do not come back in step.
    const delay = Math.round(Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** Math.min(this.retries, 16)) * (1 - Math.random() * 0.2));
    this.retries++;
    this.lost.failed(message, `reconnecting in ${delay} ms`);
    this.retryTimer = setTimeout(() => void this.reconnect(), delay);
    this.retryTimer.unref();
  }

  private async reconnect(): Promise<void> {
    this.retryTimer = undefined;
    if (this.closed) return;
    const client = this.newClient();
    client.unref(); // in the background: an idle process may exit meanwhile
    let identity: ClientIdentity | undefined;
    try {
      identity = await this.connectClient(client);
    } catch (err) {
      client.destroy();
      const why = (err as NodeJS.ErrnoException | undefined)?.code ?? (err as Error | undefined)?.message ?? String(err);
      this.scheduleReconnect(`cannot connect: ${why}`);
      return;
    }
    if (this.closed) {
      client.destroy();
      return;
    }
    if (this.inFlight.size > 0) client.ref();
    this.client = client;
    this.identity = identity;
    this.connectionsMade++;
    this.retries = 0;
    this.lost.succeeded();
    this.options.onReconnect?.();
  }
}

/** Connects a store's client: RedisConnection.open. */
export function connectRedis(options: RedisConnectOptions): Promise<RedisConnection> {
  return RedisConnection.open(options);
}
