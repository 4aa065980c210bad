/**
 * Prints the imports between the folders of src/ (as the rules table of
 * docs/ARCHITECTURE.md groups them), each with its number of imports, and
 * every import that breaks the rules, marked when the doc lists it as a
 * known exception. With -v, each import under its folder pair.
 *
 *   npm run build && node build/test/helpers/print-import-graph.js [-v]
 *
 * It reads the sources in src/, not the build, so it is current as soon as
 * a file is saved (the build is only to run it). Output goes to stdout; it
 * changes nothing.
 */
import { describeEdge, folderOf, importEdges, readArchitecture, violations, type ImportEdge } from './import-graph.js';

const verbose = process.argv.includes('-v');
const { rules, exceptions } = readArchitecture();
const edges = importEdges();
const between = new Map<string, ImportEdge[]>();
for (const e of edges) {
  const a = folderOf(rules, e.from);
  const b = folderOf(rules, e.to);
  if (a === b) continue;
  const key = `${a} -> ${b}`;
  between.set(key, [...(between.get(key) ?? []), e]);
}
const out: string[] = [];
for (const [key, list] of [...between].sort(([a], [b]) => a.localeCompare(b))) {
  out.push(`${key} (${list.length})`);
  if (verbose) for (const e of list) out.push(`    ${describeEdge(e)}`);
}
const known = (e: ImportEdge) => exceptions.some((x) => x.file === e.from && x.imports.includes(e.to));
const broken = violations(rules, edges);
out.push('', broken.length === 0 ? 'no import breaks the rules' : `${broken.length} imports break the rules:`);
for (const e of broken) out.push(`  ${describeEdge(e)}${known(e) ? '  [known exception, docs/ARCHITECTURE.md]' : ''}`);
process.stdout.write(out.join('\n') + '\n');
