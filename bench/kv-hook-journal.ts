/**
 * One short-lived process of bench/kv-processes.ts, the KeyValueStore side:
 * what a hook fork does with session-journal.
 *
 *   node build/bench/kv-hook-journal.js <storeDir> <key> [index|kv-module]
 *
 * `index` (default) imports the package entry, the bundle build/dist/index.js,
 * as a hook installed from npm does. `kv-module` imports only
 * build/src/kv/key-value-store.js and its module graph, unbundled: it shows
 * what loading modules one by one costs.
 */
const [dir, key, entry = 'index'] = process.argv.slice(2);
if (!dir || !key || (entry !== 'index' && entry !== 'kv-module')) throw new Error('usage: kv-hook-journal <storeDir> <key> [index|kv-module]');
const packageEntry = new URL('../dist/index.js', import.meta.url).href; // a variable: tsc checks nothing about the bundle's path
const { KeyValueStore } = (await (entry === 'index' ? import(packageEntry) : import('../src/kv/key-value-store.js'))) as typeof import('../src/index.js');
const cache = KeyValueStore.openSync({ dir, maxEntries: 1000, ttlMs: 7 * 24 * 60 * 60 * 1000 });
cache.set(key, `session-of-${key}`);
cache.closeSync(); // flushes: durable (fsynced) when it returns

export {};
