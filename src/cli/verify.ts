import { readChainHead, verifyStore, type VerifyOptions, type VerifyReport } from '../verify/verify-store.js';
import { requireStore } from '../storage/file/store-files.js';
import { isChainHash } from '../engine/record-codec.js';
import { formatWarning, type JournalWarning } from '../engine/warnings.js';
import { LOCATION_FLAGS, UsageError, locationHelp, parseDuration, parseFlags, storeLocation, type StoreLocation } from './args.js';
import { ExitCodes, type CliIO } from './output.js';
import { paint, progressBar, useColour } from './terminal.js';

export const verifyHelp = `Usage: session-journal verify --dir DIR [options]
       session-journal verify --redis URL --prefix P [options]

Checks a store without changing it and without taking any lock (safe beside
live writers and a running compaction: a check that a compaction moved files
under is thrown away, and verify checks again once it has ended): every line of every segment, live
and archived; the hash chain across all of them (an entry edited, deleted,
inserted or moved, or without a hash); rotation markers; and every snapshot
against the segments it folds (its header's seq and hash, and its sessions).
Each problem is reported with its file, line and byte offset.

On Redis a store holds its snapshot and the stream after it (a compaction
trims what it folds): verify checks the snapshot (its chunks against the
manifest's bytes and sha256, its header against the manifest's seq and
hash, its entries), every stream entry (its id <seq>-0, its line, its
commit), the hash chain from the snapshot's head through the stream, and
that {P}:head is the last record. Problems name the key as "file" and the
stream entry as "entry" (line and offset are null).

Options:
${locationHelp(23)}
  --head               print only the current chain head, as SEQ:HASH, to record it elsewhere
  --expect-head SEQ:HASH
                       also prove that nothing up to that recorded head changed: the record
                       with seq SEQ must still have hash HASH and the chain up to it must be intact
  --lock-timeout DUR   when a compaction moved files during a check, wait this long for
                       it to end before checking again (default 30s)
  -j, --json           print one JSON document: {ok, problems:[{code,file,line,offset,message}],
                       notes, records, segments, archivedSegments, snapshots, head:{seq,h}}
  -h, --help           this help

File names are relative to the store directory; byte offsets in archived
(gzipped) segments count uncompressed bytes.
Exit codes: 0 clean, 1 problems found, 2 usage, 3 the store kept changing
under 5 checks (STORE_CHANGING: retry later), 4 store error (missing,
NOT_A_STORE: an empty directory or a store's parent, unsafe permissions,
I/O), 70 internal error.
`;

/** Parses `SEQ:HASH` (HASH may be empty, for an unchained head). */
export function parseExpectedHead(text: string): { seq: number; h: string } {
  // HASH in either format's form: a head recorded before format 2 is hex (record-codec.ts, isChainHash).
  const m = /^(\d+):([0-9A-Za-z_-]*)$/.exec(text.trim());
  if (!m || !Number.isSafeInteger(Number(m[1])) || Number(m[1]) < 1 || (m[2] !== '' && !isChainHash(m[2]))) {
    throw new UsageError(`--expect-head takes SEQ:HASH as printed by verify --head (got ${JSON.stringify(text)})`);
  }
  return { seq: Number(m[1]), h: m[2]! };
}

export async function verifyCommand(argv: readonly string[], io: CliIO): Promise<number> {
  const args = parseFlags(argv, { values: [...LOCATION_FLAGS, 'expect-head', 'lock-timeout'], switches: ['json', 'head'] });
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[0])}`);
  const json = args.switches.has('json');
  const location = storeLocation(args, io.env);
  const warn = (w: JournalWarning) => io.stderr.write(formatWarning(w) + '\n');
  if (args.switches.has('head')) {
    if (args.values.has('expect-head')) throw new UsageError('--head and --expect-head do not go together');
    let head;
    if (location.kind === 'dir') {
      requireStore(location.dir);
      head = readChainHead(location.dir);
    } else {
      head = await readChainHead({ redis: location.redis }, { onWarning: warn });
    }
    io.stdout.write(json ? `${JSON.stringify({ head })}\n` : `${head.seq}:${head.h}\n`);
    return ExitCodes.OK;
  }
  const expectHead = args.values.has('expect-head') ? parseExpectedHead(args.values.get('expect-head')!) : undefined;
  const lockTimeoutMs = args.values.has('lock-timeout') ? parseDuration('lock-timeout', args.values.get('lock-timeout')!) : undefined;
  const started = Date.now();
  let bar: ReturnType<typeof progressBar> | undefined;
  const options: VerifyOptions = {
    ...(expectHead && { expectHead }),
    ...(lockTimeoutMs !== undefined && { lockTimeoutMs }),
    onProgress: (done, total) => {
      // Only long work gets a bar: none for a store verified in a blink.
      if (!bar && Date.now() - started > 300) bar = progressBar(io.stderr, 'verify', total, !json);
      bar?.update(done);
    },
  };
  let report: VerifyReport;
  if (location.kind === 'dir') {
    // An empty directory, or a store's parent, is not a clean store.
    requireStore(location.dir);
    report = await verifyStore(location.dir, options);
  } else {
    report = await verifyStore({ redis: location.redis }, { ...options, onWarning: warn });
  }
  bar?.finish();
  if (json) io.stdout.write(`${JSON.stringify(report)}\n`);
  else io.stdout.write(formatReport(location, report, useColour(io.stdout, io.env)));
  return report.ok ? ExitCodes.OK : ExitCodes.PROBLEMS;
}

function formatReport(location: StoreLocation, r: VerifyReport, colour: boolean): string {
  const p = paint(colour);
  const out: string[] = [];
  const snapshots = `${r.snapshots} snapshot${r.snapshots === 1 ? '' : 's'}`;
  if (location.kind === 'dir') {
    out.push(`store     ${location.dir}`);
    out.push(`segments  ${r.segments} (${r.archivedSegments} archived), ${snapshots}`);
  } else {
    out.push(`store     ${location.where}`);
    out.push(`stream    {${location.redis.prefix}}:log, ${snapshots}`);
  }
  out.push(`records   ${r.records}`);
  out.push(`head      ${r.head.seq}:${r.head.h}`);
  if (r.expectedHead) {
    const e = r.expectedHead;
    const verdict = e.found && e.matches && e.chainIntact ? p.green('unchanged up to it') : e.found && e.matches ? p.yellow('hash matches, but the chain up to it has problems') : p.red('NOT proven');
    out.push(`expected  ${e.seq}:${e.h}  ${verdict}`);
  }
  for (const n of r.notes) out.push(`${p.dim('note')}      ${n.file ? `${n.file}${n.line ? `:${n.line}` : ''}: ` : ''}${n.message}`);
  if (r.problems.length > 0) {
    out.push('');
    for (const q of r.problems) {
      const where = q.file ? `${q.file}${q.entry !== undefined ? ` entry ${q.entry}` : ''}${q.line !== null ? `:${q.line}` : ''}${q.offset !== null ? ` (byte ${q.offset})` : ''}` : '(store)';
      out.push(`${where}  ${p.red(q.code)}  ${q.message}`);
    }
    out.push('');
    out.push(p.red(`FAILED: ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}`));
  } else {
    out.push(p.green('OK: every record, the hash chain and the snapshots agree'));
  }
  return `${out.join('\n')}\n`;
}
