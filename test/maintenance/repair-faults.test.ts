/**
 * Injected file-system failures (ENOSPC, EIO, EACCES) at every call one
 * repair makes, in this process (the hook of crash-fs-hook.ts, as in the
 * compaction sweep), on a store whose live segment holds garbage lines, so
 * the repair rotates, rewrites the closed segment and fills the quarantine.
 * For each call k of a counted pass-through run, the k-th call fails:
 *  - repairStore rejects with SessionJournalError IO_ERROR whose cause is the
 *    injected error (a few best-effort calls may be tolerated: listed);
 *  - it neither hangs nor leaves compact.lock or journal.lock behind (unless
 *    removing that lock was the call that failed);
 *  - a fresh replay has the same sessions as before: nothing valid is lost;
 *  - the next repair, fault gone, succeeds, and the store then replays
 *    without a warning.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { installFsHook, setFsHook, systemError, type FsCall } from '../helpers/crash-fs-hook.js';
import { STORES_NOW } from '../helpers/fixture-now.js';

// The hook must be in place before the library loads (see crash-fs-hook.ts).
const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'sj-repair-fault-')));
installFsHook(root);
const { repairStore, SessionJournalError, ErrorCodes } = await import('../../src/index.js');
const { freshReplay } = await import('../helpers/compaction-helpers.js');
const { copyFixtureTo } = await import('../helpers/fixture-store.js');
test.after.always(() => fs.rmSync(root, { recursive: true, force: true }));

type Code = 'ENOSPC' | 'EIO' | 'EACCES';
const WRITES = new Set(['writeSync', 'fsyncSync', 'fdatasyncSync', 'fdatasync', 'ftruncateSync']);
const CREATES = new Set(['openSync', 'mkdirSync', 'renameSync', 'utimesSync']);
const PERMS = new Set(['openSync', 'mkdirSync', 'renameSync', 'unlinkSync', 'rmdirSync', 'readdirSync', 'lstatSync', 'statSync', 'utimesSync']);
function codesFor(name: string): Code[] {
  const out: Code[] = ['EIO'];
  if (WRITES.has(name) || CREATES.has(name)) out.push('ENOSPC');
  if (PERMS.has(name)) out.push('EACCES');
  return out;
}
/** Best-effort calls: closing a descriptor already read or fsynced, listings for cleanup, lock mtime updates and releases. */
const TOLERABLE = new Set(['closeSync', 'close', 'lstatSync', 'statSync', 'readdirSync', 'utimes', 'utimesSync', 'rmdir', 'rmdirSync']);
const HANG_MS = 3000;
/** The quarantine's names carry the repair's time: the fixture's documented now, STORES_NOW.repair. */
const options = (dir: string) => ({ dir, lockTimeoutMs: 300, now: () => STORES_NOW.repair });

const copyFixture = (to: string): string => copyFixtureTo('stores', 'repair-garbage', to);

const replayOf = async (dir: string) => {
  const warnings: string[] = [];
  const sessions = JSON.stringify(await freshReplay(dir, (w) => warnings.push(w.code)));
  return { sessions, warnings };
};

type Outcome = { kind: 'resolved' } | { kind: 'rejected'; err: unknown } | { kind: 'hung' };

