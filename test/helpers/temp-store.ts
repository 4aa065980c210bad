import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import type { JournalWarning } from '../../src/index.js';

/** A fresh private directory for one test, removed when the test ends. Returns the store path inside it (not yet created). */
export function tempStoreDir(t: ExecutionContext): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sj-test-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  return path.join(root, 'store');
}

/** Collects warnings instead of printing them. */
export function collectWarnings(): { warnings: JournalWarning[]; onWarning: (w: JournalWarning) => void } {
  const warnings: JournalWarning[] = [];
  return { warnings, onWarning: (w) => warnings.push(w) };
}

/** Absolute path of a compiled test helper script (tests run from build/test). */
export function helperScript(name: string): string {
  return new URL(`./${name}`, import.meta.url).pathname;
}

/** Path of a file under the repository's fixtures/ directory. */
export function fixturePath(...parts: string[]): string {
  return path.join(new URL('../../../fixtures/', import.meta.url).pathname, ...parts);
}
