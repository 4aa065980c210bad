/**
 * The import graph of src/ and the allowed directions between its folders,
 * read from the one place they are written: the tables of
 * docs/ARCHITECTURE.md (between its `rules` and `exceptions` markers). Used
 * by test/architecture.test.ts, which fails on an import that breaks them,
 * and by print-import-graph.ts, which prints the graph between folders.
 *
 * Imports are found by TypeScript's own pre-processor (import and export
 * declarations, `import type`, dynamic `import()`), so a specifier in a
 * comment or a string is not taken for one. Only relative specifiers are
 * edges; packages and node: builtins are not part of the tree.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** The repository root (this file runs from build/test/helpers/). */
export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const SRC = path.join(REPO, 'src');
export const ARCHITECTURE_DOC = path.join(REPO, 'docs', 'ARCHITECTURE.md');

/** One import of one source file: `from` and `to` relative to src/ (`to` as the .ts file it names). */
export interface ImportEdge {
  from: string;
  to: string;
  /** The specifier as written. */
  spec: string;
  /** 1-based line of the specifier in `from`. */
  line: number;
}

/** Every .ts file under src/, relative to src/, with forward slashes, sorted. */
export function sourceFiles(src = SRC): string[] {
  const walk = (dir: string): string[] =>
    fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
      const full = path.join(dir, e.name);
      return e.isDirectory() ? walk(full) : e.name.endsWith('.ts') ? [path.relative(src, full).split(path.sep).join('/')] : [];
    });
  return walk(src).sort();
}

/** The relative imports of every file under src/. */
export function importEdges(src = SRC): ImportEdge[] {
  const edges: ImportEdge[] = [];
  for (const from of sourceFiles(src)) {
    const text = fs.readFileSync(path.join(src, from), 'utf8');
    for (const imported of ts.preProcessFile(text, true, true).importedFiles) {
      const spec = imported.fileName;
      if (!spec.startsWith('./') && !spec.startsWith('../')) continue;
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec)).replace(/\.js$/, '.ts');
      const line = text.slice(0, imported.pos).split('\n').length;
      edges.push({ from, to: target, spec, line });
    }
  }
  return edges;
}

/** One row of the rules table: the paths it covers, and what they may import. */
export interface Rule {
  /** As written in the Folder column: `engine/` (a folder) or `errors.ts` (a file), relative to src/. */
  paths: string[];
  /** Paths (or `*`, everything) these files may import. */
  allow: string[];
  /** Paths inside `allow` they still may not import (written after "not"). */
  deny: string[];
}

/** One known breach that is left for now, with the reason the doc gives. */
export interface Exception {
  file: string;
  imports: string[];
  why: string;
}

