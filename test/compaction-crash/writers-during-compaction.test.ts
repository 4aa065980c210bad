/**
 * Eight writer processes append (fsync on, autoCompact off) while the real
 * CLI, `session-journal compact`, is started every 200 ms against the same
 * store (at most three at once: they queue on compact.lock). Afterwards:
 * nothing acknowledged is lost, nothing is duplicated, and every process's
 * view, read after all writers flushed, equals a fresh replay (turns in order,
 * conversation ids, dates as ISO strings).
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { checkAcked, checkCompactedLayout, CrashWriter, replay } from '../helpers/crash-procs.js';
import { tempStoreDir } from '../helpers/temp-store.js';
import { TEST_T0 } from '../helpers/fixture-now.js';
import { timeline } from '../helpers/child-clock.js';

const CLI = new URL('../../src/cli/main.js', import.meta.url).pathname;
const WRITERS = 8;
const SHARED = ['shared-a', 'shared-b', 'shared-c'];
const RUN_MS = 9_000;
/**
 * At least this many compactions must have started before the loop ends: on
 * a loaded machine one CLI compaction beside 8 writers can take 3 s, so the
 * loop runs past RUN_MS (up to MAX_RUN_MS) rather than test fewer of them.
 */
const MIN_RUNS = 12;
const MAX_RUN_MS = 60_000;
const EVERY_MS = 200;
const MAX_IN_FLIGHT = 3;

interface CliRun {
  code: number | null;
  ms: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runCli(dir: string): Promise<CliRun> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'compact', '--dir', dir, '--max-sessions', '1000', '--ttl', '7d', '--now', new Date(TEST_T0).toISOString(), '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('close', (code, signal) => resolve({ code, ms: Date.now() - started, signal, stdout, stderr }));
  });
}

test('8 writers append while the CLI compacts every 200 ms: nothing lost, nothing duplicated, all views converge', async (t) => {
  const dir = tempStoreDir(t);
  fs.mkdirSync(dir, { mode: 0o700 });
  const writers = Array.from({ length: WRITERS }, (_, i) => new CrashWriter(`w${i}`));
  t.teardown(() => writers.forEach((w) => w.kill()));
  await Promise.all(writers.map((w) => w.open(dir, true, timeline(TEST_T0))));
  writers.forEach((w, i) => w.start({ writer: w.name, shared: SHARED, own: `own-${w.name}`, batch: 1 + (i % 4), pauseMs: 10 + (i % 3) * 5 }));

  const runs: CliRun[] = [];
  const inFlight = new Set<Promise<void>>();
  const started = Date.now();
  const keepGoing = () => Date.now() - started < RUN_MS || (runs.length + inFlight.size < MIN_RUNS && Date.now() - started < MAX_RUN_MS);
  while (keepGoing()) {
    if (inFlight.size < MAX_IN_FLIGHT) {
      const p: Promise<void> = runCli(dir).then((r) => {
        runs.push(r);
        inFlight.delete(p);
      });
      inFlight.add(p);
    }
    await new Promise((resolve) => setTimeout(resolve, EVERY_MS));
  }
  await Promise.all(inFlight);

  const loopMs = Date.now() - started;
  const counts = await Promise.all(writers.map((w) => w.stop()));
  // Every writer has finished and flushed; only now does each read its view.
  const views = await Promise.all(writers.map((w) => w.view()));
  const fresh = replay(dir);

  const failed = runs.filter((r) => r.code !== 0);
  t.deepEqual(
    failed.map((r) => `exit ${r.code} ${r.signal ?? ''}: ${r.stderr.trim()}`),
    [],
    'every compaction exits 0',
  );
  const results = runs.map((r) => JSON.parse(r.stdout.trim()) as { status: string; segmentsArchived: number });
  const compacted = results.filter((r) => r.status === 'compacted').length;
  t.true(compacted >= 10, `compactions actually ran (${compacted} of ${runs.length})`);

  t.deepEqual(fresh.warnings, [], 'the replay has no warnings');
  const expectations = new Map(writers.map((w, i) => [w.name, { run: w.run!, acked: w.acked, exact: counts[i]! }]));
  t.deepEqual(checkAcked(fresh.sessions, expectations), [], 'every acknowledged turn is there exactly once, in order');
  const total = fresh.sessions.reduce((n, s) => n + s.turns.length, 0);
  t.is(total, counts.reduce((a, b) => a + b, 0), 'no turn appears twice');
  t.is(fresh.sessions.length, SHARED.length + WRITERS, 'every session is there');
  for (let i = 0; i < WRITERS; i++) t.deepEqual(views[i], fresh.sessions, `${writers[i]!.name}'s view equals a fresh replay`);
  for (const w of writers) t.deepEqual(w.warnings, [], `${w.name} saw no warnings`);

  // A last compaction with everyone idle leaves the canonical layout, and the same state.
  const last = await runCli(dir);
  t.is(last.code, 0, last.stderr);
  await Promise.all(writers.map((w) => w.close()));
  t.deepEqual(checkCompactedLayout(dir), [], 'one snapshot, one segment, no temporary files or locks');
  t.deepEqual(replay(dir).sessions, fresh.sessions, 'the last compaction changed nothing');
  const ms = runs.map((r) => r.ms).sort((a, b) => a - b);
  t.log(`${runs.length} CLI compactions (${compacted} compacted; ${ms[0]}-${ms[ms.length - 1]} ms, median ${ms[ms.length >> 1]}), ${total} turns by ${WRITERS} writers; compaction loop ${loopMs} ms, all ${Date.now() - started} ms`);
});
