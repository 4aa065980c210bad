/**
 * Signals sent to the CLI in a pseudo-terminal (test/helpers/pty.ts), as a
 * person at a terminal sends them: Ctrl-C typed at the terminal reaches the
 * whole foreground process group (compact and the process it restarts with
 * a small young generation); `kill PID` reaches only the process started.
 * The compaction is held at a known file-system call (pause-hook.ts) while
 * the signal is sent, then let go: without the signal it would finish and
 * exit 0, so an unfinished compaction that ends by the signal proves the
 * signal stopped it, with no timing involved. Having cleaned up, the command
 * ends by the signal itself (as if uncaught), which a shell reports as
 * 128 + its number: 130 for SIGINT, 143 for SIGTERM.
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SessionStore } from '../../src/index.js';
import { tempFileOwner } from '../../src/storage/file/store-layout.js';
import { collectWarnings, helperScript, tempStoreDir } from '../helpers/temp-store.js';
import { CLI_MAIN, FakeClock, T0, fingerprint, freshReplay, runCli, snapshotsIn, waitFor, withoutStoreEnv } from '../helpers/compaction-helpers.js';
import { makeFreshLock } from '../helpers/held-lock.js';
import { childrenOf, processState, runInPty, signalPending } from '../helpers/pty.js';
import type { PauseAt } from '../helpers/pause-hook.js';

/** The compaction's "now" (--now): the sessions were written just before it, by a fake clock. */
const NOW_ISO = new Date(T0).toISOString();
const { SIGINT, SIGTERM } = os.constants.signals;

const gone = (pid: number) => processState(pid) === undefined || processState(pid) === 'Z';
/** Generous: the machine may be busy; every wait below ends as soon as its condition holds. */
const WAIT_MS = 60_000;

async function storeWithSessions(t: ExecutionContext, ids: readonly string[], dir = tempStoreDir(t)): Promise<string> {
  const clock = new FakeClock(T0 - 60_000);
  const store = await SessionStore.open({ dir, autoCompact: false, clock: clock.read });
  for (const id of ids) {
    store.ensureSession(id);
    store.addTurn(id, { prompt: `hello ${id}`, response: 're', timestamp: new Date(clock.read()) });
    clock.advance(1000);
  }
  await store.close();
  return dir;
}

const compactArgs = (dir: string) => ['compact', '--dir', dir, '--now', NOW_ISO, '--ttl', '30d'];

async function sessionsOf(dir: string): Promise<string> {
  const { onWarning, warnings } = collectWarnings();
  const sessions = await freshReplay(dir, onWarning);
  if (warnings.length > 0) throw new Error(`replay warned: ${JSON.stringify(warnings)}`);
  return JSON.stringify(sessions);
}

/** Temporary files (any process's) and locks left in the store or its archive. */
function leftovers(dir: string): string[] {
  const names = (sub: string) => (fs.existsSync(path.join(dir, sub)) ? fs.readdirSync(path.join(dir, sub)).map((n) => path.join(sub, n)) : []);
  return [...names(''), ...names('archive')].filter((n) => tempFileOwner(path.basename(n)) !== undefined || n.endsWith('.lock'));
}

const shellQuote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;

/**
 * `session-journal compact` in a pseudo-terminal, held at the first `call` on a path containing `match`;
 * with `shell`, run by sh, which then prints the exit status it saw.
 */
function compactInPty(t: ExecutionContext, dir: string, call: string, match: string, extra: string[] = [], shell = false) {
  const marker = path.join(path.dirname(dir), `paused-${call}`);
  const pauseAt: PauseAt = { dir, call, match, marker };
  const env = withoutStoreEnv({ SJ_PAUSE: JSON.stringify(pauseAt), NO_COLOR: '1' });
  const command = [process.execPath, '--import', helperScript('pause-hook.js'), CLI_MAIN, ...compactArgs(dir), ...extra];
  const run = shell ? runInPty('/bin/sh', ['-c', `${command.map(shellQuote).join(' ')}; echo "exit status $?"`], env) : runInPty(command[0]!, command.slice(1), env);
  let held: number | undefined;
  // A test that fails with the process still held must not leave it (or its parent) behind.
  t.teardown(() => {
    if (held !== undefined && !gone(held)) process.kill(held, 'SIGKILL');
    run.kill();
  });
  /** The pid of the process held at the call, once it is stopped there. */
  const paused = async (): Promise<number> => {
    const ok = await waitFor(() => /^\d+$/.test(fs.existsSync(marker) ? fs.readFileSync(marker, 'utf8') : '') && processState(Number(fs.readFileSync(marker, 'utf8'))) === 'T', WAIT_MS);
    t.true(ok, `the compaction reached ${call} ${match}; terminal: ${run.output()}`);
    held = Number(fs.readFileSync(marker, 'utf8'));
    return held;
  };
  return { run, paused };
}

/**
 * Lets a held process go on once `signal` waits for it (the signal is then the first thing it sees).
 * A signal that never reaches it (a parent that does not pass SIGTERM on) fails the test.
 */
async function resumeWith(t: ExecutionContext, pid: number, signal: number): Promise<void> {
  const reached = await waitFor(() => signalPending(pid, signal), WAIT_MS);
  process.kill(pid, 'SIGCONT');
  t.true(reached, `signal ${signal} reached the held process`);
}