async function attempt(dir: string): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<Outcome>((resolve) => (timer = setTimeout(() => resolve({ kind: 'hung' }), HANG_MS)));
  try {
    return await Promise.race([
      repairStore(options(dir)).then(
        (): Outcome => ({ kind: 'resolved' }),
        (err: unknown): Outcome => ({ kind: 'rejected', err }),
      ),
      hang,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

test.serial('a one-shot ENOSPC, EIO or EACCES at each file-system call of a repair: a coded error, nothing valid lost, the next repair succeeds', async (t) => {
  const seed = path.join(root, 'seed');
  copyFixture(seed);
  const before = await replayOf(seed);
  t.true(before.warnings.length > 0, 'the fixture is damaged');

  const countDir = path.join(root, 'count');
  copyFixture(countDir);
  const calls: FsCall[] = [];
  setFsHook((c) => {
    calls.push({ ...c, target: path.relative(countDir, c.target) || '.' });
    return undefined;
  });
  let counted;
  try {
    counted = await repairStore(options(countDir));
  } finally {
    setFsHook(undefined);
  }
  t.is(counted.status, 'repaired');
  t.not(counted.rotated, null, 'the live segment was rotated first');
  for (const name of ['openSync', 'readSync', 'writeSync', 'fsyncSync', 'renameSync', 'mkdirSync']) t.true(calls.some((c) => c.name === name), `${name} is covered`);
  t.true(calls.some((c) => c.target.startsWith('quarantine')), 'quarantine writes are covered');

  const problems: string[] = [];
  const tolerated = new Set<string>();
  let runs = 0;
  for (const call of calls) {
    for (const code of codesFor(call.name)) {
      runs++;
      const dir = path.join(root, `fault-${call.n}-${code}`);
      copyFixture(dir);
      let failed: FsCall | undefined;
      setFsHook((c) => {
        if (c.n !== call.n) return undefined;
        failed = { ...c, target: path.relative(dir, c.target) || '.' };
        return systemError(code, c.name, c.target);
      });
      let outcome: Outcome;
      try {
        outcome = await attempt(dir);
      } finally {
        setFsHook(undefined);
      }
      const at = failed ?? call;
      const label = `${code} at call ${at.n} ${at.name} ${at.target}`;
      const lockRelease = (at.name === 'rmdir' || at.name === 'rmdirSync') && /\.lock$/.test(at.target);
      if (!failed) problems.push(`${label}: the fault was never injected (the calls differ from the counting run)`);
      if (outcome.kind === 'hung') problems.push(`${label}: repairStore neither resolved nor rejected within ${HANG_MS} ms`);
      else if (outcome.kind === 'resolved') {
        tolerated.add(`${at.name} ${at.target}`);
        if (!TOLERABLE.has(at.name)) problems.push(`${label}: repairStore resolved although the call failed`);
      } else {
        const err = outcome.err as { code?: unknown; cause?: { code?: unknown }; message?: string };
        if (!(outcome.err instanceof SessionJournalError)) problems.push(`${label}: rejected with a ${(outcome.err as Error)?.constructor?.name} (code ${String(err.code)}), not a SessionJournalError: ${err.message}`);
        else if (err.code !== ErrorCodes.IO_ERROR && !(lockRelease && (err.code === ErrorCodes.LOCK_COMPROMISED || err.code === ErrorCodes.LOCK_TIMEOUT))) problems.push(`${label}: rejected with code ${String(err.code)}, expected IO_ERROR: ${err.message}`);
        else if (err.code === ErrorCodes.IO_ERROR && err.cause?.code !== code) problems.push(`${label}: IO_ERROR whose cause.code is ${String(err.cause?.code)}: ${err.message}`);
      }
      for (const lock of ['compact.lock', 'journal.lock']) {
        if (!fs.existsSync(path.join(dir, lock))) continue;
        // A lock whose removal failed stays until it goes stale: simulate the takeover.
        if (!(lockRelease && at.target === lock) && outcome.kind !== 'hung') problems.push(`${label}: ${lock} left behind`);
        fs.rmSync(path.join(dir, lock), { recursive: true, force: true });
      }
      const after = await replayOf(dir);
      if (after.sessions !== before.sessions) problems.push(`${label}: the sessions after the failure differ from those before the repair`);
      try {
        await repairStore(options(dir));
        const repaired = await replayOf(dir);
        if (repaired.sessions !== before.sessions) problems.push(`${label}: after the next repair the sessions differ`);
        if (repaired.warnings.length > 0) problems.push(`${label}: after the next repair the replay still warns: ${repaired.warnings.join(', ')}`);
      } catch (err) {
        problems.push(`${label}: the next repair, fault gone, failed: ${(err as { code?: string }).code ?? ''} ${(err as Error).message}`);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  t.log(`${runs} injected faults over ${calls.length} calls; failures tolerated (repair still succeeded) at: ${[...tolerated].join(', ') || 'none'}`);
  t.deepEqual(problems, []);
});
