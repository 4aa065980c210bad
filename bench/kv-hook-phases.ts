/**
 * Where a KeyValueStore fork's time goes (bench/kv-processes.ts, the
 * "floor" lines): not a benchmark by itself.
 *
 *   node build/bench/kv-hook-phases.js <storeDir> <key>
 *
 * Times, in one fresh process, the import of `session-journal/stores`, then
 * openSync + set + closeSync on the store (cold: every function runs for the
 * first time; neither node:crypto nor a CommonJS package loads, see
 * test/cold/cold-open.test.ts), then the same three calls again on the same store with
 * another key (warm: the code is compiled and loaded). Prints
 * {importMs, cold: {open, set, close}, warm: {open, set, close}}. The
 * difference between cold and warm is what a short-lived process pays for
 * running code once, whatever the store does.
 */
const [dir, key] = process.argv.slice(2);
if (!dir || !key) throw new Error('usage: kv-hook-phases <storeDir> <key>');
const t0 = performance.now();
const bundle = new URL('../dist/stores.js', import.meta.url).href; // a variable: tsc checks nothing about the bundle's path
const { KeyValueStore } = (await import(bundle)) as typeof import('../src/stores.js');
const importMs = performance.now() - t0;

function once(k: string): { open: number; set: number; close: number } {
  const a = performance.now();
  const cache = KeyValueStore.openSync({ dir: dir!, maxEntries: 1000, ttlMs: 7 * 24 * 60 * 60 * 1000 });
  const b = performance.now();
  cache.set(k, `session-of-${k}`);
  const c = performance.now();
  cache.closeSync();
  const d = performance.now();
  return { open: b - a, set: c - b, close: d - c };
}

const cold = once(key);
const warm = once(`${key}-again`);
process.stdout.write(`${JSON.stringify({ importMs, cold, warm })}\n`);

export {};
