/**
 * `session-journal codex-mcp-server --redis URL`: the real codex-mcp-server
 * (npm) with its sessions on a real redis-server, driven by real MCP
 * clients over stdio, with the stand-in `codex` on PATH. Two server
 * processes on one Redis stand for two hosts: each tool call catches up
 * first, so a session created through one is continued through the other.
 * And the catch-up before a call, unit by unit: a failed one warns
 * CATCH_UP_FAILED (collapsed, then RECOVERED) and the call goes on.
 */
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { ErrorCodes, SessionJournalError, SessionStore, installSessionStorage, type JournalWarning, type SessionStorage } from '../../src/index.js';
import { CLI_MAIN, connectStdioServer, installFakeCodex, waitFor, type FakeCodex, type McpServerConnection } from '../helpers/mcp-codex-clients.js';
import { tempStoreDir } from '../helpers/temp-store.js';
import { freshRedisStore, type RedisFixture } from '../helpers/redis-fixture.js';

const NO_TTL = 1e15;

function setup(t: ExecutionContext): { root: string; fake: FakeCodex } {
  const root = path.dirname(tempStoreDir(t));
  return { root, fake: installFakeCodex(root) };
}

const server = (t: ExecutionContext, root: string, fake: FakeCodex, f: RedisFixture, env: Record<string, string> = {}) => connectStdioServer(t, root, fake, [CLI_MAIN, 'codex-mcp-server', ...f.flags], env);

async function closeCleanly(t: ExecutionContext, conn: McpServerConnection): Promise<void> {
  await conn.close();
  await waitFor(() => conn.exitCode() !== undefined, 30_000, 'the server to exit');
  t.is(conn.exitCode(), '0', `server exit code; stderr:\n${conn.stderr()}`);
}

