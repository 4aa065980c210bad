/**
 * End to end: the real codex-mcp-server (npm) run by `session-journal
 * codex-mcp-server`, driven by a real MCP client from @modelcontextprotocol/sdk
 * over stdio, with a stand-in `codex` executable on PATH.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import test, { type ExecutionContext } from 'ava';
import { SessionStore } from '../../src/index.js';
import { CLI_MAIN, connectStdioServer, installFakeCodex, waitFor, type FakeCodex, type McpServerConnection } from '../helpers/mcp-codex-clients.js';
import { helperScript, tempStoreDir } from '../helpers/temp-store.js';
import { NO_TTL } from '../helpers/compaction-helpers.js';

/** The store as a fresh process sees it, whatever the date: the servers ran on the system clock, so no TTL applies here. */
const openReplay = (dir: string) => SessionStore.openSync({ dir, onWarning: () => undefined, autoCompact: false, ttlMs: NO_TTL });

function setup(t: ExecutionContext): { root: string; dir: string; fake: FakeCodex } {
  const dir = tempStoreDir(t);
  const root = path.dirname(dir);
  return { root, dir, fake: installFakeCodex(root) };
}

const ourServer = (t: ExecutionContext, root: string, fake: FakeCodex, dir: string, env: Record<string, string> = {}) =>
  connectStdioServer(t, root, fake, [CLI_MAIN, 'codex-mcp-server', '--dir', dir], env);

/** Every line on the server's stdout is one JSON-RPC 2.0 message. */
function assertOnlyProtocolOnStdout(t: ExecutionContext, conn: McpServerConnection): void {
  const lines = conn.stdoutLines();
  t.true(lines.length > 0, 'the server answered on stdout');
  for (const line of lines) {
    let message: { jsonrpc?: unknown } | undefined;
    try {
      message = JSON.parse(line);
    } catch {
      t.fail(`stdout line is not JSON: ${line.slice(0, 200)}`);
      continue;
    }
    t.is(message?.jsonrpc, '2.0', `stdout line is not JSON-RPC: ${line.slice(0, 200)}`);
  }
}

async function closeCleanly(t: ExecutionContext, conn: McpServerConnection): Promise<void> {
  await conn.close();
  await waitFor(() => conn.exitCode() !== undefined, 30_000, 'the server to exit');
  t.is(conn.exitCode(), '0', `server exit code; stderr:\n${conn.stderr()}`);
}

test('turns and the codex conversation id survive a restart; a damaged journal line warns on stderr only', async (t) => {
  const { root, dir, fake } = setup(t);

  const first = await ourServer(t, root, fake, dir);
  const r1 = await first.callCodex('restart-me', 'first question');
  t.false(r1.isError, r1.text);
  const conversationId = fake.calls()[0]!.conversationId;
  t.regex(r1.text, new RegExp(conversationId));
  const r2 = await first.callCodex('restart-me', 'second question');
  t.false(r2.isError, r2.text);
  t.true(fake.calls()[1]!.resumed, 'the second call resumes the conversation');
  assertOnlyProtocolOnStdout(t, first);
  await closeCleanly(t, first);

  // Damage the journal between the two runs: the next server must warn on stderr, not stdout.
  const segment = fs.readdirSync(dir).filter((n) => n.startsWith('journal-')).sort().at(-1)!;
  fs.appendFileSync(path.join(dir, segment), '{"v":1,"seq": this line was damaged by hand\n');

  const second = await ourServer(t, root, fake, dir);
  const listed = await second.listSessions();
  t.deepEqual(
    listed.map((s) => [s.id, s.turnCount]),
    [['restart-me', 2]],
  );
  const r3 = await second.callCodex('restart-me', 'third question');
  t.false(r3.isError, r3.text);
  const third = fake.calls()[2]!;
  t.true(third.resumed, 'after the restart codex is resumed, not started afresh');
  t.is(third.conversationId, conversationId);
  t.deepEqual(third.args.slice(third.args.indexOf('resume'), third.args.indexOf('resume') + 2), ['resume', conversationId]);
  await waitFor(() => /warning UNPARSABLE_LINE .*journal-\d+\.ndjson:\d+/.test(second.stderr()), 30_000, 'the replay warning on stderr');
  assertOnlyProtocolOnStdout(t, second);
  t.notRegex(second.stdoutLines().join('\n'), /UNPARSABLE_LINE|warning/);
  await closeCleanly(t, second);

  const store = openReplay(dir);
  t.teardown(() => store.close());
  const session = store.getSession('restart-me')!;
  t.deepEqual(
    session.turns.map((turn) => turn.prompt),
    ['first question', 'second question', 'third question'],
  );
  t.is(session.codexConversationId, conversationId);
});

