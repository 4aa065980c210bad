/**
 * The package as npm ships it: `npm pack` of the repository (with the build
 * the suite runs from), extracted into a temporary node_modules/ beside only
 * its declared dependencies, then used the ways a consumer uses it: an ES
 * module, a CommonJS script, a TypeScript project compiled to CommonJS, and
 * the README's API examples type-checked against the shipped declarations.
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { build } from 'esbuild';
import * as api from '../src/index.js';
import * as storesApi from '../src/stores.js';
import { SessionStore } from '../src/index.js';

const repo = new URL('../../', import.meta.url).pathname;
const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as {
  version: string;
  license: string;
  main: string;
  keywords: string[];
  repository: { type: string; url: string };
  bugs: { url: string };
  exports: Record<string, { types?: string; default?: string }>;
  bin: Record<string, string>;
  engines: { node: string };
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
};
const tsc = path.join(repo, 'node_modules', 'typescript', 'bin', 'tsc');

/**
 * `root/node_modules/` holds the extracted tarball as session-journal and a
 * link to each of its dependencies (nothing else: a runtime import of a
 * devDependency fails here); consumer projects are directories of `root`.
 */
let root = '';
let packed: string[] = [];

test.before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'sj-packed-'));
  // --ignore-scripts: prepack would build again; the suite runs from the build that is there.
  const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', root], {
    cwd: repo,
    encoding: 'utf8',
    env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false' },
  });
  const [result] = JSON.parse(out) as Array<{ filename: string; files: Array<{ path: string }> }>;
  packed = result!.files.map((f) => f.path);
  const target = path.join(root, 'node_modules', 'session-journal');
  fs.mkdirSync(target, { recursive: true });
  execFileSync('tar', ['-xzf', path.join(root, result!.filename), '-C', target, '--strip-components=1']);
  for (const dep of Object.keys(pkg.dependencies)) fs.symlinkSync(path.join(repo, 'node_modules', dep), path.join(root, 'node_modules', dep));
  // Only for the TypeScript consumers: the declarations use Node's types, as any Node project has them.
  fs.mkdirSync(path.join(root, 'node_modules', '@types'));
  fs.symlinkSync(path.join(repo, 'node_modules', '@types', 'node'), path.join(root, 'node_modules', '@types', 'node'));
});

test.after.always(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

/** A consumer project in `root`: its package.json (CommonJS unless `type` says module) and files. */
function consumer(name: string, type: 'module' | 'commonjs', files: Record<string, string>): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, private: true, type }));
  for (const [file, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, file), text);
  return dir;
}

/** Runs node with `args` in `dir` without blocking the other tests of this file (tsc takes seconds). */
function run(dir: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd: dir, encoding: 'utf8' }, (err, stdout, stderr) => {
      const status = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ status, stdout, stderr });
    });
  });
}

/** Opens a store, adds a turn, flushes and closes: what every consumer below runs. */
const USE_STORE = `
  const clock = Date.parse('2030-01-01T00:00:00Z');
  const store = SessionStore.openSync({ dir: process.argv[2], autoCompact: false, clock: () => clock });
  const id = store.createSession();
  store.addTurn(id, { prompt: 'from a consumer', response: 'stored', timestamp: new Date(clock) });
  await store.flush();
  await store.close();
  console.log(JSON.stringify({ id }));
`;

/** The turn USE_STORE wrote, read back by this process. */
async function turnsIn(dir: string, id: string): Promise<string[]> {
  // The consumers' clock: their session is not expired at it.
  const clock = Date.parse('2030-01-01T00:00:00Z');
  const store = SessionStore.openSync({ dir, autoCompact: false, clock: () => clock });
  try {
    return (store.getSession(id)?.turns ?? []).map((turn) => `${turn.prompt} -> ${turn.response}`);
  } finally {
    await store.close();
  }
}

test('an ES module consumer imports { SessionStore } from "session-journal" in the packed tarball', async (t) => {
  const dir = consumer('esm', 'module', {
    'use.mjs': `import { SessionStore, JournalEventStore, verifyStore, SessionJournalError, ErrorCodes } from 'session-journal';
      ${USE_STORE}
      console.log(JSON.stringify({ events: typeof JournalEventStore, verify: typeof verifyStore, error: typeof SessionJournalError, code: ErrorCodes.CLOSED }));`,
  });
  const store = path.join(dir, 'store');
  const out = await run(dir, ['use.mjs', store]);
  t.is(out.status, 0, out.stderr);
  t.is(out.stderr, '');
  const [written, kinds] = out.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>);
  t.deepEqual(kinds, { events: 'function', verify: 'function', error: 'function', code: 'CLOSED' });
  t.deepEqual(await turnsIn(store, written!.id!), ['from a consumer -> stored']);
});

