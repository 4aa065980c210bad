/**
 * (d) Durable cost per mutation: whole-file rewrite vs journal.
 *
 * State: 100 sessions x 20 turns, prompts and responses of 200-400 B each
 * (~1.3 MB of JSON). The mutation is addTurn on one of the sessions.
 *
 * Baseline, the naive FileSessionStorage way: per mutation, JSON.stringify the
 * whole session map, write a temp file, fsync it, rename it over the store
 * file. (No directory fsync: that would only make the baseline slower.) The
 * SessionStorage API is synchronous, so each mutation's rewrite is too.
 *
 * Candidate: SessionStore (fsync: true), the same state already in its journal.
 *
 *   (i)  sequential: one mutation, await its durability, repeat
 *   (ii) concurrent: 64 clients each looping mutation + await durability
 *        (group commit for the journal; the naive store still rewrites per
 *        mutation). For context only, also a "coalesced rewrite" store that
 *        group-commits rewrites (one rewrite covers every mutation queued).
 *
 * Goal: cost per mutation >= 50x lower than the baseline's.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SessionStore } from '../src/index.js';
import type { ConversationTurn, JournalWarning, SessionData } from '../src/index.js';
import { between, fmtRatio, fmtUs, runWhenMain, journalBytes, log, median, now, rng, text, type BenchArgs, type BenchResult, measured, type Measurement } from './common.js';

const SESSIONS = 100;
const TURNS = 20;
const CLIENTS = 64;
const TARGET = 50;

interface Run {
  ops: number;
  ms: number;
  /** Bytes written per durable write (rewrite size, or journal bytes per mutation). */
  bytesPerOp: number;
}
const costMs = (r: Run): number => r.ms / r.ops;

function makeTurns(seed: number, n: number): ConversationTurn[] {
  const random = rng(seed);
  const at = new Date();
  return Array.from({ length: n }, () => ({ prompt: text(random, between(random, 200, 400)), response: text(random, between(random, 200, 400)), timestamp: at }));
}

/** The naive store: the whole map is the file. */
class RewriteStore {
  private readonly sessions = new Map<string, SessionData>();
  private readonly file: string;
  private readonly tmp: string;
  bytesWritten = 0;
  writes = 0;
  private dirty: Array<() => void> = [];
  private writing: Promise<void> | undefined;

  constructor(dir: string, initial: readonly SessionData[]) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.file = path.join(dir, 'sessions.json');
    this.tmp = `${this.file}.tmp-${process.pid}`;
    for (const s of initial) this.sessions.set(s.id, { ...s, createdAt: new Date(s.createdAt), lastAccessedAt: new Date(s.lastAccessedAt), turns: s.turns.slice() });
    this.persistSync();
    this.bytesWritten = 0;
    this.writes = 0;
  }

  get ids(): string[] {
    return [...this.sessions.keys()];
  }

  /** Naive: mutate, then rewrite the whole file durably before returning. */
  addTurn(id: string, turn: ConversationTurn): void {
    this.apply(id, turn);
    this.persistSync();
  }

  /** Coalesced: mutate, and resolve after the next rewrite that includes it. */
  addTurnCoalesced(id: string, turn: ConversationTurn): Promise<void> {
    this.apply(id, turn);
    return new Promise((resolve) => {
      this.dirty.push(resolve);
      if (!this.writing) this.writing = this.drain();
    });
  }

  private apply(id: string, turn: ConversationTurn): void {
    const s = this.sessions.get(id);
    if (!s) return;
    s.turns.push(turn);
    s.lastAccessedAt = new Date();
  }

  private serialize(): string {
    return JSON.stringify({ version: 1, sessions: [...this.sessions.values()] });
  }

  private persistSync(): void {
    const data = this.serialize();
    const fd = fs.openSync(this.tmp, 'w', 0o600);
    try {
      const n = fs.writeSync(fd, data);
      fs.fsyncSync(fd);
      this.bytesWritten += n;
      this.writes++;
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(this.tmp, this.file);
  }

  private async drain(): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    while (this.dirty.length > 0) {
      const waiting = this.dirty;
      this.dirty = [];
      const data = this.serialize();
      const fh = await fs.promises.open(this.tmp, 'w', 0o600);
      try {
        const { bytesWritten } = await fh.write(data);
        await fh.sync();
        this.bytesWritten += bytesWritten;
        this.writes++;
      } finally {
        await fh.close();
      }
      await fs.promises.rename(this.tmp, this.file);
      for (const resolve of waiting) resolve();
    }
    this.writing = undefined;
  }
}