test('two codex-mcp-server processes on one Redis (two hosts): a session created through one is continued through the other, in the same codex conversation', async (t) => {
  const { root, fake } = setup(t);
  const f = await freshRedisStore(t, 'codex');
  // Both started before any call: what B knows of A's session it learns by catching up before its call, not at open.
  const [a, b] = await Promise.all([server(t, root, fake, f), server(t, root, fake, f)]);

  const first = await a!.callCodex('hop', 'first, through A');
  t.false(first.isError, first.text);
  const conversationId = fake.calls()[0]!.conversationId;

  const second = await b!.callCodex('hop', 'second, through B');
  t.false(second.isError, second.text);
  const call = fake.calls()[1]!;
  t.true(call.resumed, 'B resumed the conversation A started');
  t.is(call.conversationId, conversationId);

  const third = await a!.callCodex('hop', 'third, through A again');
  t.false(third.isError, third.text);
  t.is(fake.calls()[2]!.conversationId, conversationId);
  // Each server's listSessions sees every turn, whoever wrote it.
  for (const conn of [a!, b!]) t.deepEqual((await conn.listSessions()).map((s) => [s.id, s.turnCount]), [['hop', 3]]);
  await waitFor(() => /sessions in redis:\/\/127\.0\.0\.1:\d+ \{/.test(a!.stderr()), 30_000, 'the startup banner, with the store on Redis');
  t.notRegex(a!.stderr() + b!.stderr(), /CATCH_UP_FAILED|warning/);
  await Promise.all([closeCleanly(t, a!), closeCleanly(t, b!)]);

  const store = await SessionStore.open({ redis: f.location, ttlMs: NO_TTL, autoCompact: false, onWarning: () => undefined });
  t.teardown(() => store.close());
  const session = store.getSession('hop')!;
  t.deepEqual(
    session.turns.map((turn) => turn.prompt),
    ['first, through A', 'second, through B', 'third, through A again'],
  );
  t.is(session.codexConversationId, conversationId);
});

test('SESSION_JOURNAL_REDIS and SESSION_JOURNAL_PREFIX name the store of codex-mcp-server; --prefix is optional there (session-journal:codex)', async (t) => {
  const { root, fake } = setup(t);
  const f = await freshRedisStore(t, 'codex');
  const byEnv = await connectStdioServer(t, root, fake, [CLI_MAIN, 'codex-mcp-server'], { SESSION_JOURNAL_REDIS: f.url, SESSION_JOURNAL_PREFIX: f.prefix });
  t.false((await byEnv.callCodex('env', 'hello')).isError);
  await closeCleanly(t, byEnv);
  const store = await SessionStore.open({ redis: f.location, ttlMs: NO_TTL, autoCompact: false, onWarning: () => undefined });
  t.is(store.getSession('env')?.turns.length, 1);
  await store.close();

  // Without a prefix: the default one. (Its keys are removed afterwards: the shared server is shared.)
  const byDefault = await connectStdioServer(t, root, fake, [CLI_MAIN, 'codex-mcp-server', '--redis', f.url]);
  await waitFor(() => /sessions in redis:\/\/127\.0\.0\.1:\d+ \{session-journal:codex\}/.test(byDefault.stderr()), 30_000, 'the banner naming the default prefix');
  await closeCleanly(t, byDefault);
  const { RedisConnection } = await import('../../src/storage/redis/connection.js');
  const { dropStoreKeys } = await import('../helpers/redis-conn.js');
  const conn = await RedisConnection.open({ url: f.url, prefix: 'session-journal:codex', connectTimeoutMs: f.location.connectTimeoutMs, onWarning: () => undefined });
  await dropStoreKeys(conn).finally(() => conn.close());
});

/** A handler as codex-mcp-server 1.4.x builds them: it holds the storage and reads it when called. */
class FakeHandler {
  calls = 0;
  constructor(readonly sessionStorage: SessionStorage) {}
  async execute(args: { sessionId: string }): Promise<{ content: Array<{ type: 'text'; text: string }> }> {
    this.calls++;
    return { content: [{ type: 'text', text: String(this.sessionStorage.getSession(args.sessionId)?.turns.length ?? 'none') }] };
  }
}

test('installSessionStorage with catchUp: awaited before every call; a store error warns CATCH_UP_FAILED (collapsed, then RECOVERED) and the call goes on from the view; a bug fails the call', async (t) => {
  const dir = tempStoreDir(t);
  const store = SessionStore.openSync({ dir, autoCompact: false, onWarning: () => undefined });
  t.teardown(() => store.close());
  const warnings: JournalWarning[] = [];
  let outcome: 'ok' | 'down' | 'bug' = 'ok';
  let caughtUp = 0;
  const handlers: Record<string, FakeHandler> = { codex: new FakeHandler(store) };
  installSessionStorage(handlers as never, store, {
    onWarning: (w) => warnings.push(w),
    catchUp: async () => {
      caughtUp++;
      if (outcome === 'down') throw new SessionJournalError(ErrorCodes.REDIS_UNAVAILABLE, 'cannot connect to redis://127.0.0.1:1 {p}');
      if (outcome === 'bug') throw new TypeError('a bug');
    },
  });
  const call = () => handlers.codex!.execute({ sessionId: 's' });
  t.is((await call()).content[0]!.text, 'none');
  t.is(caughtUp, 1);
  outcome = 'down';
  for (let i = 0; i < 3; i++) t.is((await call()).content[0]!.text, 'none', 'answered from the view');
  t.is(caughtUp, 4);
  // Warned the 1st and 2nd time, not the 3rd (then the 4th, 8th, ...).
  t.deepEqual(
    warnings.map((w) => w.code),
    ['CATCH_UP_FAILED', 'CATCH_UP_FAILED'],
  );
  t.regex(warnings[0]!.message, /^catching up with other hosts' commits before a tool call failed; the call answers from this process's view: REDIS_UNAVAILABLE: cannot connect/);
  outcome = 'ok';
  await call();
  t.deepEqual(warnings.at(-1)?.code, 'RECOVERED');
  outcome = 'bug';
  await t.throwsAsync(call, { instanceOf: TypeError });
});
