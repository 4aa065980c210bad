/**
 * Runs a command and passes its stdin, stdout and stderr through, while
 * copying every byte of its stdout to a capture file: the test then checks
 * that each line there is a JSON-RPC message. The child's exit code is
 * written to `<capture>.exit`, its pid to `<capture>.pid`. Usage: node mcp-stdout-tee.js CAPTURE CMD ARGS...
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';

const [capture, command, ...args] = process.argv.slice(2);
if (!capture || !command) throw new Error('usage: mcp-stdout-tee CAPTURE CMD [ARGS...]');
const out = fs.openSync(capture, 'a');
const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'] });
fs.writeFileSync(`${capture}.pid`, String(child.pid));
process.stdin.pipe(child.stdin);
child.stdin.on('error', () => undefined);
child.stdout.on('data', (chunk: Buffer) => {
  fs.writeSync(out, chunk);
  process.stdout.write(chunk);
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => {
  // Written aside and renamed: a test polling for the file must never read it empty (seen in CI: '' for '0').
  fs.writeFileSync(`${capture}.exit.tmp`, String(code ?? signal));
  fs.renameSync(`${capture}.exit.tmp`, `${capture}.exit`);
  process.stdout.end(() => process.exit(code ?? 1));
});
