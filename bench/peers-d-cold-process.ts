/**
 * Issue 11, workload D: a cold short-lived process (a hook fork).
 *
 * `node bench/peers/open-child.js <kind> ...` opens a store holding 1,000
 * small sessions (prepared before timing, one short turn each), reads one,
 * adds one turn durably, closes and exits. Wall time from spawn to exit,
 * median of the runs, the peers interleaved run by run: session-journal
 * against SQLite FULL (the goal) and genie's flat file (no fsync).
 *
 * Also: the same with a read only, and the import cost of the store's
 * module (`await import(build/dist/stores.js)`, the `session-journal/stores`
 * bundle a short-lived process imports, against a bare `node -e ""`; goal:
 * at most 15 ms more than bare node). For reference, the same for the main
 * entry (build/dist/index.js) and for an ES module of one line (what any ES
 * import costs: the loader's own start).
 *
 * And the floor of the open: peers/parse-floor-child.js, in a cold process,
 * reads our store and JSON.parses each line, nothing else (no envelope
 * check, framing or reducer). The "at the parse floor" line replaces our
 * open + read by it in our wall time: if even that stays below SQLite, the
 * parsing stops D; if not, the rest of our open does.
 *
 * Ratio: median wall time, SQLite FULL ÷ session-journal. Goal >= 1.0x.
 */
import { fileURLToPath } from 'node:url';
import { fmtMs, fmtRatio, log, measured, median, runWhenMain, type BenchArgs, type BenchResult, type Measurement } from './common.js';
import { timedRun } from './peers/child-process.js';
import { preparedId, preparedSessions, smallTurns } from './peers/dataset.js';
import { peerModule, peerPath, type PeerKind } from './peers/peer.js';

/** The store kind of our side: SessionStore, opened from `session-journal/stores` (bench/peers/session-journal.ts). */
const OURS_COLD: PeerKind = 'session-journal';
const PEERS: readonly PeerKind[] = [OURS_COLD, 'sqlite', 'genie-file'];
const ENTRIES = 1000;
const TARGET = 1;
const IMPORT_BUDGET_MS = 15;
const CHILD = fileURLToPath(new URL('./peers/open-child.js', import.meta.url));
const FLOOR_CHILD = fileURLToPath(new URL('./peers/parse-floor-child.js', import.meta.url));
const STORES_ENTRY = fileURLToPath(new URL('../dist/stores.js', import.meta.url)); // the bundle a short-lived process loads
const MAIN_ENTRY = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const ONE_LINE_MODULE = 'data:text/javascript,export const x = 1;';

type Action = 'read' | 'read-write';

interface ChildOut {
  openMs: number;
  maxRssKb: number;
}

