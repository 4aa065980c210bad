/**
 * (e) Short-lived processes sharing a key-value cache: the hook case.
 *
 * 50 node processes are started at once; each opens the cache, sets its own
 * key, makes it durable and exits. Two sides, alternated over several rounds:
 *
 * - journal: KeyValueStore.openSync + set + closeSync (group commit under the
 *   store lock, fsync on: the defaults a hook gets), bench/kv-hook-journal.ts,
 *   importing `session-journal/stores` (build/dist/stores.js), the entry
 *   the README tells short-lived processes to import;
 * - genie: the flat JSON file pattern (read into a Map, set, write a unique
 *   `<file>.<pid>.tmp` and rename; no fsync), bench/kv-hook-genie.ts;
 * - informational: the journal side importing the main entry
 *   (`session-journal`, build/dist/index.js, every tool and integration), to
 *   show what the leaner entry saves;
 * - the floor: processes that import `session-journal/stores` and exit,
 *   touching no store. No KeyValueStore fork can be faster than these, so
 *   genie's time over theirs is the most the headline could reach here.
 *
 * Reported: entries lost by each (the keys missing once all have exited;
 * ours must be 0), and wall time per process (the batch's wall time, from the
 * first spawn to the last exit, over 50; and the median process's own spawn
 * to exit). Headline ratio = genie's batch time / ours (bigger is better),
 * the median over rounds. Goal: >= 0.9x, and 0 entries lost.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KeyValueStore } from '../src/index.js';
import { fmtMs, fmtRatio, log, measured, median, now, runWhenMain, type BenchArgs, type BenchResult, type Measurement } from './common.js';
import { timedRun } from './peers/child-process.js';

const PROCESSES = 50;
const TARGET = 0.9;
const JOURNAL_CHILD = fileURLToPath(new URL('./kv-hook-journal.js', import.meta.url));
const SIDES = {
  journal: (target: string, key: string) => [JOURNAL_CHILD, target, key, 'stores'],
  genie: (target: string, key: string) => [fileURLToPath(new URL('./kv-hook-genie.js', import.meta.url)), target, key],
  'journal-main-entry': (target: string, key: string) => [JOURNAL_CHILD, target, key, 'index'],
  'import-only': (target: string, key: string) => [JOURNAL_CHILD, target, key, 'import-only'],
} as const;
type Side = keyof typeof SIDES;
const isJournal = (side: Side) => side !== 'genie';
/** The floor side writes nothing, so loses nothing. */
const writes = (side: Side) => side !== 'import-only';

interface Batch {
  wallMs: number;
  /** Each process's own spawn-to-exit time. */
  processMs: number[];
  lost: number;
}

async function runBatch(root: string, side: Side, tag: string, processes = PROCESSES): Promise<Batch> {
  const target = isJournal(side) ? path.join(root, `store-${side}-${tag}`) : path.join(root, `cache-${tag}.json`);
  const keys = Array.from({ length: processes }, (_, i) => `executor-${tag}-${i}`);
  const started = now();
  const exits = keys.map(
    (key) =>
      new Promise<number>((resolve, reject) => {
        const t0 = now();
        const child = spawn(process.execPath, SIDES[side](target, key), { stdio: ['ignore', 'ignore', 'inherit'] });
        child.on('error', reject);
        child.on('exit', (code) => (code === 0 ? resolve(now() - t0) : reject(new Error(`${side} process for ${key} exited ${code}`))));
      }),
  );
  const processMs = await Promise.all(exits);
  const wallMs = now() - started;
  let present: number;
  if (!writes(side)) {
    present = processes;
  } else if (isJournal(side)) {
    const kv = KeyValueStore.openSync({ dir: target, maxEntries: 1000, autoCompact: false });
    present = keys.filter((k) => kv.get(k) === `session-of-${k}`).length;
    kv.closeSync();
  } else {
    const cache = JSON.parse(fs.readFileSync(target, 'utf8')) as Record<string, string>;
    present = keys.filter((k) => cache[k] === `session-of-${k}`).length;
  }
  return { wallMs, processMs, lost: processes - present };
}

export function run(args: BenchArgs): Promise<BenchResult> {
  return measured(args, 'kv-processes', (root) => measureIn(args, root));
}

