import { requireStore } from '../storage/file/store-files.js';
import { repairStore, type RepairResult } from '../maintenance/repair.js';
import { isDamageLeft } from '../maintenance/repair-report.js';
import { LOCATION_FLAGS, UsageError, parseDuration, parseFlags, requireDirLocation, storeLocation } from './args.js';
import { ExitCodes, type CliIO } from './output.js';
import { paint, useColour } from './terminal.js';

export const repairHelp = `Usage: session-journal repair --dir DIR [options]

Moves torn and corrupt bytes out of the journal into DIR/quarantine/ (never
deletes them), so that replay finds nothing to skip. For each segment
repaired: quarantine/<segment>.<time>.bad holds the bad bytes exactly as they
were, back to back, and quarantine/<segment>.<time>.json says where each
came from (file, line, offset, length, reason).

Safe beside live writers: it holds the compaction lock, closes a damaged
live segment by a rotation first (writers move on to a new segment), then
rewrites closed segments by an atomic rename. An unfinished last line is
repaired only when no writer holds the journal lock (it may be an append in
progress). Records of a newer format version and lines longer than the
limit are left in place and listed. Records of commits no reader applies
(INCOMPLETE_COMMIT, STALE_COMMIT) are moved too. Where the damage was a
committed record, the gap it leaves in the hash chain is journaled in a
journal.repair record, which verify accepts.

Options:
  -d, --dir DIR        the store (default: $SESSION_JOURNAL_DIR); a store on
                       Redis (--redis) is refused (exit 2): see below
  -n, --dry-run        report what would move; change nothing, take no lock;
                       exits as the repair would (0 when it can clean the store)
  --lock-timeout DUR   wait this long for a compaction or writer (default 30s)
  -j, --json           print one JSON document
  -h, --help           this help

repair is for a store directory only. A store on Redis has no files to
rewrite: a commit is appended whole by one server-side script (nothing is
torn), readers skip a damaged entry and warn, and compact keeps what it
cannot fold in {P}:kept before it trims the stream; verify finds the rest.

Exit codes (the same with --dry-run, for what the repair would do, so
"repair --dry-run && repair" repairs): 0 clean, repaired (or repairable),
1 damage left that repair cannot undo (see "left"), 2 usage, 3 lock busy
(retry later), 4 store error (NOT_A_STORE: the directory is not a store),
70 internal error.
`;

const NOT_ON_REDIS =
  'it rewrites segment files, and a store on Redis has none: its commits are appended whole by one script (nothing is torn), readers skip a damaged entry and warn, and compact keeps what it cannot fold in {P}:kept before trimming; run verify to find damage';

export async function repairCommand(argv: readonly string[], io: CliIO): Promise<number> {
  const args = parseFlags(argv, { values: [...LOCATION_FLAGS, 'lock-timeout'], switches: ['json', 'dry-run'] });
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[0])}`);
  const json = args.switches.has('json');
  const dryRun = args.switches.has('dry-run');
  // Said before anything else about a Redis location (a missing --prefix): no prefix would make repair apply.
  const location = args.values.has('redis') ? { kind: 'redis' as const, where: 'a server given with --redis' } : storeLocation(args, io.env);
  const dir = requireDirLocation(location, 'repair', NOT_ON_REDIS);
  const lockTimeoutMs = args.values.has('lock-timeout') ? parseDuration('lock-timeout', args.values.get('lock-timeout')!) : 30_000;
  requireStore(dir);
  const result = await repairStore({ dir, dryRun, lockTimeoutMs });
  if (json) io.stdout.write(JSON.stringify(result) + '\n');
  else io.stdout.write(describe(result, paint(useColour(io.stdout, io.env))));
  // --dry-run exits as the repair would, so that `repair --dry-run && repair` repairs: 1 only for
  // damage repair cannot undo (a damaged rotation marker), which a person has to look at.
  return result.left.some(isDamageLeft) ? ExitCodes.PROBLEMS : ExitCodes.OK;
}

function describe(r: RepairResult, p: ReturnType<typeof paint>): string {
  const out: string[] = [];
  const verb = r.dryRun ? 'would move' : 'moved';
  if (r.rotated) out.push(`rotated the live segment ${r.rotated.closed}: writers continue in ${r.rotated.next}`);
  if (r.dryRun && r.wouldRotate) out.push(`would rotate the live segment ${r.wouldRotate} first`);
  for (const f of r.files) {
    const bytes = f.bytesBefore - f.bytesAfter;
    const where = f.quarantine ? ` to ${f.quarantine} (index ${f.index})` : '';
    out.push(`${verb} ${plural(f.items.length, 'item')} (${plural(bytes, 'byte')}) out of ${f.file}${where}`);
    for (const item of f.items) out.push(`  line ${item.line}, byte ${item.offset}, ${plural(item.length, 'byte')}: ${p.yellow(item.reason)} ${printable(item.message)}`);
  }
  for (const l of r.left) out.push(`left ${l.file}:${l.line} (byte ${l.offset}): ${l.reason} ${printable(l.message)}`);
  if (r.status === 'clean') out.push(p.green('clean: nothing to repair'));
  else if (r.status === 'damage-left') out.push(p.yellow(`not clean: ${plural(r.left.filter(isDamageLeft).length, 'problem')} left that repair cannot undo (see above)`));
  else if (r.status === 'repaired') out.push(p.green(`repaired: ${plural(r.itemsMoved, 'item')}, ${plural(r.bytesMoved, 'byte')} moved to quarantine`));
  else out.push(p.yellow(`would repair: ${plural(r.itemsMoved, 'item')}, ${plural(r.bytesMoved, 'byte')}; run without --dry-run to move them`));
  return out.join('\n') + '\n';
}

/** Messages quote the bad bytes: never send control characters to a terminal. */
// eslint-disable-next-line no-control-regex
const printable = (s: string) => s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