/** What each of two servers does at once: turns to a shared session and to its own sessions, all calls in flight together. */
const PLAN: Record<'A' | 'B', Array<[string, string]>> = {
  A: [...Array.from({ length: 4 }, (_, i): [string, string] => ['shared', `A shared ${i}`]), ...['a-1', 'a-2', 'a-3'].flatMap((id) => [0, 1].map((i): [string, string] => [id, `A ${id} ${i}`]))],
  B: [...Array.from({ length: 4 }, (_, i): [string, string] => ['shared', `B shared ${i}`]), ...['b-1', 'b-2', 'b-3'].flatMap((id) => [0, 1].map((i): [string, string] => [id, `B ${id} ${i}`]))],
};
const EXPECTED_TURNS: Record<string, number> = { shared: 8, 'a-1': 2, 'a-2': 2, 'a-3': 2, 'b-1': 2, 'b-2': 2, 'b-3': 2 };

async function runConcurrently(a: McpServerConnection, b: McpServerConnection): Promise<void> {
  const results = await Promise.all([...PLAN.A.map(([id, prompt]) => a.callCodex(id, prompt)), ...PLAN.B.map(([id, prompt]) => b.callCodex(id, prompt))]);
  for (const r of results) if (r.isError) throw new Error(`tool call failed: ${r.text}`);
}

test('two server processes on one store, adding turns to shared and own sessions at once, lose nothing; listSessions shows both', async (t) => {
  const { root, dir, fake } = setup(t);
  const env = { FAKE_CODEX_DELAY_MS: '150' };
  const [a, b] = await Promise.all([ourServer(t, root, fake, dir, env), ourServer(t, root, fake, dir, env)]);
  await runConcurrently(a!, b!);
  t.is(fake.calls().length, PLAN.A.length + PLAN.B.length);

  // Each server's listSessions tool shows what both wrote.
  for (const conn of [a!, b!]) {
    const listed = await conn.listSessions();
    t.deepEqual(Object.fromEntries(listed.map((s) => [s.id, s.turnCount])), EXPECTED_TURNS);
  }
  assertOnlyProtocolOnStdout(t, a!);
  assertOnlyProtocolOnStdout(t, b!);
  await Promise.all([closeCleanly(t, a!), closeCleanly(t, b!)]);

  // And a fresh replay of the store holds every turn, each exactly once.
  const store = openReplay(dir);
  t.teardown(() => store.close());
  const prompts = store
    .listSessions()
    .flatMap((s) => s.turns.map((turn) => turn.prompt))
    .sort();
  t.deepEqual(prompts, [...PLAN.A, ...PLAN.B].map(([, p]) => p).sort());
});

test('the same scenario on a naive single-JSON-file store (load once, rewrite via temp+rename) loses one writer\'s sessions', async (t) => {
  const { root, fake } = setup(t);
  const file = path.join(root, 'sessions.json');
  const env = { FAKE_CODEX_DELAY_MS: '150' };
  const naive = () => connectStdioServer(t, root, fake, [helperScript('mcp-naive-codex-server.js'), file], env);
  const [a, b] = await Promise.all([naive(), naive()]);
  await runConcurrently(a!, b!);
  await Promise.all([a!.close(), b!.close()]);

  const saved = JSON.parse(fs.readFileSync(file, 'utf8')) as Array<{ id: string; turns: unknown[] }>;
  const turns = Object.fromEntries(saved.map((s) => [s.id, s.turns.length]));
  const lost = Object.keys(EXPECTED_TURNS).filter((id) => turns[id] !== EXPECTED_TURNS[id]);
  t.log(`naive store kept ${JSON.stringify(turns)}; sessions lost or short: ${lost.join(', ')}`);
  // The last rename carries only its own process's map: the other writer's own sessions are gone.
  const aLost = ['a-1', 'a-2', 'a-3'].every((id) => !(id in turns));
  const bLost = ['b-1', 'b-2', 'b-3'].every((id) => !(id in turns));
  t.true(aLost || bLost, 'one writer\'s own sessions are missing');
  t.true((turns.shared ?? 0) < EXPECTED_TURNS.shared!, 'the shared session lost the other writer\'s turns');
});

