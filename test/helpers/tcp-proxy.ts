/**
 * A TCP proxy between Redis clients and a redis-server, for faults of the
 * network rather than of the server: a connection cut after the server
 * answered (the reply lost), a request held back while its client is cut (a
 * request still on its way, delivered late), connections refused for a
 * while (a partition). The bytes pass through unchanged; each fault is armed
 * for the next request whose bytes match (a request of a Redis client on
 * loopback arrives as one chunk: the commands here are small).
 */
import net from 'node:net';

/** Which request a fault is for: a test of the request's bytes (RESP, read as latin1). */
export type RequestMatch = (request: string) => boolean;

/** A request of `command` naming every one of `words` (RESP bulk strings, matched as text). */
export function requestOf(command: string, ...words: string[]): RequestMatch {
  return (request) => request.includes(`\r\n${command}\r\n`) && words.every((w) => request.includes(w));
}

/** A request held back by holdRequest(): its client was cut, its connection to the server kept. */
export interface HeldRequest {
  /**
   * Sends the held bytes to the server on the connection they came for:
   * 'ran' when the server answered (it ran the command), 'closed' when it
   * had closed that connection (CLIENT KILL) and never read them.
   */
  deliver(): Promise<'ran' | 'closed'>;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  upstreamClosed: boolean;
  /** Set for the pair whose request is held: its upstream outlives its client. */
  keepUpstream: boolean;
  /** Runs on the next reply from the server before it goes on (or instead of it: 'drop'). */
  onReply: ((reply: Buffer) => Promise<'forward' | 'drop'>) | undefined;
}

interface Armed {
  match: RequestMatch;
  act: (pair: Pair, request: Buffer) => void;
}

export class TcpProxy {
  private readonly pairs = new Set<Pair>();
  private partitioned = false;
  private armed: Armed[] = [];
  /** Connections accepted (refused ones included). */
  accepted = 0;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
    private targetPort: number,
  ) {}

  /** A proxy on a free loopback port to the server on `targetPort`. */
  static async start(targetPort: number): Promise<TcpProxy> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    server.unref();
    const proxy = new TcpProxy(server, (server.address() as net.AddressInfo).port, targetPort);
    server.on('connection', (socket) => proxy.accept(socket));
    return proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Cuts every connection and refuses new ones until heal(): the clients are cut off from the server. */
  partition(): void {
    this.partitioned = true;
    for (const pair of this.pairs) if (!pair.keepUpstream) this.cut(pair);
  }

  heal(): void {
    this.partitioned = false;
  }

  /** A failover: every connection is cut, and new ones go to the server on `targetPort` (clients find the new primary at the same address). */
  failOver(targetPort: number): void {
    this.targetPort = targetPort;
    for (const pair of this.pairs) this.cut(pair);
  }

  /**
   * The next request that matches goes to the server; its reply does not
   * come back: both sides of that connection are closed instead. Resolves
   * once the reply was dropped, so the server has run the command.
   * `thenPartition`: refuse connections from that moment (heal() ends it).
   */
  dropReplyTo(match: RequestMatch, thenPartition = false): Promise<void> {
    return this.expecting('a request whose reply to drop', (resolve: () => void) => {
      this.arm(match, (pair, request) => {
        pair.onReply = async () => {
          if (thenPartition) this.partitioned = true;
          this.cut(pair);
          resolve();
          return 'drop';
        };
        pair.upstream.write(request);
      });
    });
  }

  /**
   * The next request that matches is not sent: its client's connection is
   * closed, the connection to the server kept open (the server still sees
   * the client), and the bytes held until deliver().
   */
  holdRequest(match: RequestMatch): Promise<HeldRequest> {
    return this.expecting('a request to hold', (resolve: (held: HeldRequest) => void) => {
      this.arm(match, (pair, request) => {
        pair.keepUpstream = true;
        pair.client.destroy();
        resolve({
          deliver: () =>
            new Promise((done) => {
              if (pair.upstreamClosed) return done('closed');
              pair.onReply = async () => {
                done('ran');
                return 'drop'; // its client is gone
              };
              pair.upstream.once('close', () => done('closed'));
              pair.upstream.write(request);
            }),
        });
      });
    });
  }

  /**
   * The next request that matches waits for `before` before it goes on to
   * the server (another client's commands get there first). Only for a
   * client that sends nothing else meanwhile on that connection: what it
   * sent later would overtake it.
   */
  beforeRequest(match: RequestMatch, before: () => Promise<unknown>): void {
    this.arm(match, (pair, request) => {
      void before().then(() => pair.upstream.write(request));
    });
  }

  /** The reply to the next request that matches waits for `before` before it goes back to the client. */
  beforeReplyTo(match: RequestMatch, before: () => Promise<unknown>): void {
    this.arm(match, (pair, request) => {
      pair.onReply = async () => {
        await before();
        return 'forward';
      };
      pair.upstream.write(request);
    });
  }

  async close(): Promise<void> {
    this.armed = [];
    for (const pair of this.pairs) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
    await new Promise((resolve) => this.server.close(resolve));
  }

  /** A promise `arm` settles, rejected when no request matched within 30 s (a test never waits for ever). */
  private expecting<T>(what: string, arm: (resolve: (value: T) => void) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the proxy saw no ${what} within 30 s`)), 30_000);
      timer.unref();
      arm((value) => {
        clearTimeout(timer);
        resolve(value);
      });
    });
  }

  private arm(match: RequestMatch, act: Armed['act']): void {
    this.armed.push({ match, act });
  }

  private accept(client: net.Socket): void {
    this.accepted++;
    if (this.partitioned) {
      client.destroy();
      return;
    }
    const upstream = net.connect({ port: this.targetPort, host: '127.0.0.1' });
    const pair: Pair = { client, upstream, upstreamClosed: false, keepUpstream: false, onReply: undefined };
    this.pairs.add(pair);
    client.on('data', (request: Buffer) => {
      const text = request.toString('latin1');
      const i = this.armed.findIndex((a) => a.match(text));
      if (i === -1) {
        upstream.write(request);
        return;
      }
      const [armed] = this.armed.splice(i, 1);
      armed!.act(pair, request);
    });
    upstream.on('data', (reply: Buffer) => {
      const hook = pair.onReply;
      if (!hook) {
        if (!client.destroyed) client.write(reply);
        return;
      }
      pair.onReply = undefined;
      upstream.pause();
      void hook(reply).then((what) => {
        if (what === 'forward' && !client.destroyed) client.write(reply);
        upstream.resume();
      });
    });
    const closeClient = () => {
      if (!pair.keepUpstream) upstream.destroy();
    };
    client.on('error', closeClient);
    client.on('close', closeClient);
    upstream.on('error', () => undefined);
    upstream.on('close', () => {
      pair.upstreamClosed = true;
      client.destroy();
      this.pairs.delete(pair);
    });
  }

  private cut(pair: Pair): void {
    pair.client.destroy();
    pair.upstream.destroy();
  }
}