test('a hook imports { KeyValueStore, SessionStore } from "session-journal/stores" in the packed tarball, and gets the very classes of the main entry', async (t) => {
  const dir = consumer('esm-stores', 'module', {
    'hook.mjs': `import { KeyValueStore, SessionStore, SessionJournalError, ErrorCodes } from 'session-journal/stores';
      import * as main from 'session-journal';
      const cache = KeyValueStore.openSync({ dir: process.argv[2] + '-kv' });
      cache.set('executor-1', 'session-1');
      cache.closeSync();
      ${USE_STORE}
      let code;
      try { cache.get('executor-1'); } catch (err) { code = err instanceof main.SessionJournalError && err instanceof SessionJournalError ? err.code : 'other'; }
      console.log(JSON.stringify({ sameStore: main.SessionStore === SessionStore, sameKv: main.KeyValueStore === KeyValueStore, code, closed: ErrorCodes.CLOSED }));`,
  });
  const store = path.join(dir, 'store');
  const out = await run(dir, ['hook.mjs', store]);
  t.is(out.status, 0, out.stderr);
  t.is(out.stderr, '');
  const [written, same] = out.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.deepEqual(same, { sameStore: true, sameKv: true, code: 'CLOSED', closed: 'CLOSED' }, 'one module instance behind both entries: an error of one is an instance of the other\'s class');
  t.deepEqual(await turnsIn(store, written!.id as string), ['from a consumer -> stored']);
  const cjs = consumer('cjs-stores', 'commonjs', { 'hook.cjs': `const { KeyValueStore } = require('session-journal/stores'); const kv = KeyValueStore.openSync({ dir: process.argv[2] + '-kv' }); console.log(JSON.stringify(kv.get('executor-1'))); kv.closeSync();` });
  const read = await run(cjs, ['hook.cjs', store]);
  t.is(read.status, 0, read.stderr);
  t.is(read.stdout.trim(), '"session-1"', 'require() of the stores entry reads what import wrote');
});

test('a CommonJS consumer: require("session-journal") opens a store, adds a turn, flushes and closes; import() gives the same module', async (t) => {
  const dir = consumer('cjs', 'commonjs', {
    'use.cjs': `const { SessionStore } = require('session-journal');
      (async () => {
        ${USE_STORE}
        const imported = await import('session-journal');
        console.log(JSON.stringify({ sameModule: imported.SessionStore === SessionStore, sameNamespace: imported === require('session-journal') }));
      })().catch((err) => { console.error(err); process.exit(1); });`,
  });
  const store = path.join(dir, 'store');
  const out = await run(dir, ['use.cjs', store]);
  t.is(out.status, 0, out.stderr);
  t.is(out.stderr, '', 'no warning: require(esm) of a package is not experimental on Node 20.19+');
  const [written, same] = out.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.deepEqual(same, { sameModule: true, sameNamespace: true }, 'one module instance: no dual-package state');
  t.deepEqual(await turnsIn(store, written!.id as string), ['from a consumer -> stored']);
});

test('a TypeScript project with module nodenext, compiled to CommonJS, type-checks against the shipped declarations and runs', async (t) => {
  const dir = consumer('ts-cjs', 'commonjs', {
    'tsconfig.json': JSON.stringify({
      compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, outDir: 'out', types: ['node'], skipLibCheck: false },
      files: ['use.ts'],
    }),
    'use.ts': `import { SessionStore, verifyStore, type SessionData, type VerifyReport } from 'session-journal';
      async function main(dir: string): Promise<void> {
        const clock = Date.parse('2030-01-01T00:00:00Z');
        const store = SessionStore.openSync({ dir, autoCompact: false, clock: () => clock });
        const id: string = store.createSession();
        store.addTurn(id, { prompt: 'from a consumer', response: 'stored', timestamp: new Date(clock) });
        const session: SessionData | undefined = store.getSession(id);
        await store.close();
        const report: VerifyReport = await verifyStore(dir);
        console.log(JSON.stringify({ id, ok: report.ok, turns: session?.turns.length }));
      }
      main(process.argv[2]!).catch((err: unknown) => { console.error(err); process.exit(1); });`,
  });
  const compiled = await run(dir, [tsc, '-p', dir]);
  t.is(compiled.status, 0, compiled.stdout + compiled.stderr);
  const js = fs.readFileSync(path.join(dir, 'out', 'use.js'), 'utf8');
  t.regex(js, /require\("session-journal"\)/, 'compiled to CommonJS');
  const store = path.join(dir, 'store');
  const out = await run(dir, ['out/use.js', store]);
  t.is(out.status, 0, out.stderr);
  const result = JSON.parse(out.stdout) as { id: string; ok: boolean; turns: number };
  t.deepEqual([result.ok, result.turns], [true, 1]);
  t.deepEqual(await turnsIn(store, result.id), ['from a consumer -> stored']);
});

