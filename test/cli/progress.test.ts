import { spawnSync } from 'node:child_process';
import path from 'node:path';
import test from 'ava';
import { Journal } from '../../src/index.js';
import { tempStoreDir } from '../helpers/temp-store.js';

const CLI = path.join(new URL('../../../', import.meta.url).pathname, 'build/src/cli/main.js');

/** A store of about 6 MiB of session records, written quickly through the engine. */
function bigStore(t: Parameters<typeof tempStoreDir>[0]): string {
  const dir = tempStoreDir(t);
  const journal = Journal.openSync({ dir, fsync: false, consumer: { reset: () => undefined, restore: () => undefined, apply: () => undefined } });
  for (let s = 0; s < 50; s++) journal.append('session.create', { id: `s${s}` });
  for (let i = 0; i < 20_000; i++) {
    journal.append('session.turn', { id: `s${i % 50}`, turn: { prompt: `p${i} ${'x'.repeat(100)}`, response: `r${i} ${'y'.repeat(100)}`, timestamp: new Date(Date.UTC(2026, 0, 1)).toISOString() } });
  }
  journal.closeSync();
  return dir;
}

/** Runs the CLI with stdout and stderr on a pseudo-terminal (util-linux `script`); returns what the terminal showed. */
function onTerminal(args: string[]): { status: number | null; screen: string } {
  const command = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const run = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { status: run.status, screen: run.stdout };
}

const BAR = /\[#*-*\] +\d+%/;

test('compact draws a progress bar on a terminal for a large store, and none on a pipe or with --json', (t) => {
  const dir = bigStore(t);
  const piped = spawnSync(process.execPath, [CLI, 'compact', '--dir', dir, '--ttl', '3650d'], { encoding: 'utf8' });
  t.is(piped.status, 0, piped.stderr);
  t.is(piped.stderr, '', 'nothing on a stderr that is not a terminal');

  const dir2 = bigStore(t);
  const terminal = onTerminal(['compact', '--dir', dir2, '--ttl', '3650d']);
  t.is(terminal.status, 0, terminal.screen);
  t.regex(terminal.screen, /compact /);
  t.regex(terminal.screen, BAR);

  const dir3 = bigStore(t);
  const json = onTerminal(['compact', '--dir', dir3, '--ttl', '3650d', '--json']);
  t.is(json.status, 0, json.screen);
  t.notRegex(json.screen, BAR);
  t.is(JSON.parse(json.screen.trim()).status, 'compacted');
});

test('verify and replay draw no bar when stderr is not a terminal', (t) => {
  const dir = bigStore(t);
  for (const args of [['verify', '--dir', dir], ['replay', '--dir', dir, '--ndjson']]) {
    const run = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    t.notRegex(run.stderr, BAR, args[0]);
  }
});
