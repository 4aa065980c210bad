/**
 * Runs every benchmark in turn, each in its own node process (own heap, no
 * interference), then prints a summary table. Each benchmark measures its own
 * baseline in the same run, so ratios stay meaningful on a shared machine.
 *
 *   npm run bench                     # full run (~8 min)
 *   node build/bench/run-all.js --quick
 *   node build/bench/run-all.js --only replay,group-commit
 *
 * Results go to stdout; progress and warnings to stderr. Exit code 1 only if a
 * benchmark crashed (a MISS is a result, not a failure).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmtRatio, loadAverage, now, type BenchResult } from './common.js';

const BENCHMARKS = [
  'group-commit',
  'multi-writer',
  'replay',
  'rewrite-vs-journal',
  'compaction',
  'hash-chain',
  'event-store',
  // Issue 11: session-journal against what users pick instead (bench/peers/).
  'peers-a-concurrent',
  'peers-b-sequential',
  'peers-c-multi-process',
  'peers-d-cold-process',
  'peers-e-open',
  'peers-f-bytes',
  'peers-turn-cost',
  'kv-processes',
  // Issue 12: the Redis backend against the file backend and a connect-redis-style store.
  'redis-backends',
] as const;

function runOne(name: string, passArgs: string[], resultFile: string): Promise<number> {
  const script = fileURLToPath(new URL(`./${name}.js`, import.meta.url));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, ...passArgs, `--result-file=${resultFile}`], { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('exit', (code) => resolve(code ?? 1));
  });
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const quick = argv.includes('--quick');
  const onlyArg = argv.find((a) => a.startsWith('--only='))?.slice('--only='.length) ?? (argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : undefined);
  const only = onlyArg ? onlyArg.split(',') : undefined;
  const unknown = only?.filter((name) => !(BENCHMARKS as readonly string[]).includes(name)) ?? [];
  if (unknown.length > 0) {
    // A misspelt name must not pass as a run of nothing.
    process.stderr.write(`unknown benchmark ${unknown.join(', ')}; the benchmarks are: ${BENCHMARKS.join(', ')}\n`);
    process.exit(2);
  }
  const selected = BENCHMARKS.filter((b) => !only || only.includes(b));
  const started = now();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sj-bench-results-'));
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  process.stdout.write(
    `session-journal benchmarks${quick ? ' (--quick)' : ''}: ${new Date().toISOString()}, nproc ${os.cpus().length} (${cpu}), node ${process.version}, ${os.platform()} ${os.release()}, tmpdir ${os.tmpdir()}, load avg ${loadAverage()}\n\n`,
  );
  const results: BenchResult[] = [];
  const crashed: string[] = [];
  try {
    for (const name of selected) {
      const file = path.join(tmp, `${name}.json`);
      const code = await runOne(name, quick ? ['--quick'] : [], file);
      if (code !== 0 || !fs.existsSync(file)) {
        crashed.push(name);
        process.stdout.write(`== ${name}: CRASHED (exit ${code}) ==\n\n`);
        continue;
      }
      results.push(JSON.parse(fs.readFileSync(file, 'utf8')) as BenchResult);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }

  const rows: string[][] = [['benchmark', 'ratio', 'goal', 'verdict', 'load avg (1m) before/after']];
  for (const r of results) {
    const load = `${r.loadBefore.split(' ')[0]} / ${r.loadAfter.split(' ')[0]}`;
    rows.push([r.name, fmtRatio(r.ratio), `>= ${r.target}x`, r.pass ? 'PASS' : 'MISS', load]);
    for (const e of r.extra ?? []) {
      rows.push([`  ${e.label}`, fmtRatio(e.ratio), e.target === undefined ? '-' : `>= ${e.target}x`, e.target === undefined ? 'info' : e.pass ? 'PASS' : 'MISS', '']);
    }
  }
  for (const name of crashed) rows.push([name, '-', '-', 'CRASHED', '']);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const table = rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
  process.stdout.write(`SUMMARY (${((now() - started) / 1000).toFixed(0)} s)\n${table.join('\n')}\n`);
  if (crashed.length > 0) process.exitCode = 1;
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
