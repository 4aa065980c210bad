/**
 * One short-lived process of bench/kv-processes.ts, the KeyValueStore side:
 * what a hook fork does with session-journal.
 *
 *   node build/bench/kv-hook-journal.js <storeDir> <key> [stores|index]
 *
 * `stores` (default) imports `session-journal/stores` (the bundle
 * build/dist/stores.js), the entry for short-lived processes; `index`
 * imports the main entry (build/dist/index.js), as a hook that imports
 * `session-journal` does. `import-only` imports `session-journal/stores`
 * and exits without touching the store: the floor of any fork that uses
 * the library at all.
 */
const ENTRIES = { stores: '../dist/stores.js', index: '../dist/index.js', 'import-only': '../dist/stores.js' } as const;
const [dir, key, entry = 'stores'] = process.argv.slice(2);
if (!dir || !key || !(entry in ENTRIES)) throw new Error('usage: kv-hook-journal <storeDir> <key> [stores|index|import-only]');
const bundle = new URL(ENTRIES[entry as keyof typeof ENTRIES], import.meta.url).href; // a variable: tsc checks nothing about the bundle's path
const { KeyValueStore } = (await import(bundle)) as typeof import('../src/stores.js');
if (entry !== 'import-only') {
  const cache = KeyValueStore.openSync({ dir, maxEntries: 1000, ttlMs: 7 * 24 * 60 * 60 * 1000 });
  cache.set(key, `session-of-${key}`);
  cache.closeSync(); // flushes: durable (fsynced) when it returns
}

export {};
