import { DEFAULT_MAX_LINE_BYTES } from '../storage/journal.js';
import { requireStoreDir } from '../storage/file/store-files.js';
import { writeWarningToStderr, type WarningHandler } from '../engine/warnings.js';
import { recordMatcher, type ReplayFilter } from './replay-filter.js';
import { toReplayEvent, type ReplayEvent } from './replay-format.js';
import { auditTrail } from './replay-source.js';

export interface ReplayOptions extends ReplayFilter {
  /** The longest line read (default 1 MiB, as the store's). */
  maxLineBytes?: number;
  /** Unreadable lines and commits no reader applies, each with file and line (default: one line each on stderr). */
  onWarning?: WarningHandler;
}

/**
 * The audit trail as `session-journal replay --ndjson` prints it: every
 * event of the store in commit order, across the archived and the live
 * segments, that passes the filter. Read-only and lockless, so it is safe
 * beside live writers and compactions (a segment a compaction archives
 * under it is read from the archive). It reads the segments there when it
 * starts, each to its end, and does not wait for new events (the command's
 * --follow does); stopping early (`break`) closes the files.
 */
export async function* replayHistory(dir: string, options: ReplayOptions = {}): AsyncGenerator<ReplayEvent, void, undefined> {
  requireStoreDir(dir);
  const matches = recordMatcher(options);
  const onWarning = options.onWarning ?? writeWarningToStderr;
  for await (const item of auditTrail(dir, { maxLineBytes: options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES })) {
    if (item.kind === 'problem') onWarning(item.warning);
    else if (item.kind === 'record' && matches(item.record)) yield toReplayEvent(item.record);
  }
}
