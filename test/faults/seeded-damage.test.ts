/**
 * Seeded random damage: one base store written by the real writer and
 * compactor code (two full compactions with archive/ on, then two that
 * stopped after their rotation, so the store holds a snapshot, three
 * segments joined by rotation markers, and archive/ holds the older snapshot
 * and every folded segment), then hundreds of copies of it, each with one
 * damage: a byte changed, the file cut short, or bytes inserted, in a live
 * segment, a rotation marker, the snapshot, or an archive member.
 *
 * In every case:
 * - every turn whose record line was not damaged is in a fresh replay
 *   exactly once (the exceptions are the documented limits of
 *   docs/FORMAT.md "What this cannot save": damage inside the last commit
 *   of the live segment or a cut of it, a damaged seq or n that still
 *   parses, and garbage that ends a line in 0x1E, which reads as a seal);
 * - no turn is there twice (a damaged line that still parses may read as
 *   some other turn: that one may be there once more);
 * - a writer then appends where every reader reads it, and nothing is lost;
 * - `verify` exits 1 whenever the damage changed what a reader reads (0 is
 *   honest only when it did not, or when the live segment was cut exactly
 *   at a commit boundary: that store is a store with fewer writes, only
 *   `verify --expect-head` can tell), and never 70;
 * - nothing hangs: the checks run in child processes with a deadline.
 *
 * Seed: DAMAGE_SEED (default 0x5eed2026); cases: DAMAGE_CASES (default 320);
 * one case alone: DAMAGE_CASE=17 (DAMAGE_KEEP=1 keeps its store). A failing case prints its number, seed and
 * the exact damage. The base store's bytes differ between runs only in the
 * writers' pid and commit ids, so the plan picks lines and a position
 * within each line, not raw offsets.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import test from 'ava';
import { compactSessions, type SessionStore } from '../../src/index.js';
import { seededRandom } from '../helpers/child-protocol.js';
import { FakeClock, openStore } from '../helpers/compaction-helpers.js';
import type { DamageCheckCase, DamageCheckResult } from '../helpers/damage-check.js';
import { helperScript } from '../helpers/temp-store.js';

const SEED = Number(process.env.DAMAGE_SEED ?? 0x5eed2026);
const CASES = Number(process.env.DAMAGE_CASES ?? 320);
const ONLY = process.env.DAMAGE_CASE === undefined ? undefined : Number(process.env.DAMAGE_CASE);
/** The stores' "now" (the fixture clock of this family); no wall clock is read. */
const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);
const KEEP_ALL = { ttlMs: 1000 * 24 * 3_600_000 * 365, maxSessions: 100_000, archive: { keep: true, maxAgeMs: 1000 * 24 * 3_600_000 * 365, maxFiles: 10_000 } };
const SESSIONS = 8;
const CHILDREN = 2;
const CHILD_DEADLINE_MS = 90_000;

// ---- the base store ---------------------------------------------------------

async function writePhase(store: SessionStore, clock: FakeClock, rnd: () => number, phase: number, turns: number): Promise<void> {
  for (let i = 0; i < turns; i++) {
    clock.advance(1 + Math.floor(rnd() * 1000));
    const id = `s${Math.floor(rnd() * SESSIONS)}`;
    store.addTurn(id, { prompt: `p${phase}-${i}`, response: `r${'x'.repeat(Math.floor(rnd() * 30))}`, timestamp: new Date(clock.now) });
    if (rnd() < 0.4) await store.flush(); // else the next turns share its commit
  }
  await store.flush();
}

class StopHere extends Error {}

async function compact(dir: string, clock: FakeClock, stopAfterRotation: boolean): Promise<void> {
  const run = compactSessions({
    dir,
    now: () => clock.now,
    onWarning: () => undefined,
    ...KEEP_ALL,
    onStep: (step) => {
      if (stopAfterRotation && step === 'rotated') throw new StopHere();
    },
  });
  if (!stopAfterRotation) return void (await run);
  await run.then(
    () => {
      throw new Error('the compaction was to stop after its rotation');
    },
    (err: unknown) => {
      if (!(err instanceof StopHere) && !((err as { cause?: unknown }).cause instanceof StopHere)) throw err;
    },
  );
}

