/**
 * A stand-in for the `codex` CLI (the real one needs the network), answering
 * the way `codex exec` does: the banner, the session id and the transcript on
 * stderr, the final message alone on stdout. codex-mcp-server finds the
 * conversation id in stderr ("session id: ..."), and resumes it with
 * `codex exec --skip-git-repo-check -c model="..." resume <id> <prompt>`.
 *
 * Environment: FAKE_CODEX_LOG (append one JSON line per call),
 * FAKE_CODEX_DELAY_MS (answer after a random delay up to this, so calls overlap),
 * FAKE_CODEX_ANSWER_BYTES (pad the answer to this many bytes: a long answer;
 * the transcript on stderr then shows only its start, as a long one scrolls).
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';

const args = process.argv.slice(2);

if (args.includes('--help')) {
  process.stdout.write('Codex CLI (test stand-in)\n\nUsage: codex [OPTIONS] [PROMPT]\n       codex exec [OPTIONS] [PROMPT]\n');
  process.exit(0);
}

const execAt = args.indexOf('exec');
if (execAt === -1) {
  process.stderr.write(`error: unexpected arguments ${JSON.stringify(args)}\n`);
  process.exit(2);
}
const resumeAt = args.indexOf('resume', execAt);
const resumed = resumeAt !== -1;
const conversationId = resumed ? args[resumeAt + 1]! : randomUUID();
const prompt = args[args.length - 1]!;
const modelArg = args.indexOf('--model');
const model = modelArg !== -1 ? args[modelArg + 1] : (/model="([^"]+)"/.exec(args.join(' '))?.[1] ?? 'gpt-5-codex');

const log = process.env.FAKE_CODEX_LOG;
if (log) fs.appendFileSync(log, JSON.stringify({ args, conversationId, resumed, prompt }) + '\n');

/**
 * `text`, padded to `bytes` bytes (when it is shorter). ASCII only:
 * codex-mcp-server 1.4.10 decodes each stdout chunk on its own
 * (`data.toString()`), so a multi-byte character split between two chunks
 * reaches the client as two U+FFFD.
 */
function padded(text: string, bytes: number): string {
  if (Buffer.byteLength(text) >= bytes) return text;
  const line = 'all work and no play makes a long answer; ';
  const out = `${text}\n${line.repeat(Math.ceil(bytes / line.length))}`;
  return out.slice(0, bytes - (Buffer.byteLength(text) - text.length));
}

const answer = padded(`answer to ${JSON.stringify(prompt)} in conversation ${conversationId}`, Number(process.env.FAKE_CODEX_ANSWER_BYTES ?? 0));
const delay = Math.floor(Math.random() * Number(process.env.FAKE_CODEX_DELAY_MS ?? 0));

setTimeout(() => {
  process.stderr.write(
    [
      'OpenAI Codex v0.46.0 (research preview)',
      '--------',
      `workdir: ${process.cwd()}`,
      `model: ${model}`,
      'provider: openai',
      'approval: never',
      'sandbox: read-only',
      'reasoning effort: medium',
      'reasoning summaries: auto',
      `session id: ${conversationId}`,
      '--------',
      'user',
      prompt,
      '',
      'codex',
      answer.slice(0, 200),
      'tokens used: 1,234',
      '',
    ].join('\n'),
  );
  process.stdout.write(answer + '\n');
}, delay);
