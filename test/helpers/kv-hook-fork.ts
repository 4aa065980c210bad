/**
 * A hook's fork, as test/compaction/auto-compact-short-lived.test.ts needs
 * it: opens a KeyValueStore synchronously, sets one key, closes it
 * synchronously, and then exits at once or (--wait) stays until killed.
 * Everything it has to say is one JSON line per event on stdout:
 *
 *   {"type":"warning","code":C,"message":M}   each warning of the store
 *   {"type":"closed","claim":STATE|null}       after closeSync; the compaction claim's state then
 *
 * argv: DIR CLOCK_MS KEY VALUE_BYTES MIN_BYTES [--wait | --no-close]
 *
 * --no-close neither closes nor flushes: the set is written by the store's
 * exit hook (flushOnExit), and nothing is said.
 */
import fs from 'node:fs';
import path from 'node:path';
import { KeyValueStore } from '../../src/stores.js';

const [dir, clockMs, key, valueBytes, minBytes, mode] = process.argv.slice(2) as [string, string, string, string, string, string | undefined];
const send = (m: Record<string, unknown>) => process.stdout.write(JSON.stringify(m) + '\n');

const store = KeyValueStore.openSync({
  dir,
  clock: () => Number(clockMs),
  fsync: false,
  autoCompact: { minBytes: Number(minBytes), growthPercent: 100 },
  onWarning: (w) => send({ type: 'warning', code: w.code, message: w.message }),
});
store.set(key, 'v'.repeat(Number(valueBytes)));
if (mode === '--no-close') process.exit(0);
store.closeSync();
let claim: string | null = null;
try {
  claim = (JSON.parse(fs.readFileSync(path.join(dir, 'compact.claim'), 'utf8')) as { state: string }).state;
} catch {
  // no claim
}
send({ type: 'closed', claim });
if (mode === '--wait') setInterval(() => undefined, 60_000);
