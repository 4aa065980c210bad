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
import * as api from '../src/index.js';
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
    const { sources, sourceRoot } = JSON.parse(fs.readFileSync(path.join(root, 'node_modules', 'session-journal', map), 'utf8')) as { sources: string[]; sourceRoot?: string };
    for (const source of sources) {
      const shipped = path.posix.normalize(path.posix.join(path.posix.dirname(map), sourceRoot ?? '', source));
      if (!packed.includes(shipped)) unresolved.push(`${map} -> ${source}`);
    }
  }
  t.deepEqual(unresolved, []);
  t.regex(fs.readFileSync(path.join(root, 'node_modules', 'session-journal', 'LICENSE'), 'utf8'), /^MIT License\n\nCopyright \(c\) 2026 the session-journal contributors\n/);
});

test('package.json: exports for import and require with types, main, metadata, and no install scripts', (t) => {
  const entry = pkg.exports['.']!;
  t.deepEqual(Object.keys(entry), ['types', 'default'], 'types first; default serves import and require alike');
  t.true(fs.existsSync(path.join(repo, entry.default!)));
  t.true(fs.existsSync(path.join(repo, entry.types!)));
  t.is(pkg.main, entry.default!, 'for tools that read main, not exports');
  t.regex(fs.readFileSync(path.join(repo, entry.types!), 'utf8'), /SessionStore/);
  t.is(pkg.engines.node, '>=20.19', 'the first Node 20 that require()s ES modules without a flag');
  t.is(pkg.license, 'MIT');
  t.regex(pkg.repository.url, /^git\+https:\/\/github\.com\/.+\.git$/);
  t.regex(pkg.bugs.url, /^https:\/\/github\.com\/.+\/issues$/);
  t.true(pkg.keywords.includes('mcp'));
  // npm runs these when the package is installed from a tarball or git, and warns about each (install-scripts).
  for (const script of ['preinstall', 'install', 'postinstall', 'prepare']) t.false(script in pkg.scripts, `no ${script} script`);
  t.is(pkg.scripts.prepack, 'npm run build', 'npm pack and npm publish still build');
});

test('the package entry is one bundled file of build/src/index.js (a cold process loads one module, not seventy): the same exports, and no static import of a dependency or of a costly builtin', async (t) => {
  const entry = pkg.exports['.']!.default!;
  t.is(entry, './build/dist/index.js');
  const bundled = (await import(path.join(repo, entry))) as Record<string, unknown>;
  t.deepEqual(Object.keys(bundled).sort(), Object.keys(api).sort());
  const text = fs.readFileSync(path.join(repo, entry), 'utf8');
  const staticImports = [...text.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]!);
  t.deepEqual([...new Set(staticImports)].filter((m) => !['node:fs', 'node:os', 'node:path', 'node:url', 'node:module', 'node:events', 'node:timers/promises'].includes(m)), [], 'dependencies, node:crypto, node:zlib and node:child_process load at first use (src/lazy.ts)');
});

test('the session-journal binary answers --version and --help, and a usage error exits 2', (t) => {
  const bin = path.join(repo, pkg.bin['session-journal']!);
  t.is(execFileSync(process.execPath, [bin, '--version'], { encoding: 'utf8' }).trim(), pkg.version);
  const help = execFileSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
  for (const command of ['compact', 'replay', 'verify', 'stats', 'repair', 'import', 'export', 'codex-mcp-server']) t.regex(help, new RegExp(`^  ${command} `, 'm'));
  const err = t.throws(() => execFileSync(process.execPath, [bin, 'no-such-command'], { encoding: 'utf8', stdio: 'pipe' }));
  t.is((err as { status?: number }).status, 2);
});