async function buildBase(dir: string): Promise<void> {
  const rnd = seededRandom(SEED);
  const clock = new FakeClock(NOW);
  for (let phase = 1; phase <= 5; phase++) {
    const store = openStore(dir, () => undefined, { clock: clock.read });
    if (phase === 1) for (let s = 0; s < SESSIONS; s++) store.ensureSession(`s${s}`);
    await writePhase(store, clock, rnd, phase, 40);
    await store.close();
    if (phase < 5) await compact(dir, clock, phase >= 3);
  }
}

// ---- what the base holds ----------------------------------------------------

interface LineInfo {
  start: number;
  /** Just past the newline. */
  end: number;
  prompt?: string;
  seq?: number;
  /** Index of the commit it belongs to, in its file. */
  commit: number;
  text: string;
}

function linesOf(bytes: Buffer): LineInfo[] {
  const out: LineInfo[] = [];
  let commit = -1;
  let left = 0;
  for (let start = 0; start < bytes.length; ) {
    const nl = bytes.indexOf(0x0a, start);
    const end = nl === -1 ? bytes.length : nl + 1;
    const text = bytes.toString('utf8', start, nl === -1 ? end : nl);
    const r = JSON.parse(text) as { seq?: number; c?: string; n?: number; t?: string; p?: { turn?: { prompt?: string } } };
    if (r.c !== undefined || left === 0) {
      commit++;
      left = r.n ?? 1;
    }
    left--;
    out.push({ start, end, commit, text, seq: r.seq, prompt: r.t === 'session.turn' ? r.p?.turn?.prompt : undefined });
    start = end;
  }
  return out;
}

/** What readers read of a file: its non-blank lines, CR dropped (a gzip member inflated first). */
function readerView(bytes: Buffer, gz: boolean): string | undefined {
  let plain = bytes;
  if (gz) {
    try {
      plain = zlib.gunzipSync(bytes);
    } catch {
      return undefined;
    }
  }
  return plain
    .toString('latin1')
    .split('\n')
    .map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l))
    .filter((l) => l !== '')
    .join('\n');
}

// ---- damage -------------------------------------------------------------------

type Target = 'segment' | 'marker' | 'snapshot' | 'archive';
type Kind = 'flip' | 'truncate' | 'insert';

interface Damage {
  id: number;
  seed: number;
  target: Target;
  file: string;
  kind: Kind;
  offset: number;
  line?: number;
  bytes?: number[];
  /** Prompts whose record line the damage touched: they may be lost. */
  damagedPrompts: string[];
  /** Prompts the damaged lines may now read as (a damaged line that still parses). */
  phantoms: string[];
  /** A damaged line still parses as a record with another seq or n (FORMAT.md: what this cannot save). */
  framingDamaged: boolean;
  mustDetect: boolean;
}

const pickOf = <T>(rnd: () => number, items: readonly T[]): T => items[Math.floor(rnd() * items.length)]!;

