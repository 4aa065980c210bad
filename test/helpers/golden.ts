import fs from 'node:fs';
import path from 'node:path';
import type { ExecutionContext } from 'ava';

/**
 * Compares `actual` with the JSON golden file `file` (UPDATE_GOLDEN=1
 * rewrites it first). The file must exist: a missing golden is a failure,
 * not a pass.
 */
export function matchesGoldenJson(t: ExecutionContext, file: string, actual: unknown): void {
  const text = `${JSON.stringify(actual, null, 2)}\n`;
  if (process.env.UPDATE_GOLDEN === '1') {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
  }
  t.true(fs.existsSync(file), `golden file ${file} (UPDATE_GOLDEN=1 writes it)`);
  t.deepEqual(JSON.parse(text), JSON.parse(fs.readFileSync(file, 'utf8')), `matches ${path.basename(file)}`);
}
