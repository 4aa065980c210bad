#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { run } from './dispatch.js';
import { runWithFlag } from './restart.js';
import { endBySignal, stoppedBySignal } from './signals.js';
import { closedStdoutIsQuiet } from './stdout-sink.js';

/**
 * Commands that stream a whole journal run with a small V8 young generation:
 * replaying a journal makes garbage fast, and V8's default semi-spaces let it
 * grow the process by tens of MB before collecting. The flag cannot be set at
 * run time (v8.setFlagsFromString after start-up leaves the new space as it
 * is), so such a command starts itself once more with it; restart.ts passes
 * signals on, and this process ends as the restarted one did: with its exit
 * code, or by the signal that ended it.
 */
const STREAMING_COMMANDS = new Set(['compact']);
const SMALL_YOUNG_GENERATION = '--max-semi-space-size=1';

const command = process.argv[2];
if (command !== undefined && STREAMING_COMMANDS.has(command) && !process.execArgv.some((a) => a.startsWith('--max-semi-space-size'))) {
  const ended = await runWithFlag(SMALL_YOUNG_GENERATION, fileURLToPath(import.meta.url));
  if (ended.signal) endBySignal(ended.signal);
  process.exitCode = ended.code;
} else {
  closedStdoutIsQuiet(process.stdout);
  const packageJson = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  process.exitCode = await run(process.argv.slice(2), { version: packageJson.version, stdout: process.stdout, stderr: process.stderr, env: process.env });
  // A command stopped by a signal has cleaned up: the process ends by that signal (signals.ts).
  const signal = stoppedBySignal();
  if (signal) endBySignal(signal);
}