function planDamage(base: string, id: number): { damage: Damage; apply: (dir: string) => void } {
  const seed = (SEED ^ Math.imul(id + 1, 0x9e3779b1)) >>> 0;
  const rnd = seededRandom(seed);
  const r = rnd();
  const target: Target = r < 0.35 ? 'segment' : r < 0.6 ? 'marker' : r < 0.8 ? 'snapshot' : 'archive';
  const live = fs.readdirSync(base).filter((n) => /^journal-\d+\.ndjson$/.test(n)).sort();
  const lastSegment = live[live.length - 1]!;
  const file =
    target === 'segment'
      ? pickOf(rnd, live)
      : target === 'marker'
        ? pickOf(rnd, live.slice(0, -1))
        : target === 'snapshot'
          ? fs.readdirSync(base).find((n) => /^snapshot-\d+\.ndjson$/.test(n))!
          : path.join('archive', pickOf(rnd, fs.readdirSync(path.join(base, 'archive')).filter((n) => n.endsWith('.ndjson.gz')).sort()));
  const original = fs.readFileSync(path.join(base, file));
  const kind: Kind = pickOf(rnd, ['flip', 'flip', 'truncate', 'insert'] as const);
  const plainFile = !file.endsWith('.gz');
  const lines = plainFile ? linesOf(original) : [];
  let offset: number;
  let lineIndex: number | undefined;
  if (plainFile) {
    lineIndex = target === 'marker' ? lines.length - 1 : Math.floor(rnd() * lines.length);
    const line = lines[lineIndex]!;
    offset = line.start + Math.floor(rnd() * (line.end - line.start));
  } else {
    offset = Math.floor(rnd() * original.length);
  }
  const inserted = kind === 'insert' ? Array.from({ length: 1 + Math.floor(rnd() * 12) }, () => (rnd() < 0.15 ? 0x0a : Math.floor(rnd() * 256))) : undefined;
  const flipped = kind === 'flip' ? [original[offset]! ^ (1 + Math.floor(rnd() * 255))] : undefined;
  const damaged =
    kind === 'flip'
      ? Buffer.concat([original.subarray(0, offset), Buffer.from(flipped!), original.subarray(offset + 1)])
      : kind === 'truncate'
        ? original.subarray(0, offset)
        : Buffer.concat([original.subarray(0, offset), Buffer.from(inserted!), original.subarray(offset)]);

  const damage: Damage = { id, seed, target, file, kind, offset, line: lineIndex === undefined ? undefined : lineIndex + 1, bytes: flipped ?? inserted, damagedPrompts: [], phantoms: [], framingDamaged: false, mustDetect: readerView(original, !plainFile) !== readerView(damaged, !plainFile) };
  if (file.startsWith('journal-')) {
    // Lines the damage touched: the one it is in (and the next, where a newline was changed), or all from the cut on.
    const touched = lines.filter((l) => (kind === 'truncate' ? l.end > offset : l.end > offset && l.start <= offset) || (kind === 'flip' && original[offset] === 0x0a && l.start === offset + 1));
    // The framing limit: in the live segment, damage in its last commit costs that whole commit, and so does a cut (its commit becomes the last).
    const lastCommit = lines[lines.length - 1]!.commit;
    const cutCommit = kind === 'truncate' && file === lastSegment ? touched[0]?.commit : undefined;
    const inLastCommit = file === lastSegment && touched.some((l) => l.commit === lastCommit);
    const lost = [...touched, ...lines.filter((l) => (inLastCommit && l.commit === lastCommit) || l.commit === cutCommit)];
    damage.damagedPrompts = lost.flatMap((l) => (l.prompt ? [l.prompt] : []));
    // What the touched bytes read as now.
    const first = touched[0]?.start ?? offset;
    const tailEnd = kind === 'insert' ? (touched[touched.length - 1]?.end ?? offset) + inserted!.length : kind === 'flip' ? (touched[touched.length - 1]?.end ?? offset) : damaged.length;
    for (const text of damaged.toString('utf8', first, tailEnd).split('\n')) {
      try {
        const rec = JSON.parse(text) as { seq?: unknown; n?: unknown; c?: unknown; t?: string; p?: { turn?: { prompt?: string } } };
        const prompt = rec.p?.turn?.prompt;
        if (typeof prompt === 'string') damage.phantoms.push(prompt);
        const was = touched.find((l) => l.text !== text && typeof rec.seq === 'number');
        const original = was ? (JSON.parse(was.text) as { seq: number; n?: number; c?: string }) : undefined;
        if (original && (rec.seq !== original.seq || rec.n !== original.n)) damage.framingDamaged = true;
        // Only the commit id changed (its value, or its key into one readers ignore): not hashed, and readers apply the same (FORMAT.md "Records").
        const applied = (r: Record<string, unknown>) => JSON.stringify(['v', 'seq', 'ts', 'w', 't', 'p', 'h', 'n'].map((k) => r[k]));
        if (kind === 'flip' && original && applied(rec as Record<string, unknown>) === applied(original as Record<string, unknown>)) damage.mustDetect = false;
      } catch {
        // unparsable: a damaged line, nothing more
      }
    }
    // Garbage that ends a line in 0x1E reads as a writer's seal of a torn line: the open commit is ended as incomplete (FORMAT.md "What this cannot save").
    const seals = (b: Buffer) => b.toString('latin1').split('\x1e\n').length;
    if (seals(damaged) > seals(original)) damage.framingDamaged = true;
    // The live segment cut exactly between commits: a store with fewer writes, only --expect-head tells.
    if (kind === 'truncate' && file === lastSegment && lines.some((l) => l.end === offset && lines[lines.indexOf(l) + 1]?.commit !== l.commit)) damage.mustDetect = false;
  }
  return { damage, apply: (dir) => fs.writeFileSync(path.join(dir, file), damaged) };
}

// ---- running the checks in children -------------------------------------------

