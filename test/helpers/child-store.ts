/**
 * A child process for the multi-process tests: it opens a SessionStore (a
 * directory, or a store on Redis for the conformance suite) and runs the parent's commands (see child-protocol.ts) one after the other,
 * answering over the fork IPC channel. "acked N" is sent only after
 * `await store.flush()` resolved, so the parent knows exactly what is durable.
 */
import { performance } from 'node:perf_hooks';
import { SessionStore } from '../../src/index.js';
import { clockOf } from './child-clock.js';
import { tearLiveSegment } from './tear-segment.js';
import { reviveUpdate, serializeSessions, type Command, type Op, type Reply } from './child-protocol.js';

const name = process.argv[2] ?? `child-${process.pid}`;
let store: SessionStore | undefined;
/** A store on Redis: its reads see other processes' commits only after catchUp(); a directory's reads catch up by themselves. */
let remote = false;
/** The instant the parent fixed (OpenCommand.clockMs, moved by the `clock` op), if it did. */
let fixedClock: number | undefined;
/** The open store's clock (child-clock.ts, or the fixed instant): turn timestamps come from it too. */
let now: () => number = () => {
  throw new Error(`${name}: store not opened`);
};

function reply(message: Reply): void {
  if (process.connected) process.send!(message);
}

function opened(): SessionStore {
  if (!store) throw new Error(`${name}: store not opened`);
  return store;
}

const turnOf = (prompt: string) => ({ prompt, response: `re ${prompt}`, timestamp: new Date(now()) });
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

async function run(command: Command): Promise<void> {
  switch (command.op) {
    case 'open':
      fixedClock = command.clockMs;
      now = fixedClock !== undefined ? () => fixedClock! : command.clock === 'system' ? Date.now : clockOf(command.clock);
      {
        const options = {
          clock: now,
          fsync: command.fsync,
          lockTimeoutMs: command.lockTimeoutMs ?? 30_000,
          ...(command.lockStaleMs !== undefined && { lockStaleMs: command.lockStaleMs }),
          ...(command.ttlMs !== undefined && { ttlMs: command.ttlMs }),
          ...(command.maxSessions !== undefined && { maxSessions: command.maxSessions }),
          onWarning: (w: { code: string; message: string }) => reply({ type: 'warning', code: w.code, message: w.message }),
        };
        // A store on Redis opens only asynchronously; a directory keeps the synchronous open the older tests use.
        remote = command.redis !== undefined;
        store = command.redis ? await SessionStore.open({ redis: command.redis, ...options }) : SessionStore.openSync({ dir: command.dir, ...options });
      }
      reply({ type: 'opened', pid: process.pid });
      return;
    case 'write': {
      const s = opened();
      for (const id of command.sessions) s.ensureSession(id);
      let written = 0;
      for (let i = 0; i < command.count && !(command.untilStopped && stopWriting); i++) {
        s.addTurn(command.sessions[i % command.sessions.length]!, turnOf(`${command.writer}:${i}`));
        written = i + 1;
        if ((i + 1) % command.flushEvery === 0 || i === command.count - 1) {
          await flush(s, command.retryFailedFlush);
          reply({ type: 'acked', upTo: i });
          if (command.pauseMs) await new Promise((resolve) => setTimeout(resolve, command.pauseMs));
        }
      }
      if (written % command.flushEvery !== 0) {
        await flush(s, command.retryFailedFlush); // stopped between acknowledgements
        reply({ type: 'acked', upTo: written - 1 });
      }
      reply({ type: 'done', count: written });
      return;
    }
    case 'ops': {
      const s = opened();
      if (!command.noCatchUp) await catchUp(s); // a request handler on Redis catches up before it acts on what other hosts wrote
      let applied = 0;
      for (const op of command.ops) {
        await applyOp(s, op);
        applied++;
      }
      if (command.flush === false) {
        reply({ type: 'applied', applied });
        return;
      }
      try {
        await s.flush();
      } catch (err) {
        const e = err as Error & { code?: string };
        if (!command.tolerateFlushFailure || typeof e.code !== 'string') throw err;
        reply({ type: 'flush-failed', code: e.code, message: e.message });
        return;
      }
      reply({ type: 'flushed', applied });
      return;
    }
    case 'list':
      await catchUp(opened());
      reply({ type: 'list', sessions: serializeSessions(opened().listSessions()) });
      return;
    case 'get': {
      await catchUp(opened());
      const session = opened().getSession(command.id);
      reply({ type: 'session', session: session ? serializeSessions([session])[0]! : null });
      return;
    }
    case 'catch-up':
      try {
        await opened().catchUp();
        reply({ type: 'caught-up' });
      } catch (err) {
        const e = err as Error & { code?: string };
        reply({ type: 'caught-up', code: e.code ?? 'NO_CODE', message: e.message });
      }
      return;
    case 'tear':
      reply({ type: 'torn', file: tearLiveSegment(opened().dir, command.text) });
      return;
    case 'close':
      await store?.close();
      store = undefined;
      reply({ type: 'closed' });
      process.disconnect();
      return;
  }
}