/** The ```ts blocks of the README's "## API" section. */
function readmeApiExamples(): string[] {
  const readme = fs.readFileSync(path.join(repo, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## API\n');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end === -1 ? undefined : end);
  return [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

test("the README names every export, and every TypeScript example of its API section type-checks against the packed package", async (t) => {
  const readme = fs.readFileSync(path.join(repo, 'README.md'), 'utf8');
  t.deepEqual(
    Object.keys(api).filter((name) => !readme.includes(`\`${name}`)),
    [],
    'exports the README does not name',
  );
  const examples = readmeApiExamples();
  t.true(examples.length >= 8, `found ${examples.length} examples`);
  const files = Object.fromEntries(examples.map((text, i) => [`example-${i + 1}.ts`, `${text}\nexport {};\n`]));
  const dir = consumer('readme', 'module', {
    ...files,
    'tsconfig.json': JSON.stringify({
      compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, types: ['node'], skipLibCheck: true },
      files: Object.keys(files),
    }),
  });
  const checked = await run(dir, [tsc, '-p', dir]);
  t.is(checked.status, 0, checked.stdout + checked.stderr);
});

test('the tarball holds the build, its sources, LICENSE and the docs, and every source map resolves to a shipped file', (t) => {
  for (const file of ['LICENSE', 'README.md', 'CHANGELOG.md', 'package.json', 'docs/FORMAT.md', 'docs/OPERATIONS.md', 'docs/ARCHITECTURE.md', 'build/src/index.js', 'build/src/index.d.ts', 'src/index.ts', pkg.bin['session-journal']!.replace(/^\.\//, '')]) {
    t.true(packed.includes(file), `${file} is shipped`);
  }
  t.false(
    packed.some((f) => /^(build\/)?(test|bench|fixtures)\//.test(f)),
    'no tests, benchmarks or fixtures',
  );
  const maps = packed.filter((f) => f.endsWith('.map'));
  t.true(maps.length > 0);
  t.true(maps.some((f) => f.endsWith('.d.ts.map')), 'declaration maps: "go to definition" lands in the .ts source');
  const unresolved: string[] = [];
  for (const map of maps) {
    const { sources, sourceRoot, sourcesContent } = JSON.parse(fs.readFileSync(path.join(root, 'node_modules', 'session-journal', map), 'utf8')) as { sources: string[]; sourceRoot?: string; sourcesContent?: Array<string | null> };
    sources.forEach((source, i) => {
      // The bundle inlines exactly one dependency (engine/canonical-json.ts), its map carrying that file's text; any other package in a map was bundled by mistake.
      const bundled = /(?:^|\/)node_modules\/([^/]+)\//.exec(source)?.[1];
      if (bundled === 'fast-json-stable-stringify' && typeof sourcesContent?.[i] === 'string' && sourcesContent[i]!.length > 0) return;
      const shipped = path.posix.normalize(path.posix.join(path.posix.dirname(map), sourceRoot ?? '', source));
      if (!packed.includes(shipped)) unresolved.push(`${map} -> ${source}`);
    });
  }
  t.deepEqual(unresolved, []);
  t.regex(fs.readFileSync(path.join(root, 'node_modules', 'session-journal', 'LICENSE'), 'utf8'), /^MIT License\n\nCopyright \(c\) 2026 the session-journal contributors\n/);
});

test('package.json: exports for import and require with types, main, metadata, and no install scripts', (t) => {
  t.deepEqual(Object.keys(pkg.exports), ['.', './stores', './package.json']);
  for (const name of ['.', './stores']) {
    const e = pkg.exports[name]!;
    t.deepEqual(Object.keys(e), ['types', 'default'], `${name}: types first; default serves import and require alike`);
    t.true(fs.existsSync(path.join(repo, e.default!)), e.default);
    t.true(fs.existsSync(path.join(repo, e.types!)), e.types);
    t.true(packed.includes(e.default!.replace(/^\.\//, '')) && packed.includes(e.types!.replace(/^\.\//, '')), `${name} is shipped`);
  }
  const entry = pkg.exports['.']!;
  t.is(pkg.main, entry.default!, 'for tools that read main, not exports');
  // The main entry's declarations re-export the stores entry's whole (its list is written once), and those declare SessionStore.
  const mainTypes = fs.readFileSync(path.join(repo, entry.types!), 'utf8');
  t.regex(mainTypes, /^export \* from '\.\/stores\.js';$/m);
  const storesTypes = path.join(path.dirname(path.join(repo, entry.types!)), 'stores.d.ts');
  t.is(path.relative(repo, storesTypes), path.normalize(pkg.exports['./stores']!.types!), 'the file it names is the stores entry\'s types');
  t.regex(fs.readFileSync(storesTypes, 'utf8'), /export \{ SessionStore,/);
  t.is(pkg.engines.node, '>=20.19', 'the first Node 20 that require()s ES modules without a flag');
  t.is(pkg.license, 'MIT');
  t.regex(pkg.repository.url, /^git\+https:\/\/github\.com\/.+\.git$/);
  t.regex(pkg.bugs.url, /^https:\/\/github\.com\/.+\/issues$/);
  t.true(pkg.keywords.includes('mcp'));
  // npm runs these when the package is installed from a tarball or git, and warns about each (install-scripts).
  for (const script of ['preinstall', 'install', 'postinstall', 'prepare']) t.false(script in pkg.scripts, `no ${script} script`);
  t.is(pkg.scripts.prepack, 'npm run build', 'npm pack and npm publish still build');
});

/** The files importing `entry` loads before it runs (its static imports, followed), as esbuild reads them, with their text. */
async function staticGraph(entry: string): Promise<{ files: string[]; external: string[]; text: string }> {
  const { metafile } = await build({ entryPoints: [entry], bundle: true, write: false, metafile: true, packages: 'external', platform: 'node', format: 'esm', logLevel: 'silent' });
  const files: string[] = [];
  const external = new Set<string>();
  const visit = (file: string): void => {
    if (files.includes(file)) return;
    files.push(file);
    for (const i of metafile.inputs[file]!.imports) {
      if (i.kind !== 'import-statement') continue; // a dynamic import loads at first use
      if (i.external) external.add(i.path);
      else visit(i.path);
    }
  };
  visit(path.relative(process.cwd(), entry));
  return { files, external: [...external], text: files.map((f) => fs.readFileSync(f, 'utf8')).join('\n') };
}

test('the entries are bundles (build/dist/index.js and stores.js) that export what src/index.ts and src/stores.ts do, and share one copy of every class', async (t) => {
  t.is(pkg.exports['.']!.default, './build/dist/index.js');
  t.is(pkg.exports['./stores']!.default, './build/dist/stores.js');
  const main = (await import(path.join(repo, 'build/dist/index.js'))) as Record<string, unknown>;
  const stores = (await import(path.join(repo, 'build/dist/stores.js'))) as Record<string, unknown>;
  t.deepEqual(Object.keys(main).sort(), Object.keys(api).sort());
  t.deepEqual(Object.keys(stores).sort(), Object.keys(storesApi).sort());
  for (const name of Object.keys(stores)) t.is(stores[name], main[name], `${name}: the stores entry's export is the main entry's own (one chunk holds it), not a copy`);
  t.true(Object.keys(stores).length < Object.keys(main).length / 3, 'the stores entry is the small one');
});

test('a process importing session-journal/stores loads three files holding the stores and nothing of the tools, the compactor, Redis or the integrations, and no dependency or builtin by an ES import', async (t) => {
  const graph = await staticGraph(path.join(repo, 'build/dist/stores.js'));
  t.true(graph.files.length <= 3, `each file an ES import loads costs about a millisecond at a cold start: ${graph.files.join(', ')}`);
  t.deepEqual(graph.external, [], 'builtins come from process.getBuiltinModule (an ES import of node:fs loads all of streams), dependencies at first use (src/lazy.ts)');
  // The bundles keep their names (no identifier minification): `class X`, `X=class`, `function X`.
  const defines = (name: string): boolean => new RegExp(`\\b(class|function\\*?) ${name}\\b|\\b${name}=class\\b`).test(graph.text);
  t.true(defines('SessionStore') && defines('KeyValueStore'), 'the check below sees definitions');
  for (const name of ['RedisStorage', 'StreamReader', 'compactStore', 'verifyStore', 'replayHistory', 'repairStore', 'importSessions', 'JournalEventStore', 'startCodexMcpServer']) {
    t.false(defines(name), `${name} is not in the stores entry's static graph`);
  }
  const main = await staticGraph(path.join(repo, 'build/dist/index.js'));
  t.true(main.files.length <= 5, main.files.join(', '));
  t.deepEqual(main.external.filter((m) => !m.startsWith('node:') || ['node:crypto', 'node:zlib', 'node:child_process'].includes(m)), [], 'the main entry: no dependency, node:crypto, node:zlib or node:child_process before first use');
});

test('the session-journal binary answers --version and --help, and a usage error exits 2', (t) => {
  const bin = path.join(repo, pkg.bin['session-journal']!);
  t.is(execFileSync(process.execPath, [bin, '--version'], { encoding: 'utf8' }).trim(), pkg.version);
  const help = execFileSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
  for (const command of ['compact', 'replay', 'verify', 'stats', 'repair', 'import', 'export', 'codex-mcp-server']) t.regex(help, new RegExp(`^  ${command} `, 'm'));
  const err = t.throws(() => execFileSync(process.execPath, [bin, 'no-such-command'], { encoding: 'utf8', stdio: 'pipe' }));
  t.is((err as { status?: number }).status, 2);
});
