/**
 * A writer stopped (SIGSTOP) inside its commit, holding the lock, for longer
 * than the lock's stale time: a peer takes the lock over and goes on
 * writing, with or without a compaction rotating the segment meanwhile, and
 * then the stopped writer resumes (SIGCONT) and finishes its write into a
 * segment that moved on. Its fence must catch it: nothing it acknowledges may
 * be missing or doubled, and every view must equal a fresh replay. (In
 * production: a long GC pause, a frozen VM, a closed laptop lid.)
 */
import fs from 'node:fs';
import test from 'ava';
import { runCli, waitFor } from '../helpers/compaction-helpers.js';
import { KEEP_ALL_ARGS, ackedUpTo as acked, expectedPrompts, replayPrompts, spawnFaultChild } from '../helpers/fault-children.js';
import { tempStoreDir } from '../helpers/temp-store.js';

/** The fixtures' "now" for this family: the writers' clocks start here. */
const NOW = Date.UTC(2026, 10, 21, 9, 0, 0);
const COUNT = 300;
const STALE_MS = 2000;

/** The kernel's word on whether a process is stopped (state T in /proc/PID/stat). */
const isStopped = (pid: number): boolean => {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('T');
  } catch {
    return false;
  }
};

/** Turns of 300 bytes; or of 5000 bytes in lines of 2 KiB, so that every commit in doubt holds records spread over several lines. */
const CASES = [
  { withCompaction: false, spread: false },
  { withCompaction: true, spread: false },
  { withCompaction: false, spread: true },
];

for (const { withCompaction, spread } of CASES) {
  test(`a writer stopped inside its commit past lockStaleMs, ${withCompaction ? 'with' : 'without'} a compaction meanwhile${spread ? ', every turn spread over several lines' : ''}: nothing acknowledged lost or doubled, every view converges`, async (t) => {
    const dir = tempStoreDir(t);
    fs.mkdirSync(dir, { mode: 0o700 });
    const size = spread ? { payloadBytes: 5000, maxLineBytes: 2048 } : { payloadBytes: 300 };
    const stalled = spawnFaultChild({ dir, name: 'stalled', mode: 'write', count: COUNT, ...size, flushEvery: 2, clockStart: NOW, lockStaleMs: STALE_MS, stopAtCommitWrite: 40 });
    const peer = spawnFaultChild({ dir, name: 'peer', mode: 'write', count: COUNT, ...size, flushEvery: 1, clockStart: NOW + 500_000, lockStaleMs: STALE_MS });
    t.teardown(() => {
      if (stalled.alive) stalled.proc.kill('SIGCONT');
      stalled.kill();
      peer.kill();
    });

    t.true(await waitFor(() => isStopped(stalled.proc.pid!), 60_000, 5), 'the writer stopped itself inside a commit');
    const peerAtStop = acked(peer);
    // The peer can only go on once it took the stale lock over.
    t.true(await waitFor(() => acked(peer) >= peerAtStop + 20 || peer.messages.some((m) => m.type === 'done'), 60_000), `the peer took the lock over (acked ${peerAtStop} -> ${acked(peer)})`);
    if (withCompaction) {
      const compacted = await runCli(['compact', '--dir', dir, ...KEEP_ALL_ARGS], { timeoutMs: 60_000 });
      t.is(compacted.code, 0, compacted.stderr);
    }
    t.true(isStopped(stalled.proc.pid!), 'still stopped: its write has not happened yet');
    stalled.proc.kill('SIGCONT');

    const [stalledDone, peerDone] = (await Promise.all([stalled.next('done', 120_000), peer.next('done', 120_000)])) as unknown as Array<{ view: Record<string, string[]> }>;
    const fresh = await replayPrompts(dir, NOW);
    for (const w of [stalled, peer]) {
      t.is(acked(w), COUNT - 1, `${w.name} finished`);
      t.deepEqual(fresh[`${w.name}-session`], expectedPrompts(w.name, COUNT), `${w.name}: every acknowledged turn once, in order`);
    }
    // Each writer's last view was taken after its own last flush; the other may have written more since.
    t.deepEqual(stalledDone!.view['stalled-session'], fresh['stalled-session'], "the stalled writer's view of its own session equals a fresh replay");
    t.deepEqual(peerDone!.view['peer-session'], fresh['peer-session'], "the peer's view of its own session equals a fresh replay");
    const codes = stalled.messages.filter((m) => m.type === 'warning').map((m) => m.code);
    t.log(`stalled writer's warnings: ${[...new Set(codes)].join(', ') || 'none'}`);
  });
}
