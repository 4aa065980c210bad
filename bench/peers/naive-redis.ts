/**
 * The naive way to keep sessions on Redis, as express-session with
 * connect-redis does it: the whole session is one JSON string under
 * `<prefix>:<id>`, and every change reads it (GET), changes the parsed
 * object, and writes all of it back (SET … EX, the store's TTL). No
 * version check, no transaction: two hosts changing one session at once
 * both read the old value, and the later SET drops the other's change,
 * although both were acknowledged. With `appendfsync always` each SET is on
 * disk when its reply arrives, so what it loses is lost by the protocol, not
 * by the server.
 */
import { createClient } from 'redis';
import type { ConversationTurn, PortableSession } from '../../src/index.js';

/** connect-redis's default time to live, one day. */
const TTL_SECONDS = 86_400;

/** A node-redis client with the default options but the URL (its type is what createClient infers from them). */
export function redisClient(url: string) {
  const client = createClient({ url });
  client.on('error', (err: Error) => process.stderr.write(`[redis client] ${err.message}\n`));
  return client;
}

type Client = ReturnType<typeof redisClient>;

export class NaiveRedisSessions {
  private constructor(
    private readonly client: Client,
    private readonly prefix: string,
  ) {}

  static async open(url: string, prefix: string): Promise<NaiveRedisSessions> {
    const client = redisClient(url);
    await client.connect();
    return new NaiveRedisSessions(client, prefix);
  }

  private key(id: string): string {
    return `${this.prefix}:${id}`;
  }

  /** Creates (or replaces) an empty session, as a first request would. */
  async create(id: string, at: Date): Promise<void> {
    const session: PortableSession = { id, createdAt: at.toISOString(), lastAccessedAt: at.toISOString(), turns: [] };
    await this.client.set(this.key(id), JSON.stringify(session), { EX: TTL_SECONDS });
  }

  /** One change: GET, modify, SET the whole session. Acknowledged when it resolves. */
  async addTurn(id: string, turn: ConversationTurn): Promise<void> {
    const json = await this.client.get(this.key(id));
    if (json === null) throw new Error(`naive-redis: session ${id} is missing`);
    const session = JSON.parse(json) as PortableSession;
    session.lastAccessedAt = turn.timestamp.toISOString();
    session.turns.push({ prompt: turn.prompt, response: turn.response, timestamp: turn.timestamp.toISOString() });
    await this.client.set(this.key(id), JSON.stringify(session), { EX: TTL_SECONDS });
  }

  async get(id: string): Promise<PortableSession | undefined> {
    const json = await this.client.get(this.key(id));
    return json === null ? undefined : (JSON.parse(json) as PortableSession);
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
