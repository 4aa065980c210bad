import { stableStringify } from '../engine/canonical-json.js';
import { REPAIR_EVENT, ROTATE_EVENT, type JournalRecord } from '../engine/record-codec.js';
import { SessionEventTypes } from '../sessions/session-events.js';
import { StreamEventTypes } from '../integrations/event-records.js';
import { requireStore } from '../storage/file/store-files.js';
import { formatWarning, type JournalWarning } from '../engine/warnings.js';
import { recordMatcher, shortType, type ReplayFilter } from '../audit/replay-filter.js';
import { HumanFormatter, toReplayEvent } from '../audit/replay-format.js';
import { auditTrail } from '../audit/replay-source.js';
import { sessionsAt, stateAt } from '../point-in-time/state-at.js';
import { RedisAuditTrail } from '../audit/redis-trail.js';
import { connectToStore } from '../storage/redis/history-reader.js';
import type { RedisConnection } from '../storage/redis/connection.js';
import type { RedisLocation } from '../storage/redis/redis-location.js';
import { LOCATION_FLAGS, UsageError, locationHelp, parseFlags, parseTime, storeLocation, suggestion, type StoreLocation } from './args.js';
import { ExitCodes, type CliIO } from './output.js';
import { followJournal } from './replay-follow.js';
import { followRedis } from './replay-follow-redis.js';
import { ReplayProgress } from './replay-progress.js';
import { StdoutSink } from './stdout-sink.js';
import { Stopper } from './stopper.js';
import { paint, useColour } from './terminal.js';

export const replayHelp = `Usage: session-journal replay --dir DIR [filters] [--ndjson] [--follow]
       session-journal replay --dir DIR --state [--at TIME] [--session ID]
       session-journal replay --redis URL --prefix P [the same options]

Prints the audit trail: every event of the store in commit order, across the
archived segments (archive/*.gz) and the live journal, as one history.
Read-only; takes no lock, so it is safe beside live writers and compactions.
On Redis the history is what the stream holds since the last compaction
(which trims the records it folds into its snapshot): --state --at rebuilds
from that snapshot, and an instant before it is HISTORY_PRUNED (exit 4);
--follow waits on the stream (XREAD BLOCK).

By default one aligned line per event: time (UTC), writer (pid@host),
session, event and a short summary (a turn's prompt, a conversation id, a
delete's reason, an update's field names). Engine records (journal.rotate)
are hidden unless --type asks for them. Colour only on a terminal, never
with NO_COLOR set.

Options:
${locationHelp(21)}
  --session ID       only events of this session (comma-separated: several)
  --type T           only these event types: full (session.turn,
                     journal.rotate) or short (turn, delete, rotate); commas;
                     a type no store holds is a usage error
  --writer W         only events written by W: pid@host, or just the pid
  --since TIME       only events at or after TIME
  --until TIME       only events at or before TIME
  --ndjson           one JSON object per line, for machines:
                     {"seq","ts","writer","type","session","payload"}
  -f, --follow       after the history, keep printing new events as writers
                     append (across compactions) until SIGINT or SIGTERM
  --state            print the sessions as they were at --at as one JSON
                     document {"at","sessions"} (dates as ISO strings)
  --at TIME          the instant for --state (default: now)
  --now TIME         what "now" is for the defaults and durations above
                     (default: the current time)
  -h, --help         this help

TIME is an ISO-8601 instant (2026-11-21T09:00:00Z, 2026-11-21T10:00+01:00),
a UTC date (2026-11-21, meaning its midnight), epoch milliseconds (a whole
number), or a duration meaning that long ago: 90s, 30m, 2h, 7d. Times are
the events' own timestamps (ts).

Unreadable lines (torn writes, garbage) are reported on stderr with file and
line (on Redis: the stream's key and the entry id); stdout carries only
events. A closed pipe (| head) ends the command quietly with exit code 0.
Exit codes: 0 done (also when stopped by SIGINT/SIGTERM with --follow),
2 usage, 3 compactions replaced a Redis store's snapshot during each of 5
reads (STORE_CHANGING: retry later), 4 store error (missing, not a store, unsafe, unreadable, or the
history for --at was pruned), 70 internal error.
`;

const list = (value: string | undefined): string[] | undefined => {
  if (value === undefined) return undefined;
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  return items.length > 0 ? items : undefined;
};

/** Every type this library writes: sessions, event streams (JournalEventStore), the engine's own. */
const KNOWN_TYPES: readonly string[] = [...Object.values(SessionEventTypes), ...Object.values(StreamEventTypes), ROTATE_EVENT, REPAIR_EVENT];
const KNOWN_NAMESPACES = new Set(KNOWN_TYPES.map((t) => t.slice(0, t.indexOf('.'))));
const SHORT_TYPES = [...new Set(KNOWN_TYPES.map(shortType))];

/**
 * Refuses a --type that matches nothing this library writes (a typo would
 * print nothing and exit 0): a short form must be a known one, a full type in
 * a known namespace a known type. A type of another namespace (`tasks.create`,
 * kept in a session store by someone else) is taken as it is.
 */
