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
 * (fast-json-stable-stringify, needed by every write, is inlined in the
 * bundle instead: engine/canonical-json.ts.)
 *
 * The modules a store's open loads (the file backend, the engine, the
 * automatic compactor) take even their cheap builtins (node:fs, node:path,
 * node:os) from process.getBuiltinModule rather than an ES import: an ES
 * module's namespace of node:fs reads every export, and its ReadStream
 * getters load all of Node's streams, about 4 ms of a cold start
 * (test/cold/cold-open.test.ts checks that nothing loads them).
 */

type ProperLockfile = typeof import('proper-lockfile');

let require: NodeJS.Require | undefined;

const requireHere = (id: string): unknown => (require ??= process.getBuiltinModule('node:module').createRequire(import.meta.url))(id);

let cryptoWanted = false;
export const crypto = (): typeof import('node:crypto') => {
  cryptoWanted = true;
  return process.getBuiltinModule('node:crypto');
};
/** Whether this process has asked for node:crypto already, so using it again costs nothing (engine/record-digest.ts). */
export const cryptoLoaded = (): boolean => cryptoWanted;
export const zlib = (): typeof import('node:zlib') => process.getBuiltinModule('node:zlib');
export const childProcess = (): typeof import('node:child_process') => process.getBuiltinModule('node:child_process');

/** proper-lockfile, for the compaction lock (compaction-lock.ts): only a process that compacts loads it. */
export const properLockfile = (): ProperLockfile => requireHere('proper-lockfile') as ProperLockfile;
