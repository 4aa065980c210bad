/**
 * One measured operation in a fresh process, so its peak RSS is its own
 * (compaction.ts starts it with the flags the `compact` command uses):
 *   node compaction-child.js replay DIR    -> {"ms", "maxRssBytes"}
 *   node compaction-child.js compact DIR   -> {"ms", "maxRssBytes", "snapshotBytes", "archive"}
 */
import fs from 'node:fs';
import path from 'node:path';
import { SessionStore, compactSessions } from '../src/index.js';

const [mode, dir, archive] = process.argv.slice(2);
const YEARS = 10 * 365 * 24 * 3600 * 1000;
const started = performance.now();
const out: Record<string, unknown> = {};
if (mode === 'replay') {
  const store = SessionStore.openSync({ dir: dir!, autoCompact: false, onWarning: () => undefined, ttlMs: YEARS, maxSessions: 1_000_000 });
  out.sessions = store.listSessions().length;
  store.closeSync();
} else {
  const result = await compactSessions({ dir: dir!, ttlMs: YEARS, maxSessions: 1_000_000, archive: { keep: archive !== 'no-archive' }, onWarning: () => undefined });
  out.snapshotBytes = fs.statSync(path.join(dir!, result.snapshot!)).size;
}
out.ms = performance.now() - started;
out.maxRssBytes = process.resourceUsage().maxRSS * 1024;
process.stdout.write(JSON.stringify(out) + '\n');
