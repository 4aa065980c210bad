/**
 * Modules loaded on first use rather than at import. A short-lived process
 * (a hook that opens a store, reads one entry and exits) pays for every
 * module its import graph names, before it does anything: node:crypto,
 * node:zlib and node:child_process cost milliseconds each, and a CommonJS
 * package imported from ESM costs more than ten (the loader, package.json
 * lookups, the export lexer). Loaded here, each is paid for only by the
 * process that hashes, reads a gzipped snapshot, spawns a compactor or
 * writes a record.
 *
 * Builtins come from process.getBuiltinModule (Node 20.16+), which is
 * synchronous, so synchronous callers (openSync, flushSync at exit) can use
 * them; CommonJS packages through a require made once for this module.
 *
 * The modules a store's open loads (the file backend, the engine, the
 * automatic compactor) take even their cheap builtins (node:fs, node:path,
 * node:os) from process.getBuiltinModule rather than an ES import: an ES
 * module's namespace of node:fs reads every export, and its ReadStream
 * getters load all of Node's streams, about 4 ms of a cold start
 * (test/cold/cold-open.test.ts checks that nothing loads them).
 */

/** As fast-json-stable-stringify's own types say; like JSON.stringify it gives undefined for undefined (canonicalPayload checks). */
type StableStringify = (value: unknown) => string;
type ProperLockfile = typeof import('proper-lockfile');

let require: NodeJS.Require | undefined;
let stableStringifyFn: StableStringify | undefined;

const requireHere = (id: string): unknown => (require ??= process.getBuiltinModule('node:module').createRequire(import.meta.url))(id);

export const crypto = (): typeof import('node:crypto') => process.getBuiltinModule('node:crypto');
export const zlib = (): typeof import('node:zlib') => process.getBuiltinModule('node:zlib');
export const childProcess = (): typeof import('node:child_process') => process.getBuiltinModule('node:child_process');

/** fast-json-stable-stringify: JSON with sorted keys (the journal's canonical form), loaded at its first use. */
export function stableStringify(value: unknown): string {
  stableStringifyFn ??= requireHere('fast-json-stable-stringify') as StableStringify;
  return stableStringifyFn(value);
}

/** proper-lockfile, for the compaction lock (compaction-lock.ts): only a process that compacts loads it. */
export const properLockfile = (): ProperLockfile => requireHere('proper-lockfile') as ProperLockfile;