async function measureIn(args: BenchArgs, root: string): Promise<{ result: Measurement; lines: readonly string[] }> {
  const rounds = args.quick ? 1 : 2;
  log('kv-processes: warm-up (one process per side)');
  for (const side of Object.keys(SIDES) as Side[]) await runBatch(root, side, 'warm', 1);
  const batches: Record<Side, Batch[]> = { journal: [], genie: [], 'journal-main-entry': [], 'import-only': [] };
  for (let r = 0; r < rounds; r++) {
    const order: Side[] = r % 2 === 0 ? ['journal', 'genie', 'journal-main-entry', 'import-only'] : ['import-only', 'journal-main-entry', 'genie', 'journal'];
    for (const side of order) {
      log(`kv-processes: round ${r + 1}/${rounds}, ${side}`);
      batches[side].push(await runBatch(root, side, `r${r}`));
    }
  }
  const phases = await coldAndWarm(root, args.quick ? 3 : 9);
  const perRound = batches.journal.map((j, i) => batches.genie[i]!.wallMs / j.wallMs);
  const ratio = median(perRound);
  const mainEntryRatio = median(batches['journal-main-entry'].map((j, i) => batches.genie[i]!.wallMs / j.wallMs));
  const floorRatio = median(batches['import-only'].map((j, i) => batches.genie[i]!.wallMs / j.wallMs));
  const lost = (side: Side) => batches[side].reduce((n, b) => n + b.lost, 0);
  const perProcess = (side: Side) => median(batches[side].map((b) => b.wallMs / PROCESSES));
  const ownTime = (side: Side) => median(batches[side].flatMap((b) => b.processMs));
  const total = rounds * PROCESSES;
  const lines = [
    `${PROCESSES} node processes started at once per batch, each: open, set its own key, make it durable, exit; ${rounds} rounds per side, alternated`,
    `journal: KeyValueStore.openSync + set + closeSync (fsync on); genie: read JSON -> Map, set, write <file>.<pid>.tmp + rename (unique tmp name, no fsync)`,
    `entries lost: journal ${lost('journal')} of ${total}, journal (main entry) ${lost('journal-main-entry')} of ${total}; genie ${lost('genie')} of ${total} (per round: ${batches.genie.map((b) => b.lost).join(', ')})`,
    `wall time per process (batch wall / ${PROCESSES}): journal ${fmtMs(perProcess('journal'))}, journal (main entry) ${fmtMs(perProcess('journal-main-entry'))}, genie ${fmtMs(perProcess('genie'))}`,
    `batch wall time: journal ${batches.journal.map((b) => fmtMs(b.wallMs)).join(', ')}; journal (main entry) ${batches['journal-main-entry'].map((b) => fmtMs(b.wallMs)).join(', ')}; genie ${batches.genie.map((b) => fmtMs(b.wallMs)).join(', ')}`,
    `median process, spawn to exit: journal ${fmtMs(ownTime('journal'))}, journal (main entry) ${fmtMs(ownTime('journal-main-entry'))}, genie ${fmtMs(ownTime('genie'))}`,
    `per-round ratios (genie / journal batch time): ${perRound.map(fmtRatio).join(', ')}; headline = their median`,
    `floor, one fork alone (median of ${phases.runs}, in-process): import of session-journal/stores ${fmtMs(phases.importMs)}; openSync + set + closeSync cold ${fmtMs(phases.coldMs)} (${phases.coldParts}), the same calls again in that process ${fmtMs(phases.warmMs)} (${phases.warmParts})`,
    `  cold - warm = ${fmtMs(phases.coldMs - phases.warmMs)} of V8 compiling the functions a fork runs once (no node:crypto and no CommonJS package load on this path); genie's fork runs a JSON.parse and a write`,
    `floor, 50 at once: processes that import session-journal/stores and exit, touching no store: ${fmtMs(perProcess('import-only'))} per process (batches ${batches['import-only'].map((b) => fmtMs(b.wallMs)).join(', ')}); genie / that = ${fmtRatio(floorRatio)}, the most any fork using the library could reach here`,
  ];
  const pass = ratio >= TARGET && lost('journal') === 0 && lost('journal-main-entry') === 0;
  const result: Measurement = {
    name: 'kv-processes',
    title: `${PROCESSES} short-lived processes setting a key each: KeyValueStore vs a flat JSON file (genie's pattern)`,
    ratio,
    target: TARGET,
    goal: `wall time genie / KeyValueStore >= ${TARGET}x, and KeyValueStore loses 0 entries`,
    pass,
    extra: [
      { label: "the same importing the main entry ('session-journal')", ratio: mainEntryRatio },
      { label: 'floor: genie / processes that only import session-journal/stores', ratio: floorRatio },
    ],
    figures: {
      processes: PROCESSES,
      rounds,
      journalLost: lost('journal'),
      genieLost: lost('genie'),
      entriesPerSide: total,
      journalMsPerProcess: perProcess('journal'),
      genieMsPerProcess: perProcess('genie'),
      journalMedianProcessMs: ownTime('journal'),
      journalMainEntryLost: lost('journal-main-entry'),
      journalMainEntryMsPerProcess: perProcess('journal-main-entry'),
      genieMedianProcessMs: ownTime('genie'),
      forkImportMs: phases.importMs,
      forkColdMs: phases.coldMs,
      forkWarmMs: phases.warmMs,
      importOnlyMsPerProcess: perProcess('import-only'),
    },
  };
  return { result, lines };
}

interface PhaseTimes {
  open: number;
  set: number;
  close: number;
}

/** bench/kv-hook-phases.ts run `runs` times one after another (not at once): a fork's import, and its calls cold and warm. */
async function coldAndWarm(root: string, runs: number): Promise<{ runs: number; importMs: number; coldMs: number; warmMs: number; coldParts: string; warmParts: string }> {
  const child = fileURLToPath(new URL('./kv-hook-phases.js', import.meta.url));
  const dir = path.join(root, 'store-phases');
  const outs: Array<{ importMs: number; cold: PhaseTimes; warm: PhaseTimes }> = [];
  for (let i = 0; i < runs; i++) {
    log(`kv-processes: phases ${i + 1}/${runs}`);
    const { stdout } = await timedRun([child, dir, `phase-${i}`]);
    outs.push(JSON.parse(stdout) as (typeof outs)[number]);
  }
  const total = (p: PhaseTimes): number => p.open + p.set + p.close;
  const parts = (pick: (o: (typeof outs)[number]) => PhaseTimes): string =>
    (['open', 'set', 'close'] as const).map((k) => `${k} ${fmtMs(median(outs.map((o) => pick(o)[k])))}`).join(', ');
  return {
    runs,
    importMs: median(outs.map((o) => o.importMs)),
    coldMs: median(outs.map((o) => total(o.cold))),
    warmMs: median(outs.map((o) => total(o.warm))),
    coldParts: parts((o) => o.cold),
    warmParts: parts((o) => o.warm),
  };
}

runWhenMain(import.meta.url, run);
