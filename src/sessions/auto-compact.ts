import { spawn } from 'node:child_process';
import { WarningCodes, type WarningHandler } from '../journal/warnings.js';

export interface AutoCompactPolicy {
  /** Never compact a journal smaller than this (default 16 MiB; Redis: auto-aof-rewrite-min-size). */
  minBytes: number;
  /** Compact once the journal has grown by this percentage of the last snapshot (default 100; Redis: auto-aof-rewrite-percentage). */
  growthPercent: number;
}

export const DEFAULT_AUTO_COMPACT: AutoCompactPolicy = { minBytes: 16 * 1024 * 1024, growthPercent: 100 };

export function shouldCompact(policy: AutoCompactPolicy, growth: { journalBytes: number; snapshotBytes: number }): boolean {
  return growth.journalBytes >= policy.minBytes && growth.journalBytes * 100 >= growth.snapshotBytes * policy.growthPercent;
}

const CLI_MAIN = new URL('../cli/main.js', import.meta.url).pathname;

/**
 * Runs `session-journal compact` in a child process: the fold is CPU and I/O
 * bound and would otherwise stall the host's event loop (and so its MCP
 * protocol). The child's stdout is ignored; its diagnostics become warnings.
 * Resolves with the exit code; never rejects.
 */
export function runCompactionProcess(dir: string, compactArgs: readonly string[], onWarning: WarningHandler): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI_MAIN, 'compact', '--dir', dir, '--lock-timeout', '1s', ...compactArgs], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
    child.on('error', (err) => {
      onWarning({ code: WarningCodes.AUTO_COMPACT_FAILED, message: `could not start compaction: ${err.message}`, file: dir });
      resolve(-1);
    });
    child.on('close', (code) => {
      // 3: another compaction holds the lock, which is as good as ours running.
      if (code !== 0 && code !== 3) onWarning({ code: WarningCodes.AUTO_COMPACT_FAILED, message: `compaction exited ${code}: ${stderr.trim()}`, file: dir });
      resolve(code ?? -1);
    });
    child.unref();
    (child.stderr as unknown as { unref?: () => void }).unref?.();
  });
}