export function run(args: BenchArgs): Promise<BenchResult> {
  return measured(args, 'peers-d', async (root) => {
    const runs = args.quick ? 5 : 20;
    const sessions = preparedSessions(ENTRIES, 1, smallTurns(ENTRIES));
    const paths = new Map<PeerKind, string>();
    for (const kind of PEERS) {
      const path = peerPath(root, kind, 'cold');
      await (await peerModule(kind)).load(path, sessions);
      paths.set(kind, path);
    }
    const id = preparedId(ENTRIES / 2);
    const wall = new Map<string, number[]>();
    const open = new Map<string, number[]>();
    const push = (m: Map<string, number[]>, key: string, x: number): void => void (m.get(key) ?? m.set(key, []).get(key)!).push(x);
    const importOf = (specifier: string) => ['--input-type=module', '-e', `await import(${JSON.stringify(specifier)})`];
    const importArgs = { bare: ['-e', ''], package: importOf(STORES_ENTRY), 'main entry': importOf(MAIN_ENTRY), 'one-line module': importOf(ONE_LINE_MODULE) };
    await timedRun([CHILD, OURS_COLD, paths.get(OURS_COLD)!, 'read', id]); // warm-up: page cache, compiled code cache
    for (let i = 0; i < runs; i++) {
      log(`peers-d: run ${i + 1}/${runs}`);
      // Rotate the order so a burst of load does not always hit the same peer.
      const order = PEERS.map((_, k) => PEERS[(i + k) % PEERS.length]!);
      for (const action of ['read-write', 'read'] as const) {
        for (const kind of order) {
          const { ms, stdout } = await timedRun([CHILD, kind, paths.get(kind)!, action, id]);
          push(wall, `${kind} ${action}`, ms);
          push(open, `${kind} ${action}`, (JSON.parse(stdout) as ChildOut).openMs);
        }
      }
      for (const [name, argv] of i % 2 === 0 ? Object.entries(importArgs) : Object.entries(importArgs).reverse()) push(wall, `import ${name}`, (await timedRun(argv)).ms);
      push(open, 'parse floor', (JSON.parse((await timedRun([FLOOR_CHILD, paths.get(OURS_COLD)!])).stdout) as ChildOut).openMs);
    }
    const w = (key: string): number => median(wall.get(key)!);
    const o = (key: string): number => median(open.get(key)!);
    const ratio = w('sqlite read-write') / w(`${OURS_COLD} read-write`);
    const importExtra = w('import package') - w('import bare');
    /** Our read + write wall time with our open + read replaced by the parse floor's (see the header). */
    const atFloorMs = w(`${OURS_COLD} read-write`) - o(`${OURS_COLD} read-write`) + o('parse floor');
    const floorRatio = w('sqlite read-write') / atFloorMs;
    const lines = [`${ENTRIES} sessions of one short turn prepared in each store; median of ${runs} runs, peers interleaved; wall = spawn to exit`];
    for (const action of ['read-write', 'read'] as Action[]) {
      const what = action === 'read' ? 'open + read one' : 'open + read one + write one durably';
      for (const kind of PEERS) lines.push(`${what}, ${kind.padEnd(15)}: wall ${fmtMs(w(`${kind} ${action}`))} (in-process open + read ${fmtMs(o(`${kind} ${action}`))})`);
    }
    lines.push(`node -e "" ${fmtMs(w('import bare'))}; + import of session-journal/stores ${fmtMs(w('import package'))}: ${fmtMs(importExtra)} more (goal <= ${IMPORT_BUDGET_MS} ms: ${importExtra <= IMPORT_BUDGET_MS ? 'PASS' : 'MISS'})`);
    lines.push(`for reference: + import of the main entry ${fmtMs(w('import main entry') - w('import bare'))} more; + import of a one-line ES module ${fmtMs(w('import one-line module') - w('import bare'))} more (the ES loader's own start, part of every import above)`);
    lines.push(
      `floor of the open: JSON.parse of each line of our store and nothing else, cold: ${fmtMs(o('parse floor'))} (our open + read ${fmtMs(o(`${OURS_COLD} read-write`))}); our wall with the open at that floor ${fmtMs(atFloorMs)}, so SQLite ÷ that = ${fmtRatio(floorRatio)}: ${floorRatio >= TARGET ? 'the floor does not stop D, the rest of our open does' : 'even an open that only parses misses D'}`,
    );
    lines.push(`genie-file does not fsync and takes no lock, so it is neither durable nor safe with two processes; SQLite's close() checkpoints the WAL`);
    const result: Measurement = {
      name: 'peers-d',
      title: `D: cold process, ${ENTRIES}-entry store, read one + write one durably, session-journal vs SQLite FULL`,
      ratio,
      target: TARGET,
      goal: `median wall time spawn to exit, SQLite FULL / session-journal >= ${TARGET}x`,
      pass: ratio >= TARGET,
      figures: {
        oursReadWriteMs: w(`${OURS_COLD} read-write`),
        sqliteReadWriteMs: w('sqlite read-write'),
        genieReadWriteMs: w('genie-file read-write'),
        oursReadMs: w(`${OURS_COLD} read`),
        sqliteReadMs: w('sqlite read'),
        genieReadMs: w('genie-file read'),
        bareNodeMs: w('import bare'),
        importMs: w('import package'),
        importExtraMs: importExtra,
        mainEntryImportExtraMs: w('import main entry') - w('import bare'),
        oneLineModuleImportExtraMs: w('import one-line module') - w('import bare'),
        parseFloorOpenMs: o('parse floor'),
        atParseFloorMs: atFloorMs,
        oursKind: OURS_COLD,
        runs,
      },
      extra: [
        { label: 'D vs genie-file, read + write (genie not durable)', ratio: w('genie-file read-write') / w(`${OURS_COLD} read-write`) },
        { label: 'D read-only open vs SQLite', ratio: w('sqlite read') / w(`${OURS_COLD} read`) },
        { label: 'D at the parse floor: SQLite / our wall with the open replaced by JSON.parse of each line', ratio: floorRatio },
        { label: `D import: (bare node + ${IMPORT_BUDGET_MS} ms) / with session-journal/stores imported`, ratio: (w('import bare') + IMPORT_BUDGET_MS) / w('import package'), target: 1, pass: importExtra <= IMPORT_BUDGET_MS },
      ],
    };
    lines.push(`(ratios: peer ÷ ours, above 1 = session-journal faster; ${fmtRatio(ratio)} vs SQLite)`);
    return { result, lines };
  });
}

runWhenMain(import.meta.url, run);