test('Ctrl-C at the terminal stops a compaction during its replay: it ends by SIGINT (a shell: 130), the store exactly as before, no process left', async (t) => {
  const dir = await storeWithSessions(t, ['a', 'b', 'c']);
  const before = fingerprint(dir);
  const sessions = await sessionsOf(dir);
  const { run, paused } = compactInPty(t, dir, 'readSync', 'journal-00000001.ndjson');
  const held = await paused();
  const started = await run.pid;
  t.not(held, started, 'held in the restarted process (started with --max-semi-space-size=1)');
  t.deepEqual(childrenOf(started), [held]);

  run.ctrlC();
  await resumeWith(t, held, SIGINT);
  const exit = await run.exit;
  t.deepEqual({ code: exit.code, signal: exit.signal }, { code: undefined, signal: SIGINT }, exit.output);
  t.regex(exit.output, /session-journal compact: stopped by SIGINT: nothing was changed/);
  t.notRegex(exit.output, /internal error|at .*\.js:\d+/);
  t.true(gone(held), 'the restarted process ended too');

  t.deepEqual(fingerprint(dir), before, 'not a byte, name or mtime changed');
  t.deepEqual(leftovers(dir), []);
  t.is(await sessionsOf(dir), sessions);
  const verify = await runCli(['verify', '--dir', dir]);
  t.is(verify.code, 0, verify.stdout + verify.stderr);
});

test('SIGTERM to the command (kill PID, the restarted process not signalled) stops a compaction while it archives: it ends by SIGTERM (a shell: 143), consistent store, no leftovers', async (t) => {
  // Compacted once, then written to: the next compaction archives a segment and the old snapshot.
  const dir = await storeWithSessions(t, ['a', 'b', 'c']);
  t.is((await runCli(compactArgs(dir), { timeoutMs: WAIT_MS })).code, 0);
  await storeWithSessions(t, ['d'], dir);
  const sessions = await sessionsOf(dir);
  // The rename of the archived segment's gzip into archive/: the new snapshot is published by then, and the old one is next.
  const { run, paused } = compactInPty(t, dir, 'renameSync', 'journal-00000002.ndjson.gz.tmp-');
  const held = await paused();
  const started = await run.pid;
  t.not(held, started);

  process.kill(started, 'SIGTERM');
  await resumeWith(t, held, SIGTERM);
  const exit = await run.exit;
  t.deepEqual({ code: exit.code, signal: exit.signal }, { code: undefined, signal: SIGTERM }, exit.output);
  t.regex(exit.output, /stopped by SIGTERM: the new snapshot is published; the next compaction archives the segments it folded/);
  t.true(gone(held));

  t.deepEqual(leftovers(dir), [], 'no temporary file, no lock');
  t.deepEqual(snapshotsIn(dir), ['snapshot-00000002.ndjson', 'snapshot-00000003.ndjson'], 'the old snapshot not archived yet');
  t.is(await sessionsOf(dir), sessions);
  const verify = await runCli(['verify', '--dir', dir]);
  t.is(verify.code, 0, verify.stdout + verify.stderr);
  // The next compaction finishes the work.
  const again = await runCli(compactArgs(dir), { timeoutMs: WAIT_MS });
  t.is(again.code, 0, again.stderr);
  t.deepEqual(snapshotsIn(dir), ['snapshot-00000004.ndjson']);
  t.is(await sessionsOf(dir), sessions);
  t.deepEqual(leftovers(dir), []);
});

test('SIGTERM while compact waits for another compaction\'s lock ends the wait at once (not exit 3 after --lock-timeout), the lock left to its holder; a shell reports 143', async (t) => {
  const dir = await storeWithSessions(t, ['a']);
  makeFreshLock(dir, 'compact.lock');
  const before = fingerprint(dir);
  // Held at its first try for the lock, which then finds it busy and waits (up to 10 minutes).
  const { run, paused } = compactInPty(t, dir, 'mkdirSync', 'compact.lock', ['--lock-timeout', '10m'], true);
  const held = await paused();
  const [command] = childrenOf(await run.pid); // the shell's child: the command it started
  t.true(command !== undefined && command !== held);
  process.kill(command!, 'SIGTERM');
  await resumeWith(t, held, SIGTERM);
  const exit = await run.exit;
  t.is(exit.code, 0, exit.output);
  // The shell says so as for any command a signal ended ("Terminated"), and $? is 143.
  t.regex(exit.output, /stopped by SIGTERM: nothing was changed\r?\n(?:Terminated\r?\n)?exit status 143\r?\n/);
  t.deepEqual(fingerprint(dir), before, 'the other compaction\'s lock is still there, untouched');
});

test('replay --follow at a terminal: Ctrl-C ends it with exit 0 (documented), quietly', async (t) => {
  const dir = await storeWithSessions(t, ['a']);
  const run = runInPty(process.execPath, [CLI_MAIN, 'replay', '--dir', dir, '--follow'], withoutStoreEnv({ NO_COLOR: '1' }));
  t.true(await waitFor(() => /\ba +turn +"hello a"/.test(run.output()), WAIT_MS), run.output());
  run.ctrlC();
  const exit = await run.exit;
  t.is(exit.code, 0, exit.output);
  t.notRegex(exit.output, /error|at .*\.js:\d+/);
});
