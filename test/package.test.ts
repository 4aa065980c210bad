import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';

const repo = new URL('../../', import.meta.url).pathname;
const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as {
  version: string;
  exports: Record<string, { types?: string; import?: string }>;
  bin: Record<string, string>;
  engines: { node: string };
};

test('another package can import { SessionStore } from "session-journal" through the exports map', (t) => {
  const consumer = fs.mkdtempSync(path.join(os.tmpdir(), 'sj-consumer-'));
  t.teardown(() => fs.rmSync(consumer, { recursive: true, force: true }));
  fs.mkdirSync(path.join(consumer, 'node_modules'));
  fs.symlinkSync(repo, path.join(consumer, 'node_modules', 'session-journal'));
  fs.writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', private: true }));
  fs.writeFileSync(
    path.join(consumer, 'use.mjs'),
    `import { SessionStore, JournalEventStore, compactSessions, SessionJournalError, ErrorCodes } from 'session-journal';
     const dir = process.argv[2];
     const store = SessionStore.openSync({ dir });
     const id = store.createSession();
     await store.close();
     console.log(JSON.stringify({ id: typeof id, events: typeof JournalEventStore, compact: typeof compactSessions, error: typeof SessionJournalError, code: ErrorCodes.CLOSED }));`,
  );
  const out = execFileSync(process.execPath, ['use.mjs', path.join(consumer, 'store')], { cwd: consumer, encoding: 'utf8' });
  t.deepEqual(JSON.parse(out), { id: 'string', events: 'function', compact: 'function', error: 'function', code: 'CLOSED' });
});

test('the exports map points at built files with type declarations', (t) => {
  const root = pkg.exports['.']!;
  t.true(fs.existsSync(path.join(repo, root.import!)));
  t.true(fs.existsSync(path.join(repo, root.types!)));
  t.regex(fs.readFileSync(path.join(repo, root.types!), 'utf8'), /SessionStore/);
  t.is(pkg.engines.node, '>=20.19');
});

test('the session-journal binary answers --version and --help, and a usage error exits 2', (t) => {
  const bin = path.join(repo, pkg.bin['session-journal']!);
  t.is(execFileSync(process.execPath, [bin, '--version'], { encoding: 'utf8' }).trim(), pkg.version);
  const help = execFileSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
  for (const command of ['compact', 'replay', 'verify', 'stats', 'repair', 'import', 'export', 'codex-mcp-server']) t.regex(help, new RegExp(`^  ${command} `, 'm'));
  const err = t.throws(() => execFileSync(process.execPath, [bin, 'no-such-command'], { encoding: 'utf8', stdio: 'pipe' }));
  t.is((err as { status?: number }).status, 2);
});
