import fs from 'node:fs';
import { once } from 'node:events';
import type { Transform, Writable } from 'node:stream';
import stableStringify from 'fast-json-stable-stringify';
import ndjson from 'ndjson';
import { ErrorCodes, SessionJournalError } from '../errors.js';
import { parseIsoInstant } from '../journal/dates.js';
import { Journal } from '../journal/journal.js';
import type { JournalRecord } from '../journal/record-codec.js';
import { prepareStoreDir } from '../journal/store-files.js';
import { formatWarning, type JournalWarning } from '../journal/warnings.js';
import { listHistorySegments, type HistorySegment } from '../history/history-reader.js';
import { recordMatcher, type ReplayFilter } from '../history/replay-filter.js';
import { HumanFormatter, toReplayEvent } from '../history/replay-format.js';
import { auditTrail } from '../history/replay-source.js';
import { stateAt } from '../history/replay-state.js';
import { DIR_ENV, UsageError, parseDuration, parseFlags, storeDir } from './args.js';
import { ExitCodes, type CliIO } from './output.js';
import { paint, progressBar, useColour, type Progress } from './terminal.js';

export const replayHelp = `Usage: session-journal replay --dir DIR [filters] [--ndjson] [--follow]
       session-journal replay --dir DIR --state [--at TIME] [--session ID]

Prints the audit trail: every event of the store in commit order, across the
archived segments (archive/*.gz) and the live journal, as one history.
Read-only; takes no lock, so it is safe beside live writers and compactions.

By default one aligned line per event: time (UTC), writer (pid@host),
session, event and a short summary (a turn's prompt, a conversation id, a
delete's reason, an update's field names). Engine records (journal.rotate)
are hidden unless --type asks for them. Colour only on a terminal, never
with NO_COLOR set.

Options:
  --dir DIR          the store (default: $${DIR_ENV})
  --session ID       only events of this session (comma-separated: several)
  --type T           only these event types: full (session.turn,
                     journal.rotate) or short (turn, delete, rotate); commas
  --writer W         only events written by W: pid@host, or just the pid
  --since TIME       only events at or after TIME
  --until TIME       only events at or before TIME
  --ndjson           one JSON object per line, for machines:
                     {"seq","ts","writer","type","session","payload"}
  --follow           after the history, keep printing new events as writers
                     append (across compactions) until SIGINT or SIGTERM
  --state            print the sessions as they were at --at as one JSON
                     document {"at","sessions"} (dates as ISO strings)
  --at TIME          the instant for --state (default: now)
  -h, --help         this help

TIME is an ISO-8601 instant (2026-11-21T09:00:00Z, 2026-11-21T10:00+01:00),
a UTC date (2026-11-21, meaning its midnight), or a duration meaning that
long ago: 90s, 30m, 2h, 7d. Times are the events' own timestamps (ts).

Unreadable lines (torn writes, garbage) are reported on stderr with file and
line; stdout carries only events. A closed pipe (| head) ends the command
quietly with exit code 0.
Exit codes: 0 done (also when stopped by SIGINT/SIGTERM with --follow),
2 usage, 4 store error (missing, unsafe, unreadable, or the history for
--at was pruned), 70 internal error.
`;

const POLL_MS = 200;
/** A replay shorter than this shows no progress bar at all. */
const PROGRESS_AFTER_MS = 500;

/** Parses a --since/--until/--at value: ISO instant, UTC date, or a duration before `now`. */
export function parseTime(flag: string, text: string, now: number): number {
  const trimmed = text.trim();
  const iso = parseIsoInstant(trimmed);
  if (iso !== undefined) return iso;
  if (/^\d{4}-\d{2}-\d{2}$/.test(trimmed)) {
    const day = parseIsoInstant(`${trimmed}T00:00:00Z`);
    if (day !== undefined) return day;
  }
  if (/^\d/.test(trimmed) && !trimmed.includes('-') && !trimmed.includes(':')) {
    try {
      return now - parseDuration(flag, trimmed);
    } catch {
      // fall through to the message below
    }
  }
  throw new UsageError(`--${flag} takes an ISO instant (2026-11-21T09:00:00Z), a date (2026-11-21) or a duration ago (2h, 30m, 7d); got ${JSON.stringify(text)}`);
}

const list = (value: string | undefined): string[] | undefined => {
  if (value === undefined) return undefined;
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  return items.length > 0 ? items : undefined;
};

/** Warnings on stderr, each (code, file, line) once: history and --follow may meet the same line. */
function warningSink(io: CliIO): (w: JournalWarning) => void {
  const seen = new Set<string>();
  return (w) => {
    const key = `${w.code}|${w.file ?? ''}|${w.line ?? ''}`;
    if (seen.has(key)) return;
    seen.add(key);
    io.stderr.write(formatWarning(w) + '\n');
  };
}

const note = (io: CliIO, text: string) => io.stderr.write(`session-journal replay: note: ${text}\n`);

