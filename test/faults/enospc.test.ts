/**
 * A real full disk (a loop-mounted ext4 image filled to ENOSPC) under three
 * writer processes, a lock-free reader process and two compactions, then
 * space freed: writes fail half-way (the kernel's short writes), readers
 * read those bytes, and nothing acknowledged may be lost or doubled. This is
 * the fault that lost 210-420 of 800 acknowledged turns before commits were
 * framed and fenced (issue 9).
 */
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { runCli, waitFor } from '../helpers/compaction-helpers.js';
import { KEEP_ALL_ARGS, ackedUpTo as acked, expectedPrompts, replayPrompts, spawnFaultChild } from '../helpers/fault-children.js';
import { fillDisk, mountSmallExt4 } from '../helpers/small-fs.js';

/** The fixtures' "now" for this family: the writers' clocks start here. */
const NOW = Date.UTC(2026, 10, 21, 9, 0, 0);
const WRITERS = ['w1', 'w2', 'w3'];
const COUNT = 260;
/** Turns of 900 bytes; or of 2500 bytes in lines of 1 KiB, so that the writes cut short by the full disk hold records spread over several lines. */
const CASES = [
  { spread: false, size: { payloadBytes: 900 }, diskMiB: 6 },
  // Part lines carry an envelope each: journal and snapshot need about twice the room.
  { spread: true, size: { payloadBytes: 2500, maxLineBytes: 1024 }, diskMiB: 12 },
];

for (const { spread, size, diskMiB } of CASES) {
test(`a full disk under writers, a lock-free reader and compactions${spread ? ', every turn spread over several lines' : ''}: every acknowledged turn survives exactly once, and the reader converges`, async (t) => {
  const mount = mountSmallExt4(t, diskMiB);
  const dir = path.join(mount, 'store');
  fs.mkdirSync(dir, { mode: 0o700 });
  const writers = WRITERS.map((name, i) => spawnFaultChild({ dir, name, mode: 'write', count: COUNT, ...size, flushEvery: 1 + i, clockStart: NOW + i * 1_000_000 }));
  const reader = spawnFaultChild({ dir, name: 'reader', mode: 'read', clockStart: NOW });
  t.teardown(() => [...writers, reader].forEach((c) => c.kill()));

  t.true(await waitFor(() => writers.every((w) => acked(w) >= 40), 60_000), 'the writers got going');
  const filler = fillDisk(mount);
  t.true(await waitFor(() => writers.filter((w) => w.messages.some((m) => m.type === 'flush-failed')).length >= 2, 60_000), 'the full disk failed flushes');
  const onFullDisk = await runCli(['compact', '--dir', dir, ...KEEP_ALL_ARGS], { timeoutMs: 60_000 });
  t.not(onFullDisk.code, 70, `compaction on a full disk fails with a coded error: ${onFullDisk.stderr}`);
  fs.unlinkSync(filler);
  const afterFreeing = await runCli(['compact', '--dir', dir, '--no-archive', ...KEEP_ALL_ARGS], { timeoutMs: 60_000 });
  t.is(afterFreeing.code, 0, afterFreeing.stderr);

  await Promise.all(writers.map((w) => w.next('done', 120_000)));
  reader.send({ op: 'stop' });
  const { view } = (await reader.next('view', 30_000)) as unknown as { view: Record<string, string[]> };

  const fresh = await replayPrompts(dir, NOW);
  const failures = writers.map((w) => w.messages.filter((m) => m.type === 'flush-failed').length);
  t.log(`flushes failed on the full disk: ${failures.join(', ')}`);
  for (const w of writers) {
    const prompts = fresh[`${w.name}-session`] ?? [];
    t.is(acked(w), COUNT - 1, `${w.name} finished`);
    t.deepEqual(prompts, expectedPrompts(w.name, COUNT), `${w.name}: every acknowledged turn once, in order`);
  }
  t.deepEqual(view, fresh, 'the lock-free reader converged on a fresh replay');
  const verify = await runCli(['verify', '--dir', dir, '--json'], { timeoutMs: 60_000 });
  t.true(verify.code === 0 || verify.code === 1, `verify exits 0 or 1, never 70: ${verify.code} ${verify.stderr}`);
});
}
