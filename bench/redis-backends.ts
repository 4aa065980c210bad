/**
 * Issue 12: the file backend, the Redis backend and the naive Redis approach
 * (the whole session JSON GET and SET on every change, as express's
 * connect-redis does; bench/peers/naive-redis.ts), with clients that share
 * sessions.
 *
 * - 64 clients in one process, 16 sessions (4 clients on each);
 * - 4 processes (as 4 hosts) x 16 clients on the same 16 sessions, client c
 *   of every process on session c: each session has a writer on each host.
 *
 * Each client loops: one turn (~540 B, marked with its client and number),
 * awaited until acknowledged. For SessionStore (both backends) that is
 * `await catchUp(); addTurn(); await flush()`, what a request handler does
 * (docs/SCALING.md); for the naive approach, GET + modify + SET. The Redis
 * backend also runs without the catch-up (informational: what it costs).
 * Afterwards
 * every acknowledged turn is looked for by its marker: the ones missing are
 * the acknowledged mutations a backend lost (ours must lose none).
 *
 * The benchmark starts its own redis-server (bench/peers/redis-server.ts:
 * appendonly yes, appendfsync always, a free loopback port, a temp dir), so
 * every acknowledgement means "fsynced". Between runs the server is emptied
 * (FLUSHALL) and its append-only file rewritten, so no run pays for the
 * previous one's file. Backends alternate (order rotated every round).
 *
 * Headline: acknowledged turns/s with 4 processes, Redis backend ÷ naive
 * (the issue sets no figure; the goal is only not to be slower than the
 * approach it replaces), and 0 acknowledged turns lost by either of ours.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Samples, fmtMs, fmtRate, fmtRatio, log, measured, median, runWhenMain, type BenchArgs, type BenchResult, type Measurement } from './common.js';
import { startJsonChild } from './peers/child-process.js';
import { realisticTurns } from './peers/dataset.js';
import { redisClient } from './peers/naive-redis.js';
import { RedisServer } from './peers/redis-server.js';
import { ratioList } from './peers/rounds.js';
import { BACKENDS, clientLoop, countLosses, createSessions, openBackend, readBack, type BackendKind, type LoopReport, type Place } from './peers/shared-sessions.js';

const CLIENTS = 64;
const PROCESSES = 4;
const PER_PROCESS = 16;
const SESSIONS = 16;
const TARGET = 1;
const CHILD = fileURLToPath(new URL('./peers/shared-sessions-child.js', import.meta.url));

const LABEL: Record<BackendKind, string> = {
  file: 'file backend (SessionStore, directory, fsync)',
  redis: 'Redis backend (SessionStore on Redis)',
  'redis-writes': 'Redis backend without catchUp() (informational)',
  naive: 'naive Redis (GET + SET whole session JSON)',
};

type Workload = 'in-process' | 'processes';

interface Run {
  kind: BackendKind;
  /** Acknowledged turns per second (summed over processes, each over its own window). */
  rate: number;
  ops: number;
  /** Client-process CPU per acknowledged turn, µs (the server's is redisCpuUsPerOp). */
  cpuUsPerOp: number;
  /** redis-server CPU per acknowledged turn, µs (0 for the file backend's runs, which do not use it). */
  redisCpuUsPerOp: number;
  acked: number;
  lost: number;
  duplicated: number;
  /** The sessions' JSON at the end of the run, bytes (what the naive approach reads and writes whole). */
  jsonBytes: number;
  lat?: Samples;
}

type Admin = ReturnType<typeof redisClient>;

/** redis-server's CPU time so far, ms (Linux /proc; 0 elsewhere). */
function serverCpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

