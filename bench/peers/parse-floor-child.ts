/**
 * The floor of a journal open, for workloads D and E's small case (not a
 * benchmark by itself): the least any replay of a journal must do, in a
 * cold process. It reads the
 * store's segments and JSON.parses each line, and does nothing else: no
 * envelope check, no framing, no reducer. Prints {openMs} like open-child.
 *
 *   node build/bench/peers/parse-floor-child.js <storeDir>
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

const dir = process.argv[2];
if (!dir) throw new Error('usage: parse-floor-child <storeDir>');
const t0 = performance.now();
let lines = 0;
for (const name of fs.readdirSync(dir).filter((f) => /^journal-\d+\.ndjson$/.test(f)).sort()) {
  for (const line of fs.readFileSync(path.join(dir, name), 'utf8').split('\n')) {
    if (line.length === 0) continue;
    JSON.parse(line);
    lines++;
  }
}
process.stdout.write(`${JSON.stringify({ openMs: performance.now() - t0, lines })}\n`);
