import { storeStats, type StoreStats } from '../stats/store-stats.js';
import { requireStore } from '../storage/file/store-files.js';
import { DEFAULT_TTL_MS } from '../sessions/session-store.js';
import type { RedisStoreStats } from '../stats/store-stats-redis.js';
import { LOCATION_FLAGS, UsageError, locationHelp, parseDuration, parseFlags, parseTime, storeLocation } from './args.js';
import { ExitCodes, type CliIO } from './output.js';

export const statsHelp = `Usage: session-journal stats --dir DIR [options]
       session-journal stats --redis URL --prefix P [options]

Figures about a store, read without a lock and without writing: live and
expired sessions, journal, snapshot and archive bytes, segments (live and
archived), the last compaction, the automatic compaction's claim (one
running, or the last one busy or failed and why), the writers seen in the
live segments (with their record counts and when each was last seen), the
chain head, and the records written since the snapshot.

On Redis: the stream's entries and its memory on the server (as the
journal's bytes), the snapshot's bytes, the manifest of the last compaction
(its generation and seq; Redis keeps no time of it), the lines kept aside,
and the writers seen in the stream; no segments, no archive. --json adds
"redis": {where, streamEntries, streamMemoryBytes, keptAside, manifest}.

Options:
${locationHelp(21)}
  --ttl DURATION     count sessions not accessed for this long as expired (default 24h;
                     use your servers' ttl)
  --now TIME         evaluate expiry at this instant instead of the current time:
                     an ISO instant, a UTC date (2026-11-22), epoch ms, or a
                     duration ago (2h)
  -j, --json         print one JSON document
  -h, --help         this help

DURATION takes ms, s, m, h or d, or a bare number of seconds.
Exit codes: 0 done, 2 usage, 4 store error (missing, NOT_A_STORE, unsafe
permissions, I/O), 70 internal error.
`;

export async function statsCommand(argv: readonly string[], io: CliIO): Promise<number> {
  const args = parseFlags(argv, { values: [...LOCATION_FLAGS, 'ttl', 'now'], switches: ['json'] });
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[0])}`);
  const ttlMs = args.values.has('ttl') ? parseDuration('ttl', args.values.get('ttl')!) : DEFAULT_TTL_MS;
  const now = args.values.has('now') ? parseTime('now', args.values.get('now')!, Date.now()) : Date.now();
  const location = storeLocation(args, io.env);
  let stats: StoreStats | RedisStoreStats;
  if (location.kind === 'dir') {
    requireStore(location.dir);
    stats = storeStats(location.dir, { ttlMs, now });
  } else {
    stats = await storeStats({ redis: location.redis }, { ttlMs, now });
  }
  if (stats.warnings > 0) io.stderr.write(`session-journal stats: ${stats.warnings} replay warning${stats.warnings === 1 ? '' : 's'}; run session-journal verify for details\n`);
  io.stdout.write(args.switches.has('json') ? `${JSON.stringify(stats)}\n` : formatStats(stats));
  return ExitCodes.OK;
}

const bytes = (n: number): string => (n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`);

function formatStats(s: StoreStats | RedisStoreStats): string {
  const rows: Array<[string, string]> = 'redis' in s ? redisRows(s) : [
    ['sessions', `${s.sessions.live} live, ${s.sessions.expired} expired (ttl ${s.ttlMs / 1000}s, at ${s.now})`],
    ['journal', bytes(s.journalBytes)],
    ['snapshot', s.snapshot ? `${s.snapshot} (${bytes(s.snapshotBytes)})` : 'none'],
    ['archive', bytes(s.archiveBytes)],
    ['segments', `${s.segments.live} live, ${s.segments.archived} archived`],
    ['last compaction', s.lastCompaction ?? 'never'],
    ['auto compaction', autoCompactionRow(s.autoCompaction)],
    ['since snapshot', `${s.recordsSinceSnapshot} records`],
    ['head', `${s.head.seq}:${s.head.h}`],
  ];
  if (s.writers.length === 0) rows.push(['writers', 'none']);
  s.writers.forEach((w, i) => rows.push([i === 0 ? 'writers' : '', `${w.writer}  ${w.records} record${w.records === 1 ? '' : 's'}, last seen ${w.lastSeen}`]));
  if (s.warnings > 0) rows.push(['warnings', `${s.warnings} (run session-journal verify)`]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n') + '\n';
}

/** The claim of the automatic compaction, in a line: its state, since when and by whom, and a failure's last line. */
function autoCompactionRow(c: StoreStats['autoCompaction']): string {
  if (c === null) return 'none running, none failed';
  if (c.state === 'damaged') return 'compact.claim is not a claim (see docs/FORMAT.md)';
  const why = c.message === undefined ? '' : `: ${c.message.split('\n').filter((l) => !l.startsWith('hint:')).pop() ?? ''}`;
  return `${c.state} since ${c.at} (${c.by})${why}`;
}

/** The rows of a store on Redis: its keys instead of files (docs/OPERATIONS.md, "Stats"). */
function redisRows(s: RedisStoreStats): Array<[string, string]> {
  const r = s.redis;
  const m = r.manifest;
  return [
    ['store', r.where],
    ['sessions', `${s.sessions.live} live, ${s.sessions.expired} expired (ttl ${s.ttlMs / 1000}s, at ${s.now})`],
    ['stream', `${r.streamEntries} entr${r.streamEntries === 1 ? 'y' : 'ies'}, ${r.streamMemoryBytes === null ? 'memory not known (MEMORY refused)' : `${bytes(r.streamMemoryBytes)} on the server`}`],
    ['snapshot', s.snapshot ? `${s.snapshot} (${bytes(s.snapshotBytes)})` : 'none'],
    ['last compaction', m ? `${s.lastCompaction ?? 'time not recorded'}: generation ${m.gen}, folded up to seq ${m.seq}` : 'never'],
    ['kept aside', `${r.keptAside} line${r.keptAside === 1 ? '' : 's'}`],
    ['since snapshot', `${s.recordsSinceSnapshot} records`],
    ['head', `${s.head.seq}:${s.head.h}`],
  ];
}
