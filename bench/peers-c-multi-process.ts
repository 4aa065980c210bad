/**
 * Issue 11, workload C: 4 processes sharing one store, 16 clients each.
 *
 * Every process loops addTurn + await flush() per client for a fixed time
 * (bench/peers/writer-child.ts): session-journal (fsync on) on one store
 * directory against 4 processes on one SQLite FULL database (WAL,
 * busy_timeout 10 s, BEGIN IMMEDIATE per turn). Afterwards the parent
 * re-reads the store and counts acknowledged turns that are missing (must
 * be 0 on both sides).
 *
 * Ratio: aggregate acknowledged turns/s, session-journal ÷ SQLite. Goal >= 2x.
 */
import { fileURLToPath } from 'node:url';
import { fmtRate, fmtRatio, measured, runWhenMain, type BenchArgs, type BenchResult, type Measurement } from './common.js';
import { startJsonChild } from './peers/child-process.js';
import { peerModule, peerPath, removePeer, type PeerKind } from './peers/peer.js';
import { alternate, ratioList } from './peers/rounds.js';

const PROCESSES = 4;
const CLIENTS = 16;
const TARGET = 2;
const CHILD = fileURLToPath(new URL('./peers/writer-child.js', import.meta.url));

interface Report {
  ops: number;
  ms: number;
  cpuMs: number;
  acked: Record<string, number>;
}

interface GroupRun {
  /** Sum of each process's own rate over its window. */
  rate: number;
  ops: number;
  cpuUsPerOp: number;
  lost: number;
}

let groups = 0;

async function runGroup(root: string, kind: PeerKind, durationMs: number): Promise<GroupRun> {
  const path = peerPath(root, kind, `group${++groups}`);
  const peer = await peerModule(kind);
  await (await peer.open(path)).close(); // create it once, not in a race
  const children = Array.from({ length: PROCESSES }, () => startJsonChild([CHILD, kind, path, String(CLIENTS), String(durationMs)]));
  try {
    for (const c of children) await c.next();
    for (const c of children) c.sendLast('go');
    const reports: Report[] = [];
    for (const c of children) reports.push(await c.next<Report>());
    for (const c of children) if ((await c.exited) !== 0) throw new Error(`a ${kind} writer failed`);
    const reread = await peer.open(path);
    let lost = 0;
    for (const r of reports) for (const [id, n] of Object.entries(r.acked)) lost += Math.max(0, n - (reread.getSession(id)?.turns.length ?? 0));
    await reread.close();
    const ops = reports.reduce((s, r) => s + r.ops, 0);
    return { rate: reports.reduce((s, r) => s + (r.ops / r.ms) * 1000, 0), ops, cpuUsPerOp: (reports.reduce((s, r) => s + r.cpuMs, 0) / ops) * 1000, lost };
  } finally {
    for (const c of children) if (c.child.exitCode === null) c.child.kill();
    removePeer(path);
  }
}

export function run(args: BenchArgs): Promise<BenchResult> {
  return measured(args, 'peers-c', async (root) => {
    const rounds = args.quick ? 2 : 4;
    const ms = args.quick ? 1000 : 2000;
    await runGroup(root, 'session-journal', 300); // warm-up (page cache, module cache)
    await runGroup(root, 'sqlite', 300);
    const r = await alternate('peers-c', rounds, () => runGroup(root, 'session-journal', ms), () => runGroup(root, 'sqlite', ms), (g) => g.rate);
    const sum = (gs: GroupRun[], f: (g: GroupRun) => number): number => gs.reduce((s, g) => s + f(g), 0);
    const oRate = sum(r.ours, (g) => g.rate) / rounds;
    const pRate = sum(r.peer, (g) => g.rate) / rounds;
    const oLost = sum(r.ours, (g) => g.lost);
    const pLost = sum(r.peer, (g) => g.lost);
    const cpu = (gs: GroupRun[]): string => (sum(gs, (g) => g.cpuUsPerOp * g.ops) / sum(gs, (g) => g.ops)).toFixed(0);
    const lines = [
      `${PROCESSES} processes x ${CLIENTS} clients on one store, addTurn + await flush(), ~540 B turns, ${rounds} rounds x ${ms / 1000} s per side`,
      `session-journal (fsync on): ${fmtRate(oRate)} turns aggregate (cpu ${cpu(r.ours)} µs/turn per process); acknowledged turns lost: ${oLost} of ${sum(r.ours, (g) => g.ops)}`,
      `SQLite WAL + synchronous=FULL, busy_timeout 10 s, 1 transaction per turn: ${fmtRate(pRate)} turns aggregate (cpu ${cpu(r.peer)} µs/turn per process); acknowledged turns lost: ${pLost} of ${sum(r.peer, (g) => g.ops)}`,
      `per-round rates: session-journal ${r.ours.map((g) => fmtRate(g.rate)).join(', ')}; SQLite ${r.peer.map((g) => fmtRate(g.rate)).join(', ')}`,
      `per-round ratios: ${ratioList(r.ratios)}; headline = their median (mean rates give ${fmtRatio(oRate / pRate)})`,
    ];
    const noLoss = oLost === 0 && pLost === 0;
    const result: Measurement = {
      name: 'peers-c',
      title: `C: ${PROCESSES} processes x ${CLIENTS} clients on one store, session-journal vs SQLite FULL`,
      ratio: r.ratio,
      target: TARGET,
      goal: `aggregate acknowledged turns/s, session-journal / SQLite FULL >= ${TARGET}x, and 0 acknowledged turns lost`,
      pass: r.ratio >= TARGET && oLost === 0,
      figures: { oursPerSec: Math.round(oRate), sqlitePerSec: Math.round(pRate), oursLost: oLost, sqliteLost: pLost, processes: PROCESSES, clientsPerProcess: CLIENTS, rounds, secondsPerSide: ms / 1000 },
    };
    if (!noLoss) lines.push('LOSS: acknowledged turns were missing after the run (see counts above)');
    return { result, lines };
  });
}

runWhenMain(import.meta.url, run);
