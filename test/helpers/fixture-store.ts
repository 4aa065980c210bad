import fs from 'node:fs';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { fixturePath, tempStoreDir } from './temp-store.js';

/**
 * Copies fixtures/<kind>/<name>/ to `to`, directories 0700 and files 0600 as
 * the store requires (git keeps neither mode). The committed fixture itself
 * is never opened or modified.
 */
export function copyFixtureTo(kind: 'journals' | 'stores', name: string, to: string): string {
  const source = fixturePath(kind, name);
  if (!fs.existsSync(source)) throw new Error(`no fixture ${source}`);
  fs.cpSync(source, to, { recursive: true });
  const restrict = (p: string): void => {
    if (!fs.lstatSync(p).isDirectory()) return fs.chmodSync(p, 0o600);
    fs.chmodSync(p, 0o700);
    for (const n of fs.readdirSync(p)) restrict(path.join(p, n));
  };
  restrict(to);
  return to;
}

/** The same into a fresh private temp directory; returns the store path. */
export function copyFixtureStore(t: ExecutionContext, name: string, kind: 'journals' | 'stores' = 'journals'): string {
  return copyFixtureTo(kind, name, tempStoreDir(t));
}

/** Byte offset at which 1-based line `line` of `file` starts (counting LF bytes only). */
export function lineStart(file: string, line: number): number {
  const bytes = fs.readFileSync(file);
  let offset = 0;
  for (let n = 1; n < line; n++) {
    const nl = bytes.indexOf(0x0a, offset);
    if (nl === -1) throw new Error(`${file} has fewer than ${line} lines`);
    offset = nl + 1;
  }
  return offset;
}
