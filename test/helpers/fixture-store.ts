import fs from 'node:fs';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { fixturePath, tempStoreDir } from './temp-store.js';

/**
 * Copies fixtures/journals/<name>/ into a fresh private temp directory (mode
 * 0700: the store refuses group- or world-writable directories) and returns
 * the store path. The committed fixture itself is never opened or modified.
 */
export function copyFixtureStore(t: ExecutionContext, name: string): string {
  const source = fixturePath('journals', name);
  if (!fs.existsSync(source)) throw new Error(`no fixture ${source}`);
  const dir = tempStoreDir(t);
  fs.cpSync(source, dir, { recursive: true });
  fs.chmodSync(dir, 0o700);
  for (const name of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, name), 0o600);
  return dir;
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
