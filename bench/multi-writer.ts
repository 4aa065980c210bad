/**
 * (b) Several writer processes on one store.
 *
 * The same per-process workload (16 async clients each looping addTurn + await
 * flush(), fsync: true) runs in 1 process, then in 4 processes at once on one
 * store. Reported: aggregate acknowledged mutations/s, and the time to
 * acknowledgement (addTurn until its flush() resolved), p50 and p99.
 *
 * Goal: aggregate throughput of 4 processes >= 0.8x that of 1 process (the
 * lock and the cross-process catch-up must not collapse throughput).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SessionStore } from '../src/index.js';
import { Samples, fmtMs, fmtRate, fmtRatio, fmtUs, runWhenMain, log, mean, median, type BenchArgs, type BenchResult, measured, type Measurement } from './common.js';

const CLIENTS_PER_PROCESS = 16;
const PROCESSES = 4;
const TARGET = 0.8;
const CHILD = fileURLToPath(new URL('./multi-writer-child.js', import.meta.url));

interface ChildReport {
  ops: number;
  ms: number;
  cpuMs: number;
  seenSessions: number;
  warnings: Record<string, number>;
}

interface GroupRun {
  processes: number;
  ops: number;
  /** Aggregate rate: the sum of each process's own rate over the same window. */
  rate: number;
  cpuMsPerOp: number;
  lat: Samples;
  seenSessions: number[];
  warnings: Record<string, number>;
}

