/**
 * One short-lived process of bench/kv-processes.ts, the KeyValueStore side:
 * what a hook fork does with session-journal.
 *
 *   node build/bench/kv-hook-journal.js <storeDir> <key> [index|kv-module]
 *
 * `index` (default) imports the package entry, build/src/index.js, as a hook
 * installed from npm must today. `kv-module` imports only
 * build/src/kv/key-value-store.js, which the package does not export: it
 * shows what the kv path itself costs without loading the whole library.
 */
const [dir, key, entry = 'index'] = process.argv.slice(2);
if (!dir || !key || (entry !== 'index' && entry !== 'kv-module')) throw new Error('usage: kv-hook-journal <storeDir> <key> [index|kv-module]');
const { KeyValueStore } = (await (entry === 'index' ? import('../src/index.js') : import('../src/kv/key-value-store.js'))) as typeof import('../src/index.js');
const cache = KeyValueStore.openSync({ dir, maxEntries: 1000, ttlMs: 7 * 24 * 60 * 60 * 1000 });
cache.set(key, `session-of-${key}`);
cache.closeSync(); // flushes: durable (fsynced) when it returns

export {};
