import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { SessionStore } from '../src/index.js';
import { tempStoreDir } from './helpers/temp-store.js';
import { copyFixtureStore } from './helpers/fixture-store.js';
import { SHORT_OPTIONS } from '../src/cli/args.js';

const repo = new URL('../../', import.meta.url).pathname;
const operations = fs.readFileSync(path.join(repo, 'docs/OPERATIONS.md'), 'utf8');
const cli = path.join(repo, 'build/src/cli/main.js');

/** The fenced block that follows a line containing `marker`. */
function blockAfter(marker: string): string {
  const at = operations.indexOf(marker);
  const open = operations.indexOf('```', at);
  const start = operations.indexOf('\n', open) + 1;
  return operations.slice(start, operations.indexOf('```', start));
}

test('the crontab line in OPERATIONS.md runs as written: quiet, exit 0', async (t) => {
  const line = blockAfter('### From cron').trim();
  const fields = line.split(/\s+/);
  t.is(fields.slice(0, 5).join(' '), '*/15 * * * *');
  const dir = tempStoreDir(t);
  const store = await SessionStore.open({ dir, autoCompact: false });
  store.createSession();
  await store.close();
  const command = fields.slice(5).join(' ').replace('session-journal', `${process.execPath} ${cli}`).replace('/var/lib/mcp/sessions', dir).replace(/ 2>&1 \| logger.*$/, '');
  const result = spawnSync('/bin/sh', ['-c', command], { encoding: 'utf8' });
  t.is(result.status, 0, result.stderr);
  t.is(result.stdout + result.stderr, '');
  t.true(fs.readdirSync(dir).some((n) => n.startsWith('snapshot-')));
});

test('the systemd units in OPERATIONS.md pass systemd-analyze verify', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sj-units-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const unit of ['session-journal-compact.service', 'session-journal-compact.timer']) {
    fs.writeFileSync(path.join(dir, unit), blockAfter(`/etc/systemd/system/${unit}`));
  }
  const service = fs.readFileSync(path.join(dir, 'session-journal-compact.service'), 'utf8');
  t.regex(service, /^ExecStart=\/usr\/bin\/env session-journal compact --dir \S+ --ttl 24h --max-sessions 100$/m);
  t.regex(service, /^SuccessExitStatus=3$/m);
  // systemd-analyze ships with systemd on this machine kind (Debian); it checks syntax and directives.
  const out = execFileSync('systemd-analyze', ['verify', 'session-journal-compact.service', 'session-journal-compact.timer'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  t.is(out.trim(), '');
});

test('"An operator\'s session" in OPERATIONS.md repairs as written: repair --dry-run && repair', async (t) => {
  const line = blockAfter("## An operator's session")
    .split('\n')
    .find((l) => l.startsWith('session-journal repair'))!;
  t.is(line, 'session-journal repair --dry-run && session-journal repair');
  const dir = copyFixtureStore(t, 'repair-garbage', 'stores');
  const command = line.replaceAll('session-journal', `'${process.execPath}' '${cli}'`);
  const result = spawnSync('/bin/sh', ['-c', command], { encoding: 'utf8', env: { ...process.env, SESSION_JOURNAL_DIR: dir } });
  t.is(result.status, 0, result.stdout + result.stderr);
  t.regex(result.stdout, /^would repair: .*\n[^]*^repaired: /m);
  const verify = spawnSync(process.execPath, [cli, 'verify', '--dir', dir], { encoding: 'utf8' });
  t.is(verify.status, 0, verify.stdout);
});

test('the one-letter options in OPERATIONS.md are the ones the parser knows', (t) => {
  const table = operations.slice(operations.indexOf('| short | long |'), operations.indexOf('An unknown option or command'));
  const documented = Object.fromEntries([...table.matchAll(/^\| `-(\w)[^`]*`[^|]*\| `--([\w-]+)/gm)].map((m) => [m[1]!, m[2]!]));
  t.deepEqual(documented, { ...SHORT_OPTIONS, h: 'help', v: 'version' });
});
