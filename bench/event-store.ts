/**
 * JournalEventStore against the SDK's in-memory example store
 * (InMemoryEventStore, examples/shared/inMemoryEventStore.js), measured in
 * the same run.
 *
 * (1) storeEvent throughput: 64 concurrent streams, each awaiting storeEvent
 *     one message at a time (as the transport does), ~250-byte notifications.
 *     A message counts once storeEvent resolved: for the journal, once it is
 *     committed (and fsynced with fsync on).
 * (2) replayEventsAfter latency: a store holding STREAMS x PER_STREAM events;
 *     each call resumes one stream from its middle (PER_STREAM/2 events sent).
 *     The journal store also pays a catch-up (one fstat) per call.
 *
 * Ratios are journal / in-memory for throughput and in-memory / journal for
 * latency, so above 1 means the journal store is faster. Informational: the
 * in-memory store keeps nothing across a restart, so no goal is set.
 */
import { InMemoryEventStore } from '@modelcontextprotocol/sdk/examples/shared/inMemoryEventStore.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { JournalEventStore } from '../src/index.js';
import { Samples, fmtMs, fmtRate, isMain, loadAverage, log, now, parseArgs, publish, rng, tempRoot, text, type BenchArgs } from './common.js';

interface Store {
  storeEvent(streamId: string, message: JSONRPCMessage): Promise<string>;
  replayEventsAfter(lastEventId: string, options: { send: (id: string, m: JSONRPCMessage) => Promise<void> }): Promise<string>;
}

const CONCURRENT_STREAMS = 64;

function messages(count: number): JSONRPCMessage[] {
  const random = rng(42);
  return Array.from({ length: count }, (_, i) => ({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: { i, text: text(random, 180) } } }) as JSONRPCMessage);
}

async function storeThroughput(store: Store, total: number, msgs: JSONRPCMessage[]): Promise<{ perSecond: number; lat: Samples }> {
  const lat = new Samples();
  const perStream = Math.ceil(total / CONCURRENT_STREAMS);
  const t0 = now();
  await Promise.all(
    Array.from({ length: CONCURRENT_STREAMS }, async (_, s) => {
      for (let i = 0; i < perStream; i++) {
        const start = now();
        await store.storeEvent(`stream-${s}`, msgs[(s * perStream + i) % msgs.length]!);
        lat.push(now() - start);
      }
    }),
  );
  return { perSecond: (perStream * CONCURRENT_STREAMS) / ((now() - t0) / 1000), lat };
}

async function replayLatency(store: Store, streams: number, perStream: number, calls: number, msgs: JSONRPCMessage[]): Promise<Samples & { sent?: number }> {
  const middles: string[] = [];
  // Streams fill concurrently, each in order, as live transports would.
  await Promise.all(
    Array.from({ length: streams }, async (_, s) => {
      for (let i = 0; i < perStream; i++) {
        const id = await store.storeEvent(`replay-${s}`, msgs[i % msgs.length]!);
        if (i === perStream / 2 - 1) middles[s] = id;
      }
    }),
  );
  const lat = new Samples();
  let sent = 0;
  const send = async () => void sent++;
  for (let c = 0; c < calls; c++) {
    const start = now();
    await store.replayEventsAfter(middles[c % streams]!, { send });
    lat.push(now() - start);
  }
  return Object.assign(lat, { sent });
}

export async function main(args: BenchArgs): Promise<void> {
  const started = now();
  const loadBefore = loadAverage();
  const total = args.quick ? 4_000 : 20_000;
  const streams = args.quick ? 50 : 200;
  const perStream = 100;
  const calls = args.quick ? 200 : 1_000;
  const msgs = messages(1000);
  const { root, cleanup } = tempRoot('events');
  const lines: string[] = [];
  const figures: Record<string, number | string> = {};
  const extra: Array<{ label: string; ratio: number }> = [];

  log('in-memory store');
  const memStore = await storeThroughput(new InMemoryEventStore(), total, msgs);
  const memReplay = await replayLatency(new InMemoryEventStore(), streams, perStream, calls, msgs);
  const expectedSent = calls * (perStream / 2);
  // Its ids are `${stream}_${Date.now()}_${random}` sorted as strings: events stored in the same millisecond replay in random order, so some are skipped or repeated.
  if (memReplay.sent !== expectedSent) lines.push(`note: InMemoryEventStore sent ${memReplay.sent} events on replay where ${expectedSent} were missed: its ids sort by a random suffix within a millisecond`);
  lines.push(`InMemoryEventStore: storeEvent ${fmtRate(memStore.perSecond)} (p50 ${fmtMs(memStore.lat.summary().p50)}); replay p50 ${fmtMs(memReplay.summary().p50)} p99 ${fmtMs(memReplay.summary().p99)}`);
  figures.memoryStorePerSecond = Math.round(memStore.perSecond);
  figures.memoryReplayP50Ms = memReplay.summary().p50;

  let headline = NaN;
  for (const fsync of [true, false]) {
    const label = `fsync ${fsync ? 'on' : 'off'}`;
    log(`journal store, ${label}`);
    const a = await JournalEventStore.open({ dir: `${root}/store-${fsync}`, fsync, autoCompact: false });
    const stored = await storeThroughput(a as Store, total, msgs);
    await a.close();
    const b = await JournalEventStore.open({ dir: `${root}/replay-${fsync}`, fsync, autoCompact: false });
    const replay = await replayLatency(b as Store, streams, perStream, calls, msgs);
    if (replay.sent !== expectedSent) throw new Error(`JournalEventStore replayed ${replay.sent} events, expected ${expectedSent}`);
    await b.close();
    const storeRatio = stored.perSecond / memStore.perSecond;
    const replayRatio = memReplay.summary().p50 / replay.summary().p50;
    const s = stored.lat.summary();
    const r = replay.summary();
    lines.push(`JournalEventStore ${label}: storeEvent ${fmtRate(stored.perSecond)} (p50 ${fmtMs(s.p50)}, p99 ${fmtMs(s.p99)}); replay p50 ${fmtMs(r.p50)} p99 ${fmtMs(r.p99)}`);
    figures[`journalStorePerSecond_${fsync ? 'fsync' : 'nofsync'}`] = Math.round(stored.perSecond);
    figures[`journalReplayP50Ms_${fsync ? 'fsync' : 'nofsync'}`] = r.p50;
    extra.push({ label: `storeEvent throughput journal/in-memory, ${label}`, ratio: storeRatio });
    extra.push({ label: `replay latency in-memory/journal (p50), ${label}`, ratio: replayRatio });
    if (fsync) headline = storeRatio;
  }
  lines.push(`(${total} storeEvent calls over ${CONCURRENT_STREAMS} concurrent streams; replay: ${streams} streams x ${perStream} events, ${calls} resumes from mid-stream)`);
  cleanup();
  publish(
    args,
    {
      name: 'event-store',
      title: 'JournalEventStore vs the SDK in-memory example store',
      ratio: headline,
      target: 0,
      goal: 'informational (durable vs in-memory); storeEvent throughput journal/in-memory with fsync on',
      pass: true,
      figures,
      extra,
      loadBefore,
      loadAfter: loadAverage(),
      seconds: (now() - started) / 1000,
    },
    lines,
  );
}

if (isMain(import.meta.url)) await main(parseArgs());