function checkTypes(types: readonly string[] | undefined): void {
  for (const type of types ?? []) {
    const dot = type.indexOf('.');
    const known = dot === -1 ? SHORT_TYPES.includes(type) : !KNOWN_NAMESPACES.has(type.slice(0, dot)) || KNOWN_TYPES.includes(type);
    if (!known) throw new UsageError(`--type: unknown event type ${JSON.stringify(type)}${suggestion(type, dot === -1 ? [...SHORT_TYPES, ...KNOWN_TYPES] : KNOWN_TYPES)} (types: ${SHORT_TYPES.join(', ')}, or in full such as session.turn)`);
  }
}

/** Warnings on stderr, each (code, file, line) once: history and --follow may meet the same line. */
function warningSink(io: CliIO): (w: JournalWarning) => void {
  const seen = new Set<string>();
  return (w) => {
    const key = `${w.code}|${w.file ?? ''}|${w.line ?? ''}|${w.entry ?? ''}`;
    if (seen.has(key)) return;
    seen.add(key);
    io.stderr.write(formatWarning(w) + '\n');
  };
}

const note = (io: CliIO, text: string) => io.stderr.write(`session-journal replay: note: ${text}\n`);

export async function replayCommand(argv: readonly string[], io: CliIO): Promise<number> {
  const args = parseFlags(argv, {
    values: [...LOCATION_FLAGS, 'session', 'type', 'writer', 'since', 'until', 'at', 'now'],
    switches: ['ndjson', 'follow', 'state', 'json'],
  });
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[0])}`);
  const now = args.values.has('now') ? parseTime('now', args.values.get('now')!, Date.now()) : Date.now();
  const location = storeLocation(args, io.env);
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
  checkTypes(filter.types);
  if (filter.since !== undefined && filter.until !== undefined && filter.since > filter.until) throw new UsageError('--since is after --until');
  const at = args.values.has('at') ? parseTime('at', args.values.get('at')!, now) : now;

  const warn = warningSink(io);
  if (location.kind === 'redis') {
    if (state) return printState(location, at, filter.sessions, io, warn);
    return printRedisHistory(location.redis, filter, args.switches.has('ndjson'), args.switches.has('follow'), io, warn);
  }
  const dir = location.dir;
  requireStore(dir);
  if (state) return printState(location, at, filter.sessions, io, warn);
  return printHistory(dir, filter, args.switches.has('ndjson'), args.switches.has('follow'), io, warn);
}

async function printState(location: StoreLocation, at: number, sessions: readonly string[] | undefined, io: CliIO, warn: (w: JournalWarning) => void): Promise<number> {
  // HISTORY_PRUNED propagates: reportError prints it with its hint (exit 4).
  const options = { onWarning: warn, onNote: (text: string) => note(io, text) };
  let result;
  if (location.kind === 'dir') {
    result = await stateAt(location.dir, at, options);
  } else {
    result = await sessionsAt({ redis: location.redis }, at, options);
  }
  const shown = sessions ? result.sessions.filter((s) => sessions.includes(s.id)) : result.sessions;
  const out = new StdoutSink(io.stdout, false);
  // Sorted keys, dates as ISO strings (Date#toJSON), undefined fields left out.
  await out.write(stableStringify({ at: new Date(at).toISOString(), sessions: shown }) + '\n');
  await out.end();
  return out.exitCode(io.stderr, 'replay');
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
      } else if (item.kind === 'record') {
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
  return out.exitCode(io.stderr, 'replay');
}

/** The history of a store on Redis: every record since the last compaction, then --follow. The same output as for a directory. */
async function printRedisHistory(redis: RedisLocation, filter: ReplayFilter, machine: boolean, follow: boolean, io: CliIO, warn: (w: JournalWarning) => void): Promise<number> {
  const out = new StdoutSink(io.stdout, machine);
  const matches = recordMatcher(filter);
  const human = new HumanFormatter(paint(useColour(io.stdout, io.env)));
  const emit = async (record: JournalRecord) => {
    if (matches(record)) await out.write(machine ? toReplayEvent(record) : human.format(record) + '\n');
  };
  const stopper = follow ? new Stopper() : undefined;
  let conn: RedisConnection | undefined;
  try {
    conn = await connectToStore(redis, warn);
    const trail = await RedisAuditTrail.open(conn);
    for await (const item of trail.items()) {
      if (out.closed || stopper?.stopped) break;
      if (item.kind === 'problem') warn(item.warning);
      else await emit(item.record);
    }
    if (trail.baseSeq > 0 && !out.closed) note(io, `the history starts after seq ${trail.baseSeq}: earlier records were folded into the snapshot ${conn.keys.snap} by a compaction (on Redis the audit trail reaches back to the last compaction)`);
    if (stopper && !stopper.stopped && !out.closed) await followRedis(redis, trail.afterSeq, emit, out, warn, stopper);
  } finally {
    stopper?.dispose();
    await conn?.close();
  }
  await out.end();
  return out.exitCode(io.stderr, 'replay');
}
