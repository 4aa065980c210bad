import { childProcess } from '../lazy.js';
import type { Journal } from '../storage/journal.js';
import { fileSizeOrZero, listStore, snapshotName } from '../storage/file/store-files.js';
import { claimPath, dropClaim, readClaim, settleClaim, tryClaim, type ClaimState } from '../storage/file/compaction-claim.js';
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

/** Sessions and events: long-lived servers, whose replay at open is rare. */
export const DEFAULT_AUTO_COMPACT: AutoCompactPolicy = { minBytes: 16 * 1024 * 1024, growthPercent: 100 };

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
 * A claim left 'running' by a child that was killed goes stale after it too.
 */
export const AUTO_COMPACT_RETRY_MS = 5 * 60 * 1000;

/**
 * Exit 3: another compaction held the lock (cron, or another server), which
 * is as good as ours running. It may run for minutes: wait this long before
 * asking again, rather than start a child that waits 1 s and exits after
 * every commit meanwhile. A process that finds another's child running asks
 * again after as long.
 */
export const AUTO_COMPACT_BUSY_RETRY_MS = 30 * 1000;
const EXIT_LOCK_BUSY = 3;

/** How long a claim in each state holds every process of the store back, from its `at`. */
const CLAIM_HOLDS_MS: Record<ClaimState, number> = { running: AUTO_COMPACT_RETRY_MS, busy: AUTO_COMPACT_BUSY_RETRY_MS, failed: AUTO_COMPACT_RETRY_MS };

/**
 * The automatic compaction of one store, shared by SessionStore,
 * KeyValueStore and JournalEventStore: started after a durable commit
 * (also a flushSync or closeSync, so a short-lived process compacts too)
 * when the journal has outgrown its snapshot, as a child process that
 * outlives this one. At most one runs per store, across processes: the
 * starter takes the store's claim (compaction-claim.ts), which the child
 * settles. None starts for AUTO_COMPACT_RETRY_MS (on the store's clock)
 * after a child failed, in any process, or AUTO_COMPACT_BUSY_RETRY_MS after
 * one found another compaction running; a failure recorded by another
 * process's child is warned about here once.
 */
export class AutoCompactor {
  /** The running child's exit code, while one runs (tests wait for it). */
  running: Promise<number> | undefined;
  private retryAt = -Infinity;
  /** The `at` of the last failed claim warned about, so each failure is warned once per process. */
  private warnedFailureAt: number | undefined;

  constructor(
    private readonly journal: Pick<Journal, 'dir' | 'growth' | 'now' | 'maxLineBytes' | 'maxRecordBytes'>,
    private readonly policy: AutoCompactPolicy,
    private readonly compactArgs: readonly string[],
    private readonly onWarning: WarningHandler,
  ) {}

  /** For the journal's onDurable: starts a child when one is due. Never throws: the commit it follows is durable whatever happens here. */
  maybeStart(): void {
    try {
      this.startIfDue();
    } catch (err) {
      this.retryAt = this.journal.now() + AUTO_COMPACT_RETRY_MS;
      this.warnFailure(this.journal.now(), `could not check whether a compaction is due: ${(err as Error).message}`);
    }
  }

  private startIfDue(): void {
    if (this.running || this.journal.now() < this.retryAt) return;
    const growth = this.journal.growth;
    if (!shouldCompact(this.policy, growth)) return;
    // The journal knows the snapshot it opened on; a compaction since (any process's) wrote a newer one,
    // which the growth must be measured against. Listed only here, when the cheap check says "due".
    const { snapshots } = listStore(this.journal.dir);
    const newest = snapshots.length > 0 ? fileSizeOrZero(path.join(this.journal.dir, snapshotName(snapshots[snapshots.length - 1]!))) : 0;
    if (!shouldCompact(this.policy, { journalBytes: growth.journalBytes, snapshotBytes: Math.max(growth.snapshotBytes, newest) })) return;
    if (!this.claim()) return;
    // The child must read lines as long, and join records as large, as this store writes, or it would fold them away (see compactStore);
    // and it judges TTL at this store's clock (its `clock` option), not at its own.
    const args = [...this.compactArgs, '--max-line-bytes', String(this.journal.maxLineBytes), '--max-record-bytes', String(this.journal.maxRecordBytes), '--now', String(Math.floor(this.journal.now())), '--auto'];
    this.running = runCompactionProcess(this.journal.dir, args).then((ended) => this.ended(ended));
  }

