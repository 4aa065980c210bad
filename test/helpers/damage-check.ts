/**
 * Child process of test/faults/seeded-damage.test.ts: for each damaged store
 * named on the command line, in order, it runs `verify` (in process, through
 * the CLI's own dispatcher), replays the store, appends one probe turn as a
 * writer, and replays it again. One JSON line per step on stdout, so that a
 * parent whose child hangs knows the case it hung in.
 */
import { Writable } from 'node:stream';
import { run } from '../../src/cli/dispatch.js';
import { SessionStore, type JournalWarning } from '../../src/index.js';

export interface DamageCheckCase {
  id: number;
  dir: string;
}

export interface DamageCheckResult {
  type: 'result';
  id: number;
  verifyCode: number;
  verifyOut: string;
  /** Prompt -> how many turns hold it, in a fresh replay. */
  prompts: Record<string, number>;
  warnings: string[];
  /** The same after the probe turn was written and the store opened again. */
  after: Record<string, number>;
  error?: string;
}

/** A year that is no test's wall clock: the stores' "now". */
const DAMAGE_NOW = Date.UTC(2026, 0, 1, 12, 0, 0);
const NO_TTL = 1000 * 24 * 3_600_000 * 365;

const sink = (collect: string[]) =>
  new Writable({
    write(chunk: Buffer, _enc, done) {
      collect.push(chunk.toString('utf8'));
      done();
    },
  });

function promptCounts(store: SessionStore): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const s of store.listSessions()) for (const turn of s.turns) counts[turn.prompt] = (counts[turn.prompt] ?? 0) + 1;
  return counts;
}

const open = (dir: string, onWarning: (w: JournalWarning) => void) =>
  SessionStore.openSync({ dir, fsync: false, autoCompact: false, ttlMs: NO_TTL, maxSessions: 100_000, onWarning, clock: () => DAMAGE_NOW });

async function check(c: DamageCheckCase): Promise<DamageCheckResult> {
  const out: string[] = [];
  const verifyCode = await run(['verify', '--dir', c.dir], { stdout: sink(out), stderr: sink(out), env: {}, version: '0' });
  const warnings: string[] = [];
  const result: DamageCheckResult = { type: 'result', id: c.id, verifyCode, verifyOut: out.join('').slice(0, 4000), prompts: {}, warnings, after: {} };
  try {
    const store = open(c.dir, (w) => warnings.push(`${w.code} ${w.file}:${w.line ?? ''} ${w.message}`));
    result.prompts = promptCounts(store);
    store.ensureSession('probe');
    store.addTurn('probe', { prompt: 'probe', response: 'r', timestamp: new Date(DAMAGE_NOW) });
    await store.flush();
    await store.close();
    const again = open(c.dir, () => undefined);
    result.after = promptCounts(again);
    await again.close();
  } catch (err) {
    result.error = `${(err as { code?: string }).code ?? ''} ${(err as Error).stack}`;
  }
  return result;
}

const cases = JSON.parse(process.argv[2]!) as DamageCheckCase[];
for (const c of cases) {
  process.stdout.write(JSON.stringify({ type: 'start', id: c.id }) + '\n');
  process.stdout.write(JSON.stringify(await check(c)) + '\n');
}
