/**
 * One automatic compaction is one child process: the store starts the
 * compaction with the CLI's V8 flag (a small young generation) already set,
 * so `compact` runs at once instead of starting itself again to set it. The
 * flag is kept: the process that compacts runs with it, started by hand
 * (`session-journal compact`, which still restarts itself for it) or by a
 * store.
 *
 * Every Node process these tests start logs itself (helpers/process-log.ts,
 * loaded through NODE_OPTIONS in this file's environment, which the store's
 * child inherits); the processes of one test are those whose argv names its
 * store directory.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { SessionStore } from '../../src/index.js';
import { COMPACTION_NODE_FLAGS } from '../../src/compact/compaction-process.js';
import { readProcessLog, type LoggedProcess } from '../helpers/process-log.js';
import { collectWarnings, helperScript, tempStoreDir } from '../helpers/temp-store.js';
import { CLI_MAIN, FakeClock, T0, snapshotsIn, turnOf, waitFor } from '../helpers/compaction-helpers.js';

/** Turn timestamps only: the stores run on their own clock. */
const stamps = new FakeClock(T0);

const logFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sj-proc-log-')), 'processes.ndjson');
process.env.SJ_PROCESS_LOG = logFile;
process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --import=${JSON.stringify(pathToFileURL(helperScript('process-log.js')).href)}`.trim();
test.after.always(() => fs.rmSync(path.dirname(logFile), { recursive: true, force: true }));

const processesFor = (dir: string): LoggedProcess[] => readProcessLog(logFile).filter((p) => p.argv.includes(dir));
const hasFlags = (p: LoggedProcess): boolean => COMPACTION_NODE_FLAGS.every((f) => p.execArgv.includes(f));

test('one automatic compaction is one child process of the store, and it runs with the small young generation', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  const store = SessionStore.openSync({ dir, fsync: false, onWarning, autoCompact: { minBytes: 4 * 1024, growthPercent: 100 } });
  for (let i = 0; i < 4; i++) store.ensureSession(`s-${i}`);
  for (let i = 0; i < 40; i++) store.addTurn(`s-${i % 4}`, turnOf(`turn ${i} ${'z'.repeat(200)}`, stamps)); // ~12 KB: past minBytes
  await store.flush();
  const running = (store as unknown as { autoCompactor: { running?: Promise<number> } }).autoCompactor;
  t.true(await waitFor(() => snapshotsIn(dir).length > 0, 10_000, 50), 'the compaction ran');
  t.true(await waitFor(() => running.running === undefined, 10_000), 'and ended');
  await store.close();
  t.deepEqual(warnings, []);

  const started = processesFor(dir);
  t.is(started.length, 1, `one process, not ${started.length}: ${JSON.stringify(started)}`);
  const child = started[0]!;
  t.is(child.ppid, process.pid, "the store's own child");
  t.true(hasFlags(child), `started with ${COMPACTION_NODE_FLAGS.join(' ')}: ${JSON.stringify(child.execArgv)}`);
  t.is(child.argv[1], 'compact');
});

test('session-journal compact started by hand still compacts in a process with the small young generation', async (t) => {
  const dir = tempStoreDir(t);
  const store = SessionStore.openSync({ dir, fsync: false, autoCompact: false });
  store.ensureSession('s-1');
  store.addTurn('s-1', turnOf('a turn', stamps));
  await store.close();
  const code = await new Promise<number | null>((resolve) => spawn(process.execPath, [CLI_MAIN, 'compact', '--dir', dir], { stdio: 'ignore' }).on('close', resolve));
  t.is(code, 0);
  t.is(snapshotsIn(dir).length, 1);

  const started = processesFor(dir);
  const compacting = started.filter(hasFlags);
  t.is(compacting.length, 1, JSON.stringify(started));
  const launcher = started.find((p) => p.pid === compacting[0]!.ppid);
  t.truthy(launcher, 'started by the command, which restarted itself to set the flag');
  t.false(hasFlags(launcher!));
});