async function prefill(dir: string): Promise<SessionData[]> {
  const store = SessionStore.openSync({ dir, fsync: false });
  const turns = makeTurns(1, SESSIONS * TURNS);
  const ids = Array.from({ length: SESSIONS }, () => store.createSession());
  let k = 0;
  for (let t = 0; t < TURNS; t++) for (const id of ids) store.addTurn(id, turns[k++]!);
  await store.flush();
  const sessions = store.listSessions().map((s) => ({ ...s, turns: s.turns.slice() }));
  await store.close();
  return sessions;
}

async function naiveSequential(dir: string, initial: SessionData[], ms: number, turns: ConversationTurn[]): Promise<Run> {
  const store = new RewriteStore(dir, initial);
  const ids = store.ids;
  let ops = 0;
  const start = now();
  while (now() - start < ms) {
    store.addTurn(ids[ops % ids.length]!, turns[ops % turns.length]!);
    ops++;
  }
  return { ops, ms: now() - start, bytesPerOp: store.bytesWritten / store.writes };
}

async function naiveConcurrent(dir: string, initial: SessionData[], ms: number, turns: ConversationTurn[], coalesced: boolean): Promise<Run> {
  const store = new RewriteStore(dir, initial);
  const ids = store.ids;
  let ops = 0;
  const start = now();
  const end = start + ms;
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      let k = c;
      while (now() < end) {
        const id = ids[k % ids.length]!;
        const turn = turns[k % turns.length]!;
        k += CLIENTS;
        if (coalesced) {
          await store.addTurnCoalesced(id, turn);
        } else {
          store.addTurn(id, turn); // durable on return
          await new Promise((resolve) => setImmediate(resolve)); // let the other clients in
        }
        ops++;
      }
    }),
  );
  return { ops, ms: now() - start, bytesPerOp: store.bytesWritten / store.writes };
}

async function journalRun(template: string, dir: string, ms: number, turns: ConversationTurn[], clients: number, onWarning: (w: JournalWarning) => void): Promise<Run> {
  fs.cpSync(template, dir, { recursive: true });
  const store = SessionStore.openSync({ dir, fsync: true, onWarning, autoCompact: false });
  const ids = store.listSessions().map((s) => s.id);
  if (ids.length !== SESSIONS) throw new Error(`expected ${SESSIONS} sessions, found ${ids.length}`);
  const size0 = journalBytes(dir);
  let ops = 0;
  const start = now();
  const end = start + ms;
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      let k = c;
      while (now() < end) {
        store.addTurn(ids[k % ids.length]!, turns[k % turns.length]!);
        k += clients;
        await store.flush();
        ops++;
      }
    }),
  );
  const elapsed = now() - start;
  await store.close();
  return { ops, ms: elapsed, bytesPerOp: (journalBytes(dir) - size0) / ops };
}

export function run(args: BenchArgs): Promise<BenchResult> {
  return measured(args, 'rewrite', (root) => measureIn(args, root));
}

