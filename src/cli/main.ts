#!/usr/bin/env node
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { run } from './dispatch.js';

/**
 * Commands that stream a whole journal run with a small V8 young generation:
 * replaying a journal makes garbage fast, and V8's default semi-spaces let it
 * grow the process by tens of MB before collecting. The flag cannot be set at
 * run time, so such a command starts itself once more with it.
 */
const STREAMING_COMMANDS = new Set(['compact']);
const SMALL_YOUNG_GENERATION = '--max-semi-space-size=1';

const command = process.argv[2];
if (command !== undefined && STREAMING_COMMANDS.has(command) && !process.execArgv.some((a) => a.startsWith('--max-semi-space-size'))) {
  const child = spawnSync(process.execPath, [SMALL_YOUNG_GENERATION, ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(child.status ?? 70);
}

const packageJson = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
process.exitCode = await run(process.argv.slice(2), { version: packageJson.version, stdout: process.stdout, stderr: process.stderr, env: process.env });