async function runGroup(root: string, tag: string, processes: number, durationMs: number): Promise<GroupRun> {
  const dir = path.join(root, `store-${tag}`);
  SessionStore.openSync({ dir, autoCompact: false }).closeSync(); // create it once, not in a race
  const children = Array.from({ length: processes }, (_, i) => {
    const latencyFile = path.join(root, `lat-${tag}-${i}.f64`);
    const child = spawn(process.execPath, [CHILD, dir, String(CLIENTS_PER_PROCESS), String(durationMs), latencyFile], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines: string[] = [];
    let buf = '';
    const waiters: Array<() => void> = [];
    child.stdout.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        for (const w of waiters.splice(0)) w();
      }
    });
    const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
    const nextLine = async (): Promise<string> => {
      while (lines.length === 0) {
        const code = await Promise.race([new Promise<undefined>((resolve) => waiters.push(() => resolve(undefined))), exited]);
        if (typeof code === 'number' && lines.length === 0) throw new Error(`writer ${i} exited with ${code}`);
      }
      return lines.shift()!;
    };
    return { child, latencyFile, nextLine, exited };
  });
  try {
    for (const c of children) JSON.parse(await c.nextLine()); // {"ready":true}
    for (const c of children) c.child.stdin.end('go\n');
    const reports: ChildReport[] = [];
    for (const c of children) reports.push(JSON.parse(await c.nextLine()) as ChildReport);
    for (const c of children) {
      const code = await c.exited;
      if (code !== 0) throw new Error(`writer exited with ${code}`);
    }
    const lat = new Samples();
    for (const c of children) {
      const raw = fs.readFileSync(c.latencyFile);
      lat.pushAll(new Float64Array(raw.buffer, raw.byteOffset, raw.byteLength / 8));
      fs.rmSync(c.latencyFile);
    }
    const warnings: Record<string, number> = {};
    for (const r of reports) for (const [k, n] of Object.entries(r.warnings)) warnings[k] = (warnings[k] ?? 0) + n;
    const ops = reports.reduce((s, r) => s + r.ops, 0);
    return {
      processes,
      ops,
      rate: reports.reduce((s, r) => s + (r.ops / r.ms) * 1000, 0),
      cpuMsPerOp: reports.reduce((s, r) => s + r.cpuMs, 0) / ops,
      lat,
      seenSessions: reports.map((r) => r.seenSessions),
      warnings,
    };
  } finally {
    for (const c of children) if (c.child.exitCode === null) c.child.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function run(args: BenchArgs): Promise<BenchResult> {
  return measured(args, 'multi-writer', (root) => measureIn(args, root));
}

/** The measurement itself, in a temp root of its own (see measured()). */
async function measureIn(args: BenchArgs, root: string): Promise<{ result: Measurement; lines: readonly string[] }> {
  const rounds = args.quick ? 3 : 6;
  const seconds = args.quick ? 1 : 2;
  log('multi-writer: warm-up');
  await runGroup(root, 'warm1', 1, 300);
  await runGroup(root, 'warm4', PROCESSES, 300);
  const single: GroupRun[] = [];
  const multi: GroupRun[] = [];
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? [1, PROCESSES] : [PROCESSES, 1];
    for (const n of order) {
      log(`multi-writer: round ${r + 1}/${rounds}, ${n} process(es) (${seconds} s)`);
      const g = await runGroup(root, `r${r}-${n}`, n, seconds * 1000);
      (n === 1 ? single : multi).push(g);
    }
  }
  const combine = (gs: GroupRun[]): { rate: number; lat: Samples; cpuMsPerOp: number } => {
    const lat = new Samples();
    for (const g of gs) lat.pushAll(g.lat.values());
    return { rate: mean(gs.map((g) => g.rate)), lat, cpuMsPerOp: gs.reduce((s, g) => s + g.cpuMsPerOp * g.ops, 0) / gs.reduce((s, g) => s + g.ops, 0) };
  };
  const s = combine(single);
  const m = combine(multi);
  const sl = s.lat.summary();
  const ml = m.lat.summary();
  const perRound = multi.map((g, i) => g.rate / single[i]!.rate);
  const ratio = median(perRound);
  const expectedSessions = PROCESSES * CLIENTS_PER_PROCESS;
  const converged = multi.every((g) => g.seenSessions.every((n) => n === expectedSessions));
  const warnings: Record<string, number> = {};
  for (const g of [...single, ...multi]) for (const [k, n] of Object.entries(g.warnings)) warnings[k] = (warnings[k] ?? 0) + n;
  const lines = [
    `workload per process: ${CLIENTS_PER_PROCESS} clients, addTurn + await flush(), fsync: true, ~330 B lines; auto-compaction off`,
    `1 process : ${fmtRate(s.rate)} mutations  ack p50 ${fmtMs(sl.p50)}, p99 ${fmtMs(sl.p99)}, max ${fmtMs(sl.max)}; cpu ${fmtUs(s.cpuMsPerOp)}/mutation`,
    `${PROCESSES} processes: ${fmtRate(m.rate)} mutations aggregate  ack p50 ${fmtMs(ml.p50)}, p99 ${fmtMs(ml.p99)}, max ${fmtMs(ml.max)}; cpu ${fmtUs(m.cpuMsPerOp)}/mutation (incl. catching up on the others)`,
    `per-round aggregate rates: 1p ${single.map((g) => fmtRate(g.rate)).join(', ')}; ${PROCESSES}p ${multi.map((g) => fmtRate(g.rate)).join(', ')}`,
    `per-round ratios: ${perRound.map(fmtRatio).join(', ')}; headline = their median (mean rates give ${fmtRatio(m.rate / s.rate)})`,
    `every writer saw all ${expectedSessions} sessions at the end: ${converged ? 'yes' : 'NO'}`,
  ];
  if (Object.keys(warnings).length > 0) lines.push(`warnings: ${Object.entries(warnings).map(([c, n]) => `${c} x${n}`).join(', ')}`);
  const result: Measurement = {
    name: 'multi-writer',
    title: `${PROCESSES} writer processes vs 1 (same per-process workload, durable)`,
    ratio,
    target: TARGET,
    goal: `aggregate throughput ${PROCESSES}p / 1p >= ${TARGET}x`,
    pass: ratio >= TARGET,
    figures: {
      singlePerSec: Math.round(s.rate),
      multiPerSec: Math.round(m.rate),
      singleP50Ms: sl.p50,
      singleP99Ms: sl.p99,
      multiP50Ms: ml.p50,
      multiP99Ms: ml.p99,
      singleCpuUsPerOp: s.cpuMsPerOp * 1000,
      multiCpuUsPerOp: m.cpuMsPerOp * 1000,
      clientsPerProcess: CLIENTS_PER_PROCESS,
      converged: converged ? 'yes' : 'no',
      rounds,
      secondsPerSide: seconds,
    },
  };
  return { result, lines };
}

runWhenMain(import.meta.url, run);
