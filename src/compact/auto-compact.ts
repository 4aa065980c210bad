import { childProcess } from '../lazy.js';
import type { Journal } from '../storage/journal.js';
import { fileSizeOrZero, listStore, snapshotName } from '../storage/file/store-files.js';
import { WarningCodes, type WarningHandler } from '../engine/warnings.js';
import { COMPACTION_NODE_FLAGS } from './compaction-process.js';
const fs = process.getBuiltinModule('node:fs');
const path = process.getBuiltinModule('node:path');
const { fileURLToPath } = process.getBuiltinModule('node:url');

export interface AutoCompactPolicy {
  /** Never compact a journal smaller than this (default 16 MiB; Redis: auto-aof-rewrite-min-size). */
  minBytes: number;
  /** Compact once the journal has grown by this percentage of the last snapshot (default 100; Redis: auto-aof-rewrite-percentage). */
  growthPercent: number;
}

const DEFAULT_AUTO_COMPACT: AutoCompactPolicy = { minBytes: 16 * 1024 * 1024, growthPercent: 100 };

function shouldCompact(policy: AutoCompactPolicy, growth: { journalBytes: number; snapshotBytes: number }): boolean {
  return growth.journalBytes >= policy.minBytes && growth.journalBytes * 100 >= growth.snapshotBytes * policy.growthPercent;
}

/**
 * The CLI's entry point, found from the package root: this module runs from
 * build/src/compact/ or bundled into build/dist/, so a path relative to it
 * would be right in only one of them. fileURLToPath, not URL.pathname: the
 * pathname stays percent-encoded, so an install under a directory with a
 * space would hand the child a path that does not exist.
 */
function cliMain(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return path.join(dir, 'build', 'src', 'cli', 'main.js');
    if (path.dirname(dir) === dir) throw new Error(`session-journal's package.json not found above ${fileURLToPath(import.meta.url)}`);
  }
}

/**
 * After a failed compaction child, no new one is started for this long: a
 * child that fails fast (a misconfigured store, a full disk) would otherwise
 * be started again after every commit, each one a process and a warning.
 */
export const AUTO_COMPACT_RETRY_MS = 5 * 60 * 1000;

/**
 * Exit 3: another compaction held the lock (cron, or another server), which
 * is as good as ours running. It may run for minutes: wait this long before
 * asking again, rather than start a child that waits 1 s and exits after
 * every commit meanwhile.
 */
export const AUTO_COMPACT_BUSY_RETRY_MS = 30 * 1000;
const EXIT_LOCK_BUSY = 3;

/**
 * The automatic compaction of one store, shared by SessionStore and
 * JournalEventStore: at most one child at a time, started after a durable
 * commit when the journal has outgrown its snapshot, and none for
 * AUTO_COMPACT_RETRY_MS (on the store's clock) after a child failed, or
 * AUTO_COMPACT_BUSY_RETRY_MS after one found another compaction running.
 */
export class AutoCompactor {
  /** The running child's exit code, while one runs (tests wait for it). */
  running: Promise<number> | undefined;
  private retryAt = -Infinity;

  constructor(
    private readonly journal: Pick<Journal, 'dir' | 'growth' | 'now' | 'maxLineBytes' | 'maxRecordBytes'>,
    private readonly policy: AutoCompactPolicy,
    private readonly compactArgs: readonly string[],
    private readonly onWarning: WarningHandler,
  ) {}

  /** For the journal's onDurable: starts a child when one is due. */
  maybeStart(): void {
    if (this.running || this.journal.now() < this.retryAt) return;
    const growth = this.journal.growth;
    if (!shouldCompact(this.policy, growth)) return;
    // The journal knows the snapshot it opened on; a compaction since (any process's) wrote a newer one,
    // which the growth must be measured against. Listed only here, when the cheap check says "due".
    const { snapshots } = listStore(this.journal.dir);
    const newest = snapshots.length > 0 ? fileSizeOrZero(path.join(this.journal.dir, snapshotName(snapshots[snapshots.length - 1]!))) : 0;
    if (!shouldCompact(this.policy, { journalBytes: growth.journalBytes, snapshotBytes: Math.max(growth.snapshotBytes, newest) })) return;
    // The child must read lines as long, and join records as large, as this store writes, or it would fold them away (see compactStore);
    // and it judges TTL at this store's clock (its `clock` option), not at its own.
    const args = [...this.compactArgs, '--max-line-bytes', String(this.journal.maxLineBytes), '--max-record-bytes', String(this.journal.maxRecordBytes), '--now', String(Math.floor(this.journal.now()))];
    this.running = runCompactionProcess(this.journal.dir, args, this.onWarning).then((code) => {
      this.running = undefined;
      if (code === EXIT_LOCK_BUSY) this.retryAt = this.journal.now() + AUTO_COMPACT_BUSY_RETRY_MS;
      else if (code !== 0) this.retryAt = this.journal.now() + AUTO_COMPACT_RETRY_MS;
      return code;
    });
  }
}

/**
 * Runs `session-journal compact` in a child process: the fold is CPU and I/O
 * bound and would otherwise stall the host's event loop (and so its MCP
 * protocol). The child gets the compaction's V8 flags from the start, so the
 * command compacts in that process rather than start itself again to set
 * them (cli/main.ts): one process per compaction. The same command as cron's,
 * so the exit codes (3: lock busy) and the warnings are the same too. The
 * child's stdout is ignored; its diagnostics become warnings. Resolves with
 * the exit code; never rejects.
 */
function runCompactionProcess(dir: string, compactArgs: readonly string[], onWarning: WarningHandler): Promise<number> {
  return new Promise((resolve) => {
    const child = childProcess().spawn(process.execPath, [...COMPACTION_NODE_FLAGS, cliMain(), 'compact', '--dir', dir, '--lock-timeout', '1s', ...compactArgs], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
    child.on('error', (err) => {
      onWarning({ code: WarningCodes.AUTO_COMPACT_FAILED, message: `could not start compaction: ${err.message}`, file: dir });
      resolve(-1);
    });
    child.on('close', (code) => {
      if (code !== 0 && code !== EXIT_LOCK_BUSY) onWarning({ code: WarningCodes.AUTO_COMPACT_FAILED, message: `compaction exited ${code}: ${stderr.trim()}`, file: dir });
      resolve(code ?? -1);
    });
    child.unref();
    (child.stderr as unknown as { unref?: () => void }).unref?.();
  });
}

/** A store's `autoCompact` option made into its compactor: undefined for false, else the defaults overridden by what it gives. */
export function autoCompactorFor(
  option: Partial<AutoCompactPolicy> | false | undefined,
  journal: Pick<Journal, 'dir' | 'growth' | 'now' | 'maxLineBytes' | 'maxRecordBytes' | 'isLocal'>,
  compactArgs: readonly string[],
  onWarning: WarningHandler,
): AutoCompactor | undefined {
  // A store on Redis is compacted from cron (`compact --redis`): its growth is not a directory's to measure here.
  return option === false || !journal.isLocal ? undefined : new AutoCompactor(journal, { ...DEFAULT_AUTO_COMPACT, ...option }, compactArgs, onWarning);
}
