#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { COMPACTION_NODE_FLAGS, hasCompactionFlags } from '../compact/compaction-process.js';
import { run } from './dispatch.js';
import { runWithFlags } from './restart.js';
import { endBySignal, stoppedBySignal } from './signals.js';
import { closedStdoutIsQuiet } from './stdout-sink.js';

/**
 * Commands that stream a whole journal run with a small V8 young generation
 * (compact/compaction-process.ts says why). The flag cannot be set at run
 * time, so such a command started without it (typed by hand, cron) starts
 * itself once more with it; restart.ts passes signals on, and this process
 * ends as the restarted one did: with its exit code, or by the signal that
 * ended it. A store's automatic compaction starts this file with the flag
 * already given, so it runs here at once: one process, not two.
 */
const STREAMING_COMMANDS = new Set(['compact']);

const command = process.argv[2];
if (command !== undefined && STREAMING_COMMANDS.has(command) && !hasCompactionFlags(process.execArgv)) {
  const ended = await runWithFlags(COMPACTION_NODE_FLAGS, fileURLToPath(import.meta.url));
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