/** Empties the server and rewrites its append-only file, waiting until the rewrite is done. */
async function resetServer(admin: Admin): Promise<void> {
  await admin.flushAll();
  await admin.sendCommand(['BGREWRITEAOF']);
  for (;;) {
    const info = await admin.info('persistence');
    if (/aof_rewrite_in_progress:0/.test(info) && /aof_rewrite_scheduled:0/.test(info)) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

let runs = 0;

async function oneRun(root: string, server: RedisServer, admin: Admin, kind: BackendKind, workload: Workload, durationMs: number): Promise<Run> {
  const n = ++runs;
  const place: Place = kind === 'file' ? { dir: `${root}/run${n}` } : { redis: { url: server.url, prefix: kind === 'redis' ? `bench-${n}` : `sess-${n}` } };
  const ids = Array.from({ length: SESSIONS }, (_, i) => `s-${n}-${i}`);
  await createSessions(kind, place, ids);
  const cpu0 = serverCpuMs(server.pid);
  let reports: LoopReport[];
  let lat: Samples | undefined;
  try {
    if (workload === 'in-process') {
      lat = new Samples();
      const backend = await openBackend(kind, place);
      reports = [await clientLoop(backend, 0, CLIENTS, (c) => ids[c % SESSIONS]!, realisticTurns(256), durationMs, lat)];
      await backend.close();
    } else {
      reports = await processes(kind, place, ids, durationMs);
    }
    const redisCpuMs = kind === 'file' ? 0 : serverCpuMs(server.pid) - cpu0;
    const { prompts, jsonBytes } = await readBack(kind, place, ids);
    const losses = countLosses(reports, prompts);
    const ops = reports.reduce((s, r) => s + r.ops, 0);
    return {
      kind,
      rate: reports.reduce((s, r) => s + (r.ops / r.ms) * 1000, 0),
      ops,
      cpuUsPerOp: (reports.reduce((s, r) => s + r.cpuMs, 0) / ops) * 1000,
      redisCpuUsPerOp: (redisCpuMs / ops) * 1000,
      ...losses,
      jsonBytes,
      ...(lat && { lat }),
    };
  } finally {
    if ('dir' in place) fs.rmSync(place.dir, { recursive: true, force: true });
    else await resetServer(admin);
  }
}

async function processes(kind: BackendKind, place: Place, ids: readonly string[], durationMs: number): Promise<LoopReport[]> {
  const children = Array.from({ length: PROCESSES }, (_, p) => startJsonChild([CHILD, kind, JSON.stringify(place), String(p + 1), String(PER_PROCESS), JSON.stringify(ids), String(durationMs)]));
  try {
    for (const c of children) await c.next();
    for (const c of children) c.sendLast('go');
    const reports: LoopReport[] = [];
    for (const c of children) reports.push(await c.next<LoopReport>());
    for (const c of children) if ((await c.exited) !== 0) throw new Error(`a ${kind} host failed`);
    return reports;
  } finally {
    for (const c of children) if (c.child.exitCode === null) c.child.kill();
  }
}

interface Rounds {
  runs: Record<BackendKind, Run[]>;
  /** Redis backend ÷ naive, and ÷ file, per round; the same without catchUp() ÷ naive. */
  vsNaive: number[];
  vsFile: number[];
  writesVsNaive: number[];
}

async function rounds(root: string, server: RedisServer, admin: Admin, workload: Workload, count: number, durationMs: number): Promise<Rounds> {
  const out: Rounds = { runs: { file: [], redis: [], 'redis-writes': [], naive: [] }, vsNaive: [], vsFile: [], writesVsNaive: [] };
  for (let r = 0; r < count; r++) {
    const order = BACKENDS.map((_, i) => BACKENDS[(i + r) % BACKENDS.length]!);
    for (const kind of order) {
      log(`redis-backends ${workload}: round ${r + 1}/${count} ${kind}`);
      out.runs[kind].push(await oneRun(root, server, admin, kind, workload, durationMs));
    }
    const rate = (k: BackendKind) => out.runs[k][r]!.rate;
    out.vsNaive.push(rate('redis') / rate('naive'));
    out.vsFile.push(rate('redis') / rate('file'));
    out.writesVsNaive.push(rate('redis-writes') / rate('naive'));
  }
  return out;
}

/** Mean rate, losses and costs of one backend's runs. */
function summary(runs: readonly Run[]) {
  const sum = (f: (r: Run) => number) => runs.reduce((s, r) => s + f(r), 0);
  const ops = sum((r) => r.ops);
  const lat = new Samples();
  for (const r of runs) if (r.lat) lat.pushAll(r.lat.values());
  return {
    rate: sum((r) => r.rate) / runs.length,
    ops,
    acked: sum((r) => r.acked),
    lost: sum((r) => r.lost),
    duplicated: sum((r) => r.duplicated),
    cpuUsPerOp: sum((r) => r.cpuUsPerOp * r.ops) / ops,
    redisCpuUsPerOp: sum((r) => r.redisCpuUsPerOp * r.ops) / ops,
    jsonKiB: sum((r) => r.jsonBytes) / runs.length / SESSIONS / 1024,
    ...(lat.length > 0 ? lat.summary() : {}),
  };
}

function describe(title: string, r: Rounds): { lines: string[]; s: Record<BackendKind, ReturnType<typeof summary>> } {
  const s = { file: summary(r.runs.file), redis: summary(r.runs.redis), 'redis-writes': summary(r.runs['redis-writes']), naive: summary(r.runs.naive) };
  const lines = [title];
  for (const kind of BACKENDS) {
    const x = s[kind];
    const pct = x.acked === 0 ? 0 : (100 * x.lost) / x.acked;
    const ack = x.p50 === undefined ? '' : `ack p50 ${fmtMs(x.p50)}, p99 ${fmtMs(x.p99!)}; `;
    const server = kind === 'file' ? '' : `, redis-server ${x.redisCpuUsPerOp.toFixed(0)} µs`;
    lines.push(
      `  ${LABEL[kind]}: ${fmtRate(x.rate)} turns  (${ack}cpu/turn: clients ${x.cpuUsPerOp.toFixed(0)} µs${server}); ` +
        `acknowledged turns lost: ${x.lost} of ${x.acked} (${pct.toFixed(1)} %), so ${fmtRate(x.rate * (1 - pct / 100))} kept; duplicated: ${x.duplicated}; session JSON at the end ${x.jsonKiB.toFixed(0)} KiB avg`,
    );
    lines.push(`    per-round rates: ${r.runs[kind].map((run) => fmtRate(run.rate)).join(', ')}`);
  }
  lines.push(`  Redis backend ÷ naive per round: ${ratioList(r.vsNaive)} (median ${fmtRatio(median(r.vsNaive))}); ÷ file: ${ratioList(r.vsFile)} (median ${fmtRatio(median(r.vsFile))})`);
  lines.push(`  Redis backend without catchUp() ÷ naive per round: ${ratioList(r.writesVsNaive)} (median ${fmtRatio(median(r.writesVsNaive))})`);
  return { lines, s };
}

export function run(args: BenchArgs): Promise<BenchResult> {
  return measured(args, 'redis-backends', async (root) => {
    const count = args.quick ? 1 : 3;
    const ms = args.quick ? 1000 : 2000;
    const server = await RedisServer.start();
    const admin = redisClient(server.url);
    await admin.connect();
    try {
      const version = /redis_version:(\S+)/.exec(await admin.info('server'))?.[1] ?? '?';
      for (const kind of BACKENDS) await oneRun(root, server, admin, kind, 'in-process', 300); // warm-up (JIT, page cache, scripts loaded)
      const one = await rounds(root, server, admin, 'in-process', count, ms);
      const many = await rounds(root, server, admin, 'processes', count, ms);
      const a = describe(`${CLIENTS} clients in one process, ${SESSIONS} shared sessions (${CLIENTS / SESSIONS} clients each):`, one);
      const b = describe(`${PROCESSES} processes x ${PER_PROCESS} clients, the same ${SESSIONS} sessions (one writer per process on each):`, many);
      const headline = median(many.vsNaive);
      const ours = (['file', 'redis', 'redis-writes'] as const).flatMap((k) => [a.s[k], b.s[k]]);
      const oursLost = ours.reduce((n, x) => n + x.lost, 0);
      const oursDuplicated = ours.reduce((n, x) => n + x.duplicated, 0);
      const lines = [
        `redis-server ${version} on 127.0.0.1 (appendonly yes, appendfsync always, no RDB), emptied and its AOF rewritten between runs; ~540 B turns; ${count} round(s) x ${ms / 1000} s per backend and workload, order rotated`,
        'each client: one turn, awaited until acknowledged; SessionStore: await catchUp(), addTurn, await flush() (without catchUp(): addTurn, await flush()); naive: GET, modify, SET EX',
        ...a.lines,
        ...b.lines,
      ];
      if (oursLost + oursDuplicated > 0) lines.push(`LOSS: the file or Redis backend lost ${oursLost} and duplicated ${oursDuplicated} acknowledged turns`);
      const result: Measurement = {
        name: 'redis-backends',
        title: `file vs Redis backend vs naive Redis (connect-redis style), ${CLIENTS} clients and ${PROCESSES} processes on shared sessions`,
        ratio: headline,
        target: TARGET,
        goal: `acknowledged turns/s with ${PROCESSES} processes, Redis backend / naive >= ${TARGET}x, and 0 acknowledged turns lost by the file and Redis backends`,
        pass: headline >= TARGET && oursLost === 0 && oursDuplicated === 0,
        extra: [
          { label: `Redis backend / naive, ${CLIENTS} clients in one process`, ratio: median(one.vsNaive) },
          { label: `Redis backend / file, ${CLIENTS} clients in one process`, ratio: median(one.vsFile) },
          { label: `Redis backend / file, ${PROCESSES} processes`, ratio: median(many.vsFile) },
          { label: `Redis backend without catchUp() / naive, ${CLIENTS} clients in one process`, ratio: median(one.writesVsNaive) },
          { label: `Redis backend without catchUp() / naive, ${PROCESSES} processes`, ratio: median(many.writesVsNaive) },
        ],
        figures: {
          clients: CLIENTS,
          processes: PROCESSES,
          clientsPerProcess: PER_PROCESS,
          sessions: SESSIONS,
          rounds: count,
          secondsPerRun: ms / 1000,
          redisVersion: version,
          ...Object.fromEntries(
            BACKENDS.flatMap((k) => {
              const key = k === 'redis-writes' ? 'redisWrites' : k;
              return [
                [`${key}InProcessPerSec`, Math.round(a.s[k].rate)],
                [`${key}InProcessLost`, a.s[k].lost],
                [`${key}InProcessAcked`, a.s[k].acked],
                [`${key}ProcessesPerSec`, Math.round(b.s[k].rate)],
                [`${key}ProcessesLost`, b.s[k].lost],
                [`${key}ProcessesAcked`, b.s[k].acked],
              ];
            }),
          ),
        },
      };
      return { result, lines };
    } finally {
      await admin.close().catch(() => undefined);
      await server.stop();
    }
  });
}

runWhenMain(import.meta.url, run);
