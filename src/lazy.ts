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
 */
import { createRequire } from 'node:module';

type StableStringify = (value: unknown) => string | undefined;

let require: NodeJS.Require | undefined;
let stableStringifyFn: StableStringify | undefined;

export const crypto = (): typeof import('node:crypto') => process.getBuiltinModule('node:crypto');
export const zlib = (): typeof import('node:zlib') => process.getBuiltinModule('node:zlib');
export const childProcess = (): typeof import('node:child_process') => process.getBuiltinModule('node:child_process');

/** fast-json-stable-stringify: JSON with sorted keys (the journal's canonical form), loaded at its first use. */
export function stableStringify(value: unknown): string | undefined {
  if (!stableStringifyFn) {
    require ??= createRequire(import.meta.url);
    stableStringifyFn = require('fast-json-stable-stringify') as StableStringify;
  }
  return stableStringifyFn(value);
}