export async function replayCommand(argv: readonly string[], io: CliIO): Promise<number> {
  const args = parseFlags(argv, {
    values: ['dir', 'session', 'type', 'writer', 'since', 'until', 'at'],
    switches: ['ndjson', 'follow', 'state', 'json'],
  });
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[0])}`);
  const now = Date.now();
  const dir = storeDir(args, io.env);
  const state = args.switches.has('state');
  if (state) {
    for (const flag of ['type', 'writer', 'since', 'until']) if (args.values.has(flag)) throw new UsageError(`--${flag} does not apply to --state (only --at and --session do)`);
    for (const flag of ['ndjson', 'follow']) if (args.switches.has(flag)) throw new UsageError(`--${flag} does not apply to --state`);
  } else {
    if (args.values.has('at')) throw new UsageError('--at goes with --state');
    if (args.switches.has('json')) throw new UsageError('replay prints a stream of events: use --ndjson (or --state for one JSON document)');
  }
  const filter: ReplayFilter = {
    sessions: list(args.values.get('session')),
    types: list(args.values.get('type')),
    writers: list(args.values.get('writer')),
    since: args.values.has('since') ? parseTime('since', args.values.get('since')!, now) : undefined,
    until: args.values.has('until') ? parseTime('until', args.values.get('until')!, now) : undefined,
  };
  if (filter.since !== undefined && filter.until !== undefined && filter.since > filter.until) throw new UsageError('--since is after --until');
  const at = args.values.has('at') ? parseTime('at', args.values.get('at')!, now) : now;

  if (!prepareStoreDir(dir, false)) throw new SessionJournalError(ErrorCodes.STORE_NOT_FOUND, `no store at ${dir}`, { details: { dir } });
  const warn = warningSink(io);
  if (state) return printState(dir, at, filter.sessions, io, warn);
  return printHistory(dir, filter, args.switches.has('ndjson'), args.switches.has('follow'), io, warn);
}

async function printState(dir: string, at: number, sessions: readonly string[] | undefined, io: CliIO, warn: (w: JournalWarning) => void): Promise<number> {
  // HISTORY_PRUNED propagates: reportError prints it with its hint (exit 4).
  const result = await stateAt(dir, at, { onWarning: warn, onNote: (text) => note(io, text) });
  const shown = sessions ? result.sessions.filter((s) => sessions.includes(s.id)) : result.sessions;
  const out = new StdoutSink(io.stdout, false);
  // Sorted keys, dates as ISO strings (Date#toJSON), undefined fields left out.
  await out.write(stableStringify({ at: new Date(at).toISOString(), sessions: shown }) + '\n');
  await out.end();
  return out.exitCode(io.stderr);
}

async function printHistory(dir: string, filter: ReplayFilter, machine: boolean, follow: boolean, io: CliIO, warn: (w: JournalWarning) => void): Promise<number> {
  const out = new StdoutSink(io.stdout, machine);
  const matches = recordMatcher(filter);
  const human = new HumanFormatter(paint(useColour(io.stdout, io.env)));
  const progress = new ReplayProgress(io, dir, !machine);
  const emit = async (record: JournalRecord) => {
    if (!matches(record)) return;
    progress.clear();
    await out.write(machine ? toReplayEvent(record) : human.format(record) + '\n');
  };

  const stopper = follow ? new Stopper() : undefined;
  try {
    let lastSeq = 0;
    let firstSeq: number | undefined;
    for await (const item of auditTrail(dir)) {
      if (out.closed || stopper?.stopped) break;
      if (item.kind === 'segment') {
        progress.segment(item.segment);
      } else if (item.kind === 'problem') {
        progress.clear();
        warn(item.warning);
      } else {
        firstSeq ??= item.record.seq;
        lastSeq = Math.max(lastSeq, item.record.seq);
        progress.at(item.place.offset);
        await emit(item.record);
      }
    }
    progress.clear();
    if (firstSeq !== undefined && firstSeq > 1 && !out.closed) note(io, `the history starts at seq ${firstSeq}: earlier records were pruned from the archive (or compacted with --no-archive)`);
    if (stopper && !stopper.stopped && !out.closed) await followJournal(dir, lastSeq, emit, out, warn, stopper);
  } finally {
    stopper?.dispose();
  }
  await out.end();
  return out.exitCode(io.stderr);
}

/** SIGINT/SIGTERM (or a closed stdout) end --follow; listening from the start, so a Ctrl-C during the history also exits 0. */
class Stopper {
  stopped = false;
  private wake: (() => void) | undefined;
  private readonly onSignal = () => this.stop();

  constructor() {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  /** Sleeps `ms`, or less when stopped meanwhile. */
  sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  dispose(): void {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }
}

/**
 * --follow: a read-only Journal catches up every POLL_MS (following rotation
 * markers, reloading from the new snapshot when a compaction moved past it);
 * records with a seq above the last one seen are printed. A jump in seq (a
 * segment archived between two polls) is filled from the archive.
 */
async function followJournal(dir: string, afterSeq: number, emit: (r: JournalRecord) => Promise<void>, out: StdoutSink, warn: (w: JournalWarning) => void, stopper: Stopper): Promise<void> {
  let lastSeq = afterSeq;
  const pending: JournalRecord[] = [];
  out.onClose(() => stopper.stop());
  const journal = Journal.openSync({
    dir,
    readOnly: true,
    create: false,
    flushOnExit: false,
    onWarning: warn,
    consumer: {
      reset: () => undefined,
      restore: () => undefined,
      apply: (record) => {
        pending.push(record);
        return undefined;
      },
    },
  });
  try {
    while (!stopper.stopped && !out.closed) {
      journal.catchUp();
      const batch = pending.splice(0);
      for (const record of batch) {
        if (out.closed) break;
        if (record.seq <= lastSeq) continue;
        if (record.seq > lastSeq + 1) {
          for await (const item of auditTrail(dir)) {
            if (item.kind !== 'record' || item.record.seq <= lastSeq) continue;
            if (item.record.seq >= record.seq) break;
            lastSeq = item.record.seq;
            await emit(item.record);
          }
        }
        lastSeq = record.seq;
        await emit(record);
      }
      await stopper.sleep(POLL_MS);
    }
  } finally {
    await journal.close();
  }
}

/**
 * stdout, with a closed reader (EPIPE: `| head`) turned into a quiet stop.
 * With `machine`, objects go through the ndjson package's stringify stream.
 */
class StdoutSink {
  closed = false;
  private failure: Error | undefined;
  private readonly serializer: Transform | undefined;
  private readonly closedPromise: Promise<void>;
  private markClosed!: () => void;
  private readonly closeListeners: (() => void)[] = [];

  constructor(
    private readonly stdout: Writable,
    machine: boolean,
  ) {
    this.closedPromise = new Promise((resolve) => (this.markClosed = resolve));
    stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') this.failure ??= err;
      this.close();
    });
    if (machine) {
      this.serializer = ndjson.stringify();
      this.serializer.pipe(stdout, { end: false });
    }
  }

  onClose(listener: () => void): void {
    this.closeListeners.push(listener);
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.serializer?.unpipe(this.stdout);
    this.markClosed();
    for (const listener of this.closeListeners) listener();
  }

  async write(chunk: string | object): Promise<void> {
    if (this.closed) return;
    const target = this.serializer ?? this.stdout;
    if (!target.write(chunk)) await Promise.race([once(target, 'drain'), this.closedPromise]);
  }

  /** Waits until everything written reached stdout (or the reader went away). */
  async end(): Promise<void> {
    if (this.serializer && !this.closed) {
      const ended = once(this.serializer, 'end');
      this.serializer.end();
      await Promise.race([ended, this.closedPromise]);
    }
    if (!this.closed && this.stdout.writableNeedDrain) await Promise.race([once(this.stdout, 'drain'), this.closedPromise]);
  }

  /** 0, or 4 after saying why on stderr when stdout failed for another reason than a closed reader. */
  exitCode(stderr: Writable): number {
    if (!this.failure) return ExitCodes.OK;
    const code = (this.failure as NodeJS.ErrnoException).code ?? this.failure.message;
    stderr.write(`session-journal replay: IO_ERROR: writing to stdout failed: ${code}\nhint: check where stdout goes (disk full, a closed terminal)\n`);
    return ExitCodes.STORE_ERROR;
  }
}

/**
 * A progress bar on stderr for a long human replay on a terminal, by bytes
 * of the segment files (an archived segment counts when it is done). Cleared
 * before each printed line so it never mixes with output on the same terminal.
 */
class ReplayProgress {
  private readonly bar: Progress;
  private readonly enabled: boolean;
  private readonly started = Date.now();
  private readonly startOf = new Map<string, { start: number; size: number }>();
  private base = 0;
  private current: HistorySegment | undefined;
  private drawn = false;
  private lastDraw = 0;

  constructor(io: CliIO, dir: string, wanted: boolean) {
    this.enabled = wanted && Boolean((io.stderr as { isTTY?: boolean }).isTTY);
    let total = 0;
    if (this.enabled) {
      for (const segment of listHistorySegments(dir)) {
        let size = 0;
        try {
          size = fs.statSync(segment.file).size;
        } catch {
          // moved by a compaction meanwhile
        }
        this.startOf.set(segment.file, { start: total, size });
        total += size;
      }
    }
    this.bar = progressBar(io.stderr, 'replay', total, this.enabled);
  }

  segment(segment: HistorySegment): void {
    this.current = segment;
    this.base = this.startOf.get(segment.file)?.start ?? this.base;
  }

  at(offset: number): void {
    if (!this.enabled || !this.current) return;
    const now = Date.now();
    if (now - this.started < PROGRESS_AFTER_MS || now - this.lastDraw < 200) return;
    this.lastDraw = now;
    const size = this.startOf.get(this.current.file)?.size ?? 0;
    this.bar.update(this.base + (this.current.archived ? 0 : Math.min(offset, size)));
    this.drawn = true;
  }

  /** Removes the bar (before a line of output, and at the end). */
  clear(): void {
    if (!this.drawn) return;
    this.bar.finish();
    this.drawn = false;
  }
}