/** The measurement itself, in a temp root of its own (see measured()). */
async function measureIn(args: BenchArgs, root: string): Promise<{ result: Measurement; lines: readonly string[] }> {
  const rounds = args.quick ? 3 : 5;
  const seconds = args.quick ? 1 : 1.5;
  const ms = seconds * 1000;
  const warnings = new Map<string, number>();
  const onWarning = (w: JournalWarning): void => {
    warnings.set(w.code, (warnings.get(w.code) ?? 0) + 1);
  };
  const template = path.join(root, 'template');
  const initial = await prefill(template);
  const turns = makeTurns(2, 512);
  let n = 0;
  const dir = (): string => path.join(root, `run${++n}`);
  const drop = (d: string): void => fs.rmSync(d, { recursive: true, force: true });
  type Kind = 'naiveSeq' | 'oursSeq' | 'naiveConc' | 'oursConc' | 'coalescedConc';
  const runs: Record<Kind, Run[]> = { naiveSeq: [], oursSeq: [], naiveConc: [], oursConc: [], coalescedConc: [] };
  const once = async (kind: Kind, duration: number): Promise<Run> => {
    const d = dir();
    try {
      switch (kind) {
        case 'naiveSeq':
          return await naiveSequential(d, initial, duration, turns);
        case 'naiveConc':
          return await naiveConcurrent(d, initial, duration, turns, false);
        case 'coalescedConc':
          return await naiveConcurrent(d, initial, duration, turns, true);
        case 'oursSeq':
          return await journalRun(template, d, duration, turns, 1, onWarning);
        case 'oursConc':
          return await journalRun(template, d, duration, turns, CLIENTS, onWarning);
      }
    } finally {
      drop(d);
    }
  };
  log('rewrite-vs-journal: warm-up');
  for (const kind of ['naiveSeq', 'oursSeq', 'naiveConc', 'oursConc', 'coalescedConc'] as const) await once(kind, 250);
  for (let r = 0; r < rounds; r++) {
    const order: Kind[] = r % 2 === 0 ? ['naiveSeq', 'oursSeq', 'naiveConc', 'oursConc', 'coalescedConc'] : ['coalescedConc', 'oursConc', 'naiveConc', 'oursSeq', 'naiveSeq'];
    for (const kind of order) {
      log(`rewrite-vs-journal: round ${r + 1}/${rounds} ${kind} (${seconds} s)`);
      runs[kind].push(await once(kind, ms));
    }
  }
  const pooled = (rs: Run[]): Run => {
    const ops = rs.reduce((s, r) => s + r.ops, 0);
    return { ops, ms: rs.reduce((s, r) => s + r.ms, 0), bytesPerOp: rs.reduce((s, r) => s + r.bytesPerOp * r.ops, 0) / ops };
  };
  const p = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, pooled(v)])) as Record<Kind, Run>;
  // Headline ratios: the median over rounds of the per-round ratio (robust to load bursts).
  const perRound = (a: Kind, b: Kind): number[] => runs[a].map((r, i) => costMs(r) / costMs(runs[b][i]!));
  const seqRounds = perRound('naiveSeq', 'oursSeq');
  const concRounds = perRound('naiveConc', 'oursConc');
  const seqRatio = median(seqRounds);
  const concRatio = median(concRounds);
  const coalescedRatio = median(perRound('coalescedConc', 'oursConc'));
  const row = (label: string, r: Run, unit: string): string =>
    `${label.padEnd(44)} ${fmtUs(costMs(r)).padStart(9)}/mutation  (${Math.round((r.ops / r.ms) * 1000).toLocaleString('en-US')}/s; ${(r.bytesPerOp / 1024).toFixed(r.bytesPerOp > 10_240 ? 0 : 2)} KiB ${unit})`;
  const lines = [
    `state: ${SESSIONS} sessions x ${TURNS} turns (prompt/response 200-400 B each); mutation = addTurn; ${rounds} rounds x ${seconds} s per mode`,
    `(i) sequential: one mutation, then wait for durability`,
    `    ${row('baseline rewrite+fsync+rename', p.naiveSeq, 'written per rewrite')}`,
    `    ${row('candidate SessionStore fsync:true', p.oursSeq, 'appended per mutation')}`,
    `(ii) concurrent: ${CLIENTS} clients, mutation + await durability`,
    `    ${row('baseline rewrite+fsync+rename per mutation', p.naiveConc, 'written per rewrite')}`,
    `    ${row('candidate SessionStore fsync:true', p.oursConc, 'appended per mutation')}`,
    `    ${row('context: coalesced rewrite (group-committed)', p.coalescedConc, 'written per rewrite')}  -> journal is ${fmtRatio(coalescedRatio)} cheaper`,
    `per-round ratios: sequential ${seqRounds.map(fmtRatio).join(', ')}; concurrent ${concRounds.map(fmtRatio).join(', ')} (headline: medians; costs above are pooled)`,
    `goal check: sequential ${fmtRatio(seqRatio)} ${seqRatio >= TARGET ? 'PASS' : 'MISS'}; concurrent ${fmtRatio(concRatio)} ${concRatio >= TARGET ? 'PASS' : 'MISS'} (goal >= ${TARGET}x lower cost)`,
  ];
  if (warnings.size > 0) lines.push(`warnings: ${[...warnings].map(([c, k]) => `${c} x${k}`).join(', ')}`);
  const result: Measurement = {
    name: 'rewrite-vs-journal',
    title: 'durable cost per mutation, whole-file rewrite vs journal (100 sessions x 20 turns)',
    ratio: concRatio,
    target: TARGET,
    goal: `baseline cost / candidate cost >= ${TARGET}x (headline: concurrent, group-committed)`,
    pass: concRatio >= TARGET,
    extra: [
      { label: 'sequential (one mutation at a time)', ratio: seqRatio, target: TARGET, pass: seqRatio >= TARGET },
      { label: 'concurrent vs coalesced rewrite', ratio: coalescedRatio },
    ],
    figures: {
      naiveSeqUs: costMs(p.naiveSeq) * 1000,
      oursSeqUs: costMs(p.oursSeq) * 1000,
      naiveConcUs: costMs(p.naiveConc) * 1000,
      oursConcUs: costMs(p.oursConc) * 1000,
      coalescedConcUs: costMs(p.coalescedConc) * 1000,
      rewriteKiB: Math.round(p.naiveSeq.bytesPerOp / 1024),
      journalBytesPerMutation: Math.round(p.oursSeq.bytesPerOp),
      seqRatio,
      concRatio,
      rounds,
      secondsPerMode: seconds,
    },
  };
  return { result, lines };
}

runWhenMain(import.meta.url, run);
