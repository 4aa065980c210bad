/**
 * One short-lived process of bench/kv-processes.ts, the baseline: the genie
 * hook's flat-file cache pattern. loadDiskCache reads the whole JSON file
 * into a Map at start; persistDiskCache writes the whole Map to a temporary
 * file and renames it over the cache after the change. The temporary name is
 * unique per process (`<file>.<pid>.tmp`, as genie does), so no rename fails;
 * entries are lost only by the last-writer-wins race. No fsync (genie has
 * none): the baseline is the cheaper side on durability.
 *
 *   node build/bench/kv-hook-genie.js <cacheFile> <key>
 */
import fs from 'node:fs';

function loadDiskCache(file: string): Map<string, string> {
  try {
    return new Map(Object.entries(JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, string>));
  } catch {
    return new Map(); // missing or unreadable: start empty, as genie does
  }
}

function persistDiskCache(file: string, cache: Map<string, string>): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(Object.fromEntries(cache)));
  fs.renameSync(tmp, file);
}

const [file, key] = process.argv.slice(2);
if (!file || !key) throw new Error('usage: kv-hook-genie <cacheFile> <key>');
const cache = loadDiskCache(file);
cache.set(key, `session-of-${key}`);
persistDiskCache(file, cache);