/** A flush that, with `retry`, is called again after each rejection until it resolves (the rejections reported). */
async function flush(s: SessionStore, retry: boolean | undefined): Promise<void> {
  for (let backoffMs = 10; ; backoffMs = Math.min(200, backoffMs * 2)) {
    try {
      await s.flush();
      return;
    } catch (err) {
      const e = err as Error & { code?: string };
      if (!retry || typeof e.code !== 'string') throw err;
      reply({ type: 'flush-failed', code: e.code, message: e.message });
      // A caller's own pace between attempts (while the server is down each attempt fails at once).
      await new Promise((resolve) => setTimeout(resolve, backoffMs));
    }
  }
}

/**
 * The parent asks after another process acknowledged something: on Redis a
 * read sees it only after catchUp() (a directory's read is left to catch up
 * by itself, which is what the tests check there). A store that cannot be
 * read rejects it; the read that follows then answers from the view and
 * reports CATCH_UP_FAILED itself, as reads do.
 */
async function catchUp(s: SessionStore): Promise<void> {
  if (!remote) return;
  try {
    await s.catchUp();
  } catch {
    // reported by the read
  }
}

async function applyOp(s: SessionStore, op: Op): Promise<void> {
  switch (op.k) {
    case 'ensure':
      return s.ensureSession(op.id);
    case 'turn':
      return s.addTurn(op.id, turnOf(op.prompt));
    case 'conv':
      return s.setCodexConversationId(op.id, op.cid);
    case 'update':
      return s.updateSession(op.id, reviveUpdate(op.data));
    case 'reset':
      return s.resetSession(op.id);
    case 'delete':
      s.deleteSession(op.id);
      return;
    case 'get':
      s.getSession(op.id);
      return;
    case 'list':
      s.listSessions();
      return;
    case 'yield':
      return tick();
    case 'stall': {
      const until = performance.now() + op.ms;
      while (performance.now() < until) {
        // spin: no event-loop turn, so no commit of ours can start
      }
      return;
    }
    case 'flush':
      return s.flush();
    case 'clock':
      if (fixedClock === undefined) throw new Error(`${name}: the clock op needs a store opened with clockMs`);
      fixedClock = op.ms;
      return;
  }
}

let chain = Promise.resolve();
/** Set by a stop-writing command, which is not queued behind the write it ends. */
let stopWriting = false;

process.on('message', (command: Command) => {
  if (command.op === 'stop-writing') {
    stopWriting = true;
    return;
  }
  chain = chain
    .then(() => run(command))
    .catch((err: Error) => {
      reply({ type: 'error', message: err.message, ...(err.stack ? { stack: err.stack } : {}) });
      process.exitCode = 1;
      process.disconnect();
    });
});

// The parent is gone (test finished or crashed): stop, whatever was running.
process.on('disconnect', () => {
  setTimeout(() => process.exit(0), 100).unref();
});