/** The backticked tokens of a table cell, split at the word "not" into allowed and denied. */
function cellPaths(cell: string): { allow: string[]; deny: string[] } {
  const [allowPart = '', ...notParts] = cell.split(/\bnot\b/);
  const ticks = (s: string) => [...s.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
  return { allow: ticks(allowPart), deny: notParts.flatMap(ticks) };
}

/** The rows of the Markdown table between the `<!-- NAME:begin ... -->` and `<!-- NAME:end -->` markers, as cells, header and separator dropped. */
export function tableRows(markdown: string, name: string): string[][] {
  const begin = markdown.indexOf(`<!-- ${name}:begin`);
  const end = markdown.indexOf(`<!-- ${name}:end`);
  if (begin === -1 || end === -1 || end < begin) throw new Error(`docs/ARCHITECTURE.md has no <!-- ${name}:begin --> ... <!-- ${name}:end --> table`);
  return markdown
    .slice(begin, end)
    .split('\n')
    .filter((l) => l.trimStart().startsWith('|'))
    .slice(2)
    .map((l) =>
      l
        .trim()
        .replace(/^\||\|$/g, '')
        .split('|')
        .map((c) => c.trim()),
    );
}

/** The rules: Folder, Holds, May import. */
export function parseRules(markdown: string): Rule[] {
  return tableRows(markdown, 'rules').map((cells) => {
    const paths = cellPaths(cells[0] ?? '').allow;
    const { allow, deny } = cellPaths(cells[2] ?? '');
    if (paths.length === 0) throw new Error(`a rules row names no folder: | ${cells.join(' | ')} |`);
    return { paths, allow, deny };
  });
}

/** The exceptions: File, Imports, Why it is left. */
export function parseExceptions(markdown: string): Exception[] {
  return tableRows(markdown, 'exceptions').map((cells) => ({ file: cellPaths(cells[0] ?? '').allow[0] ?? '', imports: cellPaths(cells[1] ?? '').allow, why: cells[2] ?? '' }));
}

/** True when `pattern` (a folder ending in /, a file, or `*`) covers `file`. */
export function covers(pattern: string, file: string): boolean {
  return pattern === '*' || (pattern.endsWith('/') ? file.startsWith(pattern) : file === pattern);
}

/** The row `file` belongs to: the one with the longest path covering it. */
export function ruleOf(rules: readonly Rule[], file: string): Rule | undefined {
  let best: { rule: Rule; length: number } | undefined;
  for (const rule of rules) {
    for (const p of rule.paths) if (p !== '*' && covers(p, file) && (!best || p.length > best.length)) best = { rule, length: p.length };
  }
  return best?.rule;
}

/** True when a file of `rule` may import `target` (a file of `targetRule`): the same row, or allowed and not denied. */
export function mayImport(rule: Rule, targetRule: Rule | undefined, target: string): boolean {
  if (rule === targetRule) return true;
  return rule.allow.some((p) => covers(p, target)) && !rule.deny.some((p) => covers(p, target));
}

/** The edges that break the rules, and the files no row covers. */
export function violations(rules: readonly Rule[], edges: readonly ImportEdge[]): ImportEdge[] {
  return edges.filter((e) => {
    const rule = ruleOf(rules, e.from);
    return rule !== undefined && !mayImport(rule, ruleOf(rules, e.to), e.to);
  });
}

/** The folder (or base file) a source file is shown under: the path of its row that covers it. */
export function folderOf(rules: readonly Rule[], file: string): string {
  const rule = ruleOf(rules, file);
  return rule?.paths.find((p) => covers(p, file)) ?? `(no rule) ${file}`;
}

/**
 * The directions the rules allow, between rows (each named by its first
 * path): row A points to row B when A may import some path of B. A file
 * listed by `paths` stands for itself; a folder for any file in it.
 */
export function allowedGraph(rules: readonly Rule[]): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const a of rules) {
    const to = new Set<string>();
    for (const b of rules) {
      if (a === b) continue;
      const probe = (p: string) => (p.endsWith('/') ? `${p}x.ts` : p);
      if (b.paths.some((p) => mayImport(a, b, probe(p)))) to.add(b.paths[0]!);
    }
    graph.set(a.paths[0]!, to);
  }
  return graph;
}

/** One cycle of `graph`, as the nodes along it (first repeated at the end), or undefined. */
export function findCycle(graph: ReadonlyMap<string, ReadonlySet<string>>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): string[] | undefined => {
    if (state.get(node) === 'done') return undefined;
    if (state.get(node) === 'open') return [...stack.slice(stack.indexOf(node)), node];
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(node, 'done');
    return undefined;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return undefined;
}

/** The rules and exceptions as docs/ARCHITECTURE.md writes them. */
export function readArchitecture(doc = ARCHITECTURE_DOC): { rules: Rule[]; exceptions: Exception[] } {
  const markdown = fs.readFileSync(doc, 'utf8');
  return { rules: parseRules(markdown), exceptions: parseExceptions(markdown) };
}

/** `from:line imports spec` for a message. */
export const describeEdge = (e: ImportEdge): string => `src/${e.from}:${e.line} imports '${e.spec}' (src/${e.to})`;
