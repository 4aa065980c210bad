/**
 * A writer child for the compaction crash tests (test/compaction-crash/).
 * Commands arrive on stdin and replies leave on stdout, one JSON document a
 * line each (stderr is free for diagnostics):
 *
 *   {"op":"open","dir":D,"fsync":F,"lockTimeoutMs":N,"clock":{"startMs":T,"originMs":M}}  -> {"type":"opened","pid":P}
 *       (closes the store it had open, if any; autoCompact is always false;
 *       the store and the turn timestamps run on clockOf(clock))
 *   {"op":"run","writer":W,"shared":[...],"own":ID,"batch":B,"pauseMs":P}
 *       ensureSession(shared and own), then addTurn forever: turn i goes to
 *       sessionFor(i), prompt `${W}:${i}`; after every B turns `await flush()`
 *       and then {"type":"acked","upTo":i} (so acked means durable)
 *   {"op":"stop"}   -> finishes the batch, flushes, {"type":"stopped","count":N}
 *   {"op":"view"}   -> {"type":"view","sessions":[...]} (listSessions, serialized)
 *   {"op":"close"}  -> {"type":"closed"}, then exits
 */
import readline from 'node:readline';
import { SessionStore } from '../../src/index.js';
import { serializeSessions } from './child-protocol.js';
import { clockOf, type ChildClock } from './child-clock.js';

export interface CrashWriterRun {
  op: 'run';
  writer: string;
  shared: string[];
  own: string;
  batch: number;
  pauseMs: number;
}

export type CrashWriterCommand =
  | { op: 'open'; dir: string; fsync: boolean; lockTimeoutMs: number; clock: ChildClock }
  | CrashWriterRun
  | { op: 'stop' }
  | { op: 'view' }
  | { op: 'close' };

/** Turn i of a run: even turns go to the writer's own session, odd ones cycle through the shared ones. */
export function sessionFor(run: Pick<CrashWriterRun, 'shared' | 'own'>, i: number): string {
  return i % 2 === 0 ? run.own : run.shared[((i - 1) / 2) % run.shared.length]!;
}

const isMain = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;

if (isMain) {
  let store: SessionStore | undefined;
  /** The open store's clock (child-clock.ts): turn timestamps come from it too. */
  let now: () => number = () => {
    throw new Error('crash-writer: store not opened');
  };
  let running: Promise<number> | undefined;
  let stopRequested = false;

  const reply = (message: Record<string, unknown>) => {
    process.stdout.write(JSON.stringify(message) + '\n');
  };
  const fail = (err: unknown) => {
    const e = err as Error & { code?: string };
    reply({ type: 'error', message: `${e.code ?? ''} ${e.message}`, stack: e.stack });
    process.exit(1);
  };

  const runLoop = async (run: CrashWriterRun): Promise<number> => {
    const s = store!;
    for (const id of [...run.shared, run.own]) s.ensureSession(id);
    let i = 0;
    while (!stopRequested) {
      for (let b = 0; b < run.batch; b++, i++) {
        s.addTurn(sessionFor(run, i), { prompt: `${run.writer}:${i}`, response: `re ${run.writer}:${i}`, timestamp: new Date(now()) });
      }
      await s.flush();
      reply({ type: 'acked', upTo: i - 1 });
      if (run.pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, run.pauseMs));
      else await new Promise((resolve) => setImmediate(resolve));
    }
    return i;
  };

  const handle = async (command: CrashWriterCommand): Promise<void> => {
    switch (command.op) {
      case 'open':
        await store?.close();
        stopRequested = false;
        running = undefined;
        now = clockOf(command.clock);
        store = SessionStore.openSync({
          dir: command.dir,
          clock: now,
          fsync: command.fsync,
          lockTimeoutMs: command.lockTimeoutMs,
          autoCompact: false,
          onWarning: (w) => reply({ type: 'warning', code: w.code, message: w.message }),
        });
        reply({ type: 'opened', pid: process.pid });
        return;
      case 'run':
        stopRequested = false;
        running = runLoop(command);
        running.catch(fail);
        return;
      case 'stop': {
        stopRequested = true;
        const count = running ? await running : 0;
        running = undefined;
        await store?.flush();
        reply({ type: 'stopped', count });
        return;
      }
      case 'view':
        reply({ type: 'view', sessions: serializeSessions(store!.listSessions()) });
        return;
      case 'close':
        await store?.close();
        store = undefined;
        reply({ type: 'closed' });
        process.exit(0);
    }
  };

  let chain = Promise.resolve();
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    if (line.trim() === '') return;
    const command = JSON.parse(line) as CrashWriterCommand;
    chain = chain.then(() => handle(command)).catch(fail);
  });
  process.stdin.on('end', () => {
    // The parent went away: nothing more will be asked.
    void chain.then(() => process.exit(0));
  });
}
