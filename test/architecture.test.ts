/**
 * The allowed import directions between the folders of src/, as the rules
 * table of docs/ARCHITECTURE.md writes them (helpers/import-graph.ts reads
 * it: the doc is the only copy of the rules). Every relative import of every
 * file in src/ is checked; a breach fails with the file, the line and the
 * import. The doc's known exceptions are tolerated, and each must still
 * occur, so that a fixed one is removed from the doc.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { SRC, allowedGraph, covers, describeEdge, findCycle, importEdges, parseExceptions, parseRules, readArchitecture, ruleOf, sourceFiles, violations, type ImportEdge } from './helpers/import-graph.js';

const { rules, exceptions } = readArchitecture();
const edges = importEdges();
const isException = (e: ImportEdge) => exceptions.some((x) => x.file === e.from && x.imports.includes(e.to));

test('every file in src/ belongs to a row of the rules table', (t) => {
  const homeless = sourceFiles().filter((f) => ruleOf(rules, f) === undefined);
  t.deepEqual(homeless, [], `no row of docs/ARCHITECTURE.md covers: ${homeless.map((f) => `src/${f}`).join(', ')} (add its folder to the rules table)`);
});

test('every relative import in src/ names a file that exists', (t) => {
  const dangling = edges.filter((e) => !fs.existsSync(path.join(SRC, e.to)));
  t.deepEqual(dangling.map(describeEdge), []);
});

test('no import in src/ breaks the allowed directions of docs/ARCHITECTURE.md (except its known exceptions)', (t) => {
  const broken = violations(rules, edges).filter((e) => !isException(e));
  const explain = (e: ImportEdge) => {
    const from = ruleOf(rules, e.from)!;
    return `${describeEdge(e)}: ${from.paths.join(', ')} may import ${from.allow.join(', ') || 'nothing'}${from.deny.length ? ` but not ${from.deny.join(', ')}` : ''}`;
  };
  t.deepEqual(broken.map(explain), [], 'imports that break docs/ARCHITECTURE.md');
});

test('every known exception of docs/ARCHITECTURE.md still occurs (remove the row of a fixed one)', (t) => {
  t.plan(exceptions.reduce((n, x) => n + 2 * x.imports.length, 0) || 1);
  if (exceptions.length === 0) t.pass('no known exceptions');
  for (const x of exceptions) {
    for (const to of x.imports) {
      const edge = edges.find((e) => e.from === x.file && e.to === to);
      t.truthy(edge, `src/${x.file} no longer imports src/${to}: remove it from the known exceptions`);
      if (edge) t.true(violations(rules, [edge]).length === 1, `src/${x.file} -> src/${to} is allowed by the rules: it is no exception`);
    }
  }
});

test('the allowed directions have no cycle, and nothing may import cli/ or an entry (index.ts; stores.ts only index.ts, which re-exports it)', (t) => {
  t.is(findCycle(allowedGraph(rules)), undefined);
  for (const rule of rules) {
    const self = (p: string) => rule.paths.includes(p);
    if (!self('cli/')) t.false(rule.allow.some((p) => covers(p, 'cli/main.ts')) && !rule.deny.some((p) => covers(p, 'cli/main.ts')), `${rule.paths.join(', ')} may import cli/`);
    for (const entry of ['index.ts', 'stores.ts']) {
      const reExports = entry === 'stores.ts' && self('index.ts');
      if (!self(entry) && !self('cli/') && !reExports) t.false(rule.allow.some((p) => covers(p, entry)) && !rule.deny.some((p) => covers(p, entry)), `${rule.paths.join(', ')} may import ${entry}`);
    }
  }
});

test('the checker itself: a breach is found and named, a denied path overrides an allowed folder, a cycle is found', (t) => {
  const doc = [
    '<!-- rules:begin -->',
    '| Folder | Holds | May import |',
    '| --- | --- | --- |',
    '| `base.ts` | b | — |',
    '| `low/` | l | `base.ts` |',
    '| `mid/` | m | `base.ts`, `low/` not `low/secret.ts` |',
    '| `top/` | t | `*` |',
    '<!-- rules:end -->',
    '<!-- exceptions:begin -->',
    '| File | Imports | Why |',
    '| --- | --- | --- |',
    '| `low/a.ts` | `mid/b.ts`, `mid/c.ts` | because |',
    '<!-- exceptions:end -->',
  ].join('\n');
  const r = parseRules(doc);
  t.deepEqual(r[2], { paths: ['mid/'], allow: ['base.ts', 'low/'], deny: ['low/secret.ts'] });
  t.deepEqual(parseExceptions(doc), [{ file: 'low/a.ts', imports: ['mid/b.ts', 'mid/c.ts'], why: 'because' }]);
  const edge = (from: string, to: string): ImportEdge => ({ from, to, spec: `../${to.replace(/\.ts$/, '.js')}`, line: 3 });
  const found = violations(r, [edge('mid/x.ts', 'low/y.ts'), edge('mid/x.ts', 'low/secret.ts'), edge('low/y.ts', 'mid/x.ts'), edge('low/y.ts', 'low/z.ts'), edge('top/t.ts', 'mid/x.ts'), edge('mid/x.ts', 'top/t.ts')]);
  t.deepEqual(found.map(describeEdge), [
    "src/mid/x.ts:3 imports '../low/secret.js' (src/low/secret.ts)",
    "src/low/y.ts:3 imports '../mid/x.js' (src/mid/x.ts)",
    "src/mid/x.ts:3 imports '../top/t.js' (src/top/t.ts)",
  ]);
  t.is(findCycle(allowedGraph(r)), undefined);
  const cyclic = parseRules(doc.replace('| `low/` | l | `base.ts` |', '| `low/` | l | `base.ts`, `mid/` |'));
  t.deepEqual(findCycle(allowedGraph(cyclic)), ['low/', 'mid/', 'low/']);
});