function runChecker(cases: DamageCheckCase[]): Promise<{ results: DamageCheckResult[]; hungIn?: number; exit: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [helperScript('damage-check.js'), JSON.stringify(cases)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const results: DamageCheckResult[] = [];
    let started: number | undefined;
    let buffered = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      for (let nl = buffered.indexOf('\n'); nl !== -1; nl = buffered.indexOf('\n')) {
        const message = JSON.parse(buffered.slice(0, nl)) as DamageCheckResult | { type: 'start'; id: number };
        buffered = buffered.slice(nl + 1);
        if (message.type === 'start') started = message.id;
        else results.push(message);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-8000)));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, CHILD_DEADLINE_MS);
    child.on('error', reject);
    child.on('close', (exit) => {
      clearTimeout(timer);
      resolve({ results, hungIn: timedOut ? started : undefined, exit, stderr });
    });
  });
}

const describe = (d: Damage) =>
  `case ${d.id} (DAMAGE_SEED=${SEED} DAMAGE_CASE=${d.id}, case seed ${d.seed}): ${d.kind} ${d.target} ${d.file} at byte ${d.offset}${d.line ? ` (line ${d.line})` : ''}${d.bytes ? ` bytes [${d.bytes.join(',')}]` : ''}`;

test('seeded random damage of segments, rotation markers, snapshots and archive members: every intact record once, verify honest, nothing hangs', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sj-damage-'));
  // DAMAGE_KEEP=1 keeps the damaged stores, to look at a failing case.
  if (process.env.DAMAGE_KEEP) t.log(`stores kept in ${root}`);
  else t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const base = path.join(root, 'base');
  await buildBase(base);
  const expected = new Set<string>();
  for (const phase of [1, 2, 3, 4, 5]) for (let i = 0; i < 40; i++) expected.add(`p${phase}-${i}`);

  const ids = ONLY === undefined ? Array.from({ length: CASES }, (_, i) => i) : [ONLY];
  const damages = new Map<number, Damage>();
  const cases: DamageCheckCase[] = [];
  for (const id of ids) {
    const dir = path.join(root, `case-${id}`);
    fs.cpSync(base, dir, { recursive: true });
    const { damage, apply } = planDamage(base, id);
    apply(dir);
    damages.set(id, damage);
    cases.push({ id, dir });
  }
  const chunks = Array.from({ length: CHILDREN }, (_, k) => cases.filter((_, i) => i % CHILDREN === k));
  const runs = await Promise.all(chunks.filter((c) => c.length > 0).map(runChecker));

  const counts: Record<string, number> = {};
  const failures: string[] = [];
  for (const run of runs) {
    if (run.hungIn !== undefined) failures.push(`HUNG: ${describe(damages.get(run.hungIn)!)}`);
    else if (run.exit !== 0) failures.push(`a checker exited ${run.exit}: ${run.stderr}`);
    for (const r of run.results) {
      const d = damages.get(r.id)!;
      counts[`${d.target}/${d.kind}`] = (counts[`${d.target}/${d.kind}`] ?? 0) + 1;
      const problems: string[] = [];
      if (r.error) problems.push(`threw: ${r.error}`);
      if (r.verifyCode !== 0 && r.verifyCode !== 1) problems.push(`verify exited ${r.verifyCode}`);
      if (d.mustDetect && r.verifyCode === 0) problems.push('verify exited 0 although the damage changed what readers read');
      const mayLose = new Set(d.damagedPrompts);
      const phantoms = new Set(d.phantoms);
      for (const prompt of expected) {
        const n = r.prompts[prompt] ?? 0;
        const limit = phantoms.has(prompt) ? 2 : 1;
        if (n > limit) problems.push(`${prompt} is there ${n} times`);
        if (n === 0 && !mayLose.has(prompt) && !d.framingDamaged) problems.push(`${prompt} is lost (its record line is intact)`);
        if ((r.after[prompt] ?? 0) !== n && !r.error) problems.push(`${prompt}: ${n} before the probe write, ${r.after[prompt] ?? 0} after`);
      }
      if (!r.error && r.after.probe !== 1) problems.push(`the probe turn is there ${r.after.probe ?? 0} times after reopening`);
      if (problems.length > 0) failures.push(`${describe(d)}\n    ${problems.slice(0, 8).join('\n    ')}\n    warnings: ${r.warnings.slice(0, 6).join(' | ')}\n    verify: ${r.verifyOut.split('\n').slice(0, 4).join(' | ')}`);
    }
  }
  t.log(`${ids.length} cases, seed ${SEED}: ${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  t.is(runs.reduce((sum, r) => sum + r.results.length, 0), ids.length, 'every case was checked');
  t.deepEqual(failures, [], failures.join('\n'));
});