test('without codex-mcp-server installed it fails with one line on stderr and exit code 4', (t) => {
  // A copy of the built package whose node_modules has every dependency except codex-mcp-server.
  const { root, dir } = setup(t);
  const pkg = path.join(root, 'pkg');
  const repo = new URL('../../../', import.meta.url).pathname;
  fs.mkdirSync(path.join(pkg, 'node_modules'), { recursive: true });
  fs.cpSync(path.join(repo, 'build', 'src'), path.join(pkg, 'build', 'src'), { recursive: true });
  fs.copyFileSync(path.join(repo, 'package.json'), path.join(pkg, 'package.json'));
  const deps = Object.keys((JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies);
  for (const dep of deps) fs.symlinkSync(path.join(repo, 'node_modules', dep), path.join(pkg, 'node_modules', dep));
  const run = spawnSync(process.execPath, [path.join(pkg, 'build', 'src', 'cli', 'main.js'), 'codex-mcp-server', '--dir', dir], { input: '', encoding: 'utf8', timeout: 20_000 });
  t.is(run.status, 4, run.stderr);
  t.is(run.stdout, '');
  t.is(run.stderr.trim().split('\n').length, 1, run.stderr);
  t.regex(run.stderr, /codex-mcp-server is not installed: run `npm install codex-mcp-server`/);
});

test('--memory uses codex-mcp-server\'s own in-memory storage and writes no store', async (t) => {
  const { root, dir, fake } = setup(t);
  const conn = await connectStdioServer(t, root, fake, [CLI_MAIN, 'codex-mcp-server', '--memory'], { SESSION_JOURNAL_DIR: dir });
  t.false((await conn.callCodex('mem', 'hello')).isError);
  t.deepEqual(
    (await conn.listSessions()).map((s) => [s.id, s.turnCount]),
    [['mem', 1]],
  );
  await waitFor(() => /sessions in memory only/.test(conn.stderr()), 30_000, 'the memory-only banner on stderr');
  assertOnlyProtocolOnStdout(t, conn);
  await closeCleanly(t, conn);
  t.false(fs.existsSync(dir));
});

test('SESSION_JOURNAL_DIR names the store when --dir is absent; SIGTERM closes the store', async (t) => {
  const { root, dir, fake } = setup(t);
  const conn = await connectStdioServer(t, root, fake, [CLI_MAIN, 'codex-mcp-server'], { SESSION_JOURNAL_DIR: dir });
  t.false((await conn.callCodex('env-dir', 'hello')).isError);
  // stderr and stdout are separate pipes: the banner may arrive after the tool's answer.
  const banner = new RegExp(`sessions in ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`);
  await waitFor(() => banner.test(conn.stderr()), 30_000, 'the startup banner on stderr');
  // SIGTERM to the server (the tee's child), not a stdin close.
  process.kill(conn.serverPid(), 'SIGTERM');
  await waitFor(() => conn.exitCode() !== undefined, 30_000, 'the server to stop on SIGTERM');
  t.is(conn.exitCode(), '0');
  await waitFor(() => /stopped \(SIGTERM\), store closed/.test(conn.stderr()), 30_000, 'the stop message on stderr');
  const store = openReplay(dir);
  t.teardown(() => store.close());
  t.is(store.getSession('env-dir')?.turns.length, 1);
});

test('a client that lists tools first (the SDK Client, as desktop clients do) gets codex answers: the codex tool lists no outputSchema unless STRUCTURED_CONTENT_ENABLED is set, and then every answer carries structuredContent', async (t) => {
  const { root, dir, fake } = setup(t);
  const plain = await ourServer(t, root, fake, dir);
  t.is(plain.tools.find((tool) => tool.name === 'codex')?.outputSchema, undefined);
  const answer = await plain.callCodex('listed', 'hello');
  t.false(answer.isError, answer.text);
  t.is(answer.structuredContent, undefined);
  await closeCleanly(t, plain);

  const structured = await ourServer(t, root, fake, dir, { STRUCTURED_CONTENT_ENABLED: '1' });
  t.truthy(structured.tools.find((tool) => tool.name === 'codex')?.outputSchema, 'the schema is listed when structured content is sent');
  const again = await structured.callCodex('listed', 'hello again');
  t.false(again.isError, again.text);
  t.like(again.structuredContent, { sessionId: 'listed' });
  await closeCleanly(t, structured);
});

test('plain codex-mcp-server 1.4.10 under the same client fails every codex call with -32600 unless STRUCTURED_CONTENT_ENABLED is set: the cause is upstream', async (t) => {
  const { root, fake } = setup(t);
  const upstream = new URL('../../../node_modules/codex-mcp-server/dist/index.js', import.meta.url).pathname;
  const plain = await connectStdioServer(t, root, fake, [upstream]);
  t.truthy(plain.tools.find((tool) => tool.name === 'codex')?.outputSchema);
  const err = await t.throwsAsync(plain.callCodex('upstream', 'hello'));
  t.like(err, { code: -32600 });
  t.regex(err!.message, /has an output schema but did not return structured content/);
  await plain.close();
  const enabled = await connectStdioServer(t, root, fake, [upstream], { STRUCTURED_CONTENT_ENABLED: '1' });
  t.false((await enabled.callCodex('upstream', 'hello')).isError);
  await enabled.close();
});

test('a 2 MiB answer through session-journal codex-mcp-server: the call succeeds with all of it, the turn is durable, a restarted server sees it', async (t) => {
  const { root, dir, fake } = setup(t);
  const env = { FAKE_CODEX_ANSWER_BYTES: String(2 * 1024 * 1024) };
  const first = await ourServer(t, root, fake, dir, env);
  const answer = await first.callCodex('long', 'tell me everything');
  t.false(answer.isError, answer.text.slice(0, 500));
  t.is(Buffer.byteLength(answer.text), 2 * 1024 * 1024 + 1, 'the whole answer (and its newline) reached the client');
  await closeCleanly(t, first);
  t.notRegex(first.stderr(), /TURN_TOO_LARGE|RECORD_TOO_LARGE|TURN_TRUNCATED/);

  const second = await ourServer(t, root, fake, dir);
  t.deepEqual(
    (await second.listSessions()).map((s) => [s.id, s.turnCount]),
    [['long', 1]],
  );
  t.false((await second.callCodex('long', 'and a short follow-up')).isError);
  await closeCleanly(t, second);

  const store = openReplay(dir);
  t.teardown(() => store.close());
  const turns = store.getSession('long')!.turns;
  t.is(turns[0]!.response, answer.text);
  t.is(turns.length, 2);
});

test('--max-turn-bytes: a prompt over it is refused before codex runs; a longer answer is returned whole and stored cut to fit, with TURN_TRUNCATED on stderr', async (t) => {
  const { root, dir, fake } = setup(t);
  const limit = 64 * 1024;
  const conn = await connectStdioServer(t, root, fake, [CLI_MAIN, 'codex-mcp-server', '--dir', dir, '--max-turn-bytes', String(limit)], { FAKE_CODEX_ANSWER_BYTES: String(200 * 1024) });
  const refused = await conn.callCodex('limited', 'p'.repeat(limit + 1));
  t.true(refused.isError);
  t.regex(refused.text, /more than the 65536 bytes a session turn may hold here \(--max-turn-bytes\): it was not sent to codex/);
  t.is(fake.calls().length, 0, 'codex never ran');

  const long = await conn.callCodex('limited', 'a long answer, please');
  t.false(long.isError, long.text.slice(0, 500));
  t.is(Buffer.byteLength(long.text), 200 * 1024 + 1, 'the client got the whole answer');
  await waitFor(() => /warning TURN_TRUNCATED/.test(conn.stderr()), 30_000, 'the TURN_TRUNCATED warning on stderr');
  await closeCleanly(t, conn);

  const store = openReplay(dir);
  t.teardown(() => store.close());
  const [turn] = store.getSession('limited')!.turns;
  t.true(Buffer.byteLength(turn!.prompt) + Buffer.byteLength(turn!.response) <= limit);
  t.true(long.text.startsWith(turn!.response.slice(0, turn!.response.indexOf('\n[session-journal: answer cut here'))));
  t.regex(turn!.response, /\n\[session-journal: answer cut here to fit the store's limit; 204801 bytes in all\]$/);
});
