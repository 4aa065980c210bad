/**
 * The in-process throughput run of workloads A and B: a fresh store of one
 * peer, `clients` sessions, and one async client per session looping
 * addTurn + await flush() (bench/common.ts addTurnLoop) for `durationMs`.
 * A turn counts once its flush resolved.
 */
import { Samples, addTurnLoop } from '../common.js';
import type { ConversationTurn } from '../../src/index.js';
import { peerModule, peerPath, removePeer, type PeerKind, type PeerOpenOptions } from './peer.js';

export interface LoopRun {
  ops: number;
  ms: number;
  /** Acknowledged turns per second. */
  rate: number;
  cpuMs: number;
  lat: Samples;
}

let runs = 0;

export async function closedLoop(root: string, kind: PeerKind, clients: number, durationMs: number, turns: readonly ConversationTurn[], options: PeerOpenOptions = {}): Promise<LoopRun> {
  const path = peerPath(root, kind, `loop${++runs}`);
  try {
    const store = await (await peerModule(kind)).open(path, options);
    const ids = Array.from({ length: clients }, () => store.createSession());
    await store.flush();
    const lat = new Samples();
    const { ops, ms, cpuMs } = await addTurnLoop(store, ids, turns, durationMs, lat);
    await store.close();
    return { ops, ms, rate: (ops / ms) * 1000, cpuMs, lat };
  } finally {
    removePeer(path);
  }
}

/** Pooled rate, latency and CPU of several runs. */
export function pooled(runs: readonly LoopRun[]): { rate: number; p50: number; p99: number; cpuUsPerOp: number } {
  const lat = new Samples();
  let ops = 0;
  let ms = 0;
  let cpuMs = 0;
  for (const r of runs) {
    lat.pushAll(r.lat.values());
    ops += r.ops;
    ms += r.ms;
    cpuMs += r.cpuMs;
  }
  const { p50, p99 } = lat.summary();
  return { rate: (ops / ms) * 1000, p50, p99, cpuUsPerOp: (cpuMs / ops) * 1000 };
}