  /**
   * Takes the store's claim; false when a claim of another process's holds
   * this one back (it is then not asked again before the claim's time is
   * up). A claim further in the future than it holds is a wrong clock's, and
   * a damaged one nobody's: both are replaced.
   */
  private claim(): boolean {
    const dir = this.journal.dir;
    const now = this.journal.now();
    const found = readClaim(dir);
    if (found !== undefined && found !== 'damaged') {
      const holds = CLAIM_HOLDS_MS[found.state];
      if (Math.abs(now - found.at) < holds) {
        this.retryAt = found.state === 'running' ? now + AUTO_COMPACT_BUSY_RETRY_MS : Math.min(found.at, now) + holds;
        if (found.state === 'failed') this.warnFailure(found.at, `automatic compaction by ${found.by} failed: ${found.message ?? 'no message'}; none is started before ${new Date(found.at + holds).toISOString()}`);
        return false;
      }
    }
    if (found !== undefined) dropClaim(dir);
    if (tryClaim(dir, now)) return true;
    if (readClaim(dir) === 'damaged') {
      // Still not a claim after being removed: a directory (or something else unlink cannot remove) where the file belongs.
      this.retryAt = now + AUTO_COMPACT_RETRY_MS;
      this.warnFailure(now, `${claimPath(dir)} is not a compaction claim (a directory?) and cannot be replaced: move it out of the store; until then no automatic compaction runs`);
      return false;
    }
    this.retryAt = now + AUTO_COMPACT_BUSY_RETRY_MS; // another process claimed it just now
    return false;
  }

  private ended(ended: ChildEnd): number {
    this.running = undefined;
    const now = this.journal.now();
    const dir = this.journal.dir;
    const code = ended.code ?? -1;
    if (code === 0) return code;
    if (code === EXIT_LOCK_BUSY) {
      this.retryAt = now + AUTO_COMPACT_BUSY_RETRY_MS;
      return code;
    }
    this.retryAt = now + AUTO_COMPACT_RETRY_MS;
    // A child that ran settled the claim with its stderr's end; one that never started, or was killed, could not: settle it here.
    const settled = readClaim(dir);
    if (ended.code !== null && settled !== undefined && settled !== 'damaged' && settled.state === 'failed') {
      this.warnFailure(settled.at, `compaction exited ${code}: ${settled.message ?? ''}`);
      return code;
    }
    const message = ended.error ? `could not start compaction: ${ended.error.message}` : ended.signal ? `compaction was killed by ${ended.signal}` : `compaction exited ${code}`;
    settleClaim(dir, { state: 'failed', at: now, message });
    this.warnFailure(now, message);
    return code;
  }

  private warnFailure(at: number, message: string): void {
    if (this.warnedFailureAt === at) return;
    this.warnedFailureAt = at;
    this.onWarning({ code: WarningCodes.AUTO_COMPACT_FAILED, message, file: this.journal.dir });
  }
}

interface ChildEnd {
  code: number | null;
  signal?: NodeJS.Signals | null;
  error?: Error;
}

/**
 * Runs `session-journal compact --auto` in a child process: the fold is CPU
 * and I/O bound and would otherwise stall the host's event loop (and so its
 * MCP protocol). The child gets the compaction's V8 flags from the start, so
 * the command compacts in that process rather than start itself again to
 * set them (cli/main.ts): one process per compaction. The same command as
 * cron's, so the exit codes (3: lock busy) are the same too.
 *
 * The child outlives this process: it is detached (its own session, so a
 * hook runner's signal to this process's group or a closed terminal does
 * not stop it) and shares no pipe with it (a pipe to an exited parent would
 * fail its writes). It reports through the claim instead (`--auto`).
 * Resolves when it ends; never rejects.
 */
function runCompactionProcess(dir: string, compactArgs: readonly string[]): Promise<ChildEnd> {
  return new Promise((resolve) => {
    let child: ReturnType<ReturnType<typeof childProcess>['spawn']>;
    try {
      child = childProcess().spawn(process.execPath, [...COMPACTION_NODE_FLAGS, cliMain(), 'compact', '--dir', dir, '--lock-timeout', '1s', ...compactArgs], {
        stdio: 'ignore',
        detached: true,
      });
    } catch (err) {
      resolve({ code: null, error: err as Error });
      return;
    }
    child.on('error', (error) => resolve({ code: null, error }));
    child.on('exit', (code, signal) => resolve({ code, signal }));
    child.unref();
  });
}

/** A store's `autoCompact` option made into its compactor: undefined for false, else `defaults` overridden by what it gives. */
export function autoCompactorFor(
  option: Partial<AutoCompactPolicy> | false | undefined,
  journal: Pick<Journal, 'dir' | 'growth' | 'now' | 'maxLineBytes' | 'maxRecordBytes' | 'isLocal'>,
  compactArgs: readonly string[],
  onWarning: WarningHandler,
  defaults: AutoCompactPolicy = DEFAULT_AUTO_COMPACT,
): AutoCompactor | undefined {
  // A store on Redis is compacted from cron (`compact --redis`): its growth is not a directory's to measure here.
  return option === false || !journal.isLocal ? undefined : new AutoCompactor(journal, { ...defaults, ...option }, compactArgs, onWarning);
}
