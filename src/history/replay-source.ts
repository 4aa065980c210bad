import { SessionJournalError, ioError } from '../errors.js';
import { WarningCodes } from '../journal/warnings.js';
import { listHistorySegments, readHistory, type HistoryItem, type HistorySegment } from './history-reader.js';

const RETRIES = 5;

const isMissingFile = (err: unknown): boolean => (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
const isGzipError = (err: unknown): boolean => {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && code.startsWith('Z_');
};

/**
 * readHistory, made robust for a tool that runs beside live writers and
 * compactions:
 * - a segment listed and then moved into the archive by a compaction (ENOENT)
 *   makes it list again and resume from that segment number, skipping the
 *   records (by seq) and problems (by file and line) it already gave;
 * - an archived segment that is not valid gzip (damaged, truncated) becomes
 *   a problem and the history continues with the next segment.
 * Other I/O failures are thrown as IO_ERROR.
 */
export async function* auditTrail(dir: string, options: { maxLineBytes?: number } = {}): AsyncGenerator<HistoryItem> {
  let segments = listHistorySegments(dir);
  let start = 0;
  let lastSeq = 0;
  let resumeAfterSeq: number | undefined;
  let current: HistorySegment | undefined;
  let lastLine = 0;
  let retries = 0;
  const problems = new Set<string>();
  while (start < segments.length) {
    try {
      for await (const item of readHistory(dir, { ...options, segments: segments.slice(start) })) {
        if (item.kind === 'segment') {
          current = item.segment;
          lastLine = 0;
          yield item;
        } else if (item.kind === 'record') {
          lastLine = item.place.line;
          if (resumeAfterSeq !== undefined) {
            if (item.record.seq <= resumeAfterSeq) continue;
            resumeAfterSeq = undefined;
          }
          lastSeq = Math.max(lastSeq, item.record.seq);
          yield item;
        } else {
          lastLine = item.warning.line ?? lastLine;
          const key = `${item.warning.code}|${item.warning.file ?? ''}|${item.warning.line ?? ''}`;
          if (problems.has(key)) continue;
          problems.add(key);
          yield item;
        }
      }
      return;
    } catch (err) {
      if (isMissingFile(err) && retries++ < RETRIES) {
        // A compaction archived what we were about to read: list again, go on from the same segment number.
        const from = current?.number ?? 0;
        segments = listHistorySegments(dir);
        const next = segments.findIndex((s) => s.number >= from);
        start = next === -1 ? segments.length : next;
        resumeAfterSeq = lastSeq;
        continue;
      }
      if (current?.archived && isGzipError(err)) {
        yield {
          kind: 'problem',
          segment: current,
          warning: { code: WarningCodes.UNPARSABLE_LINE, message: `archived segment is not valid gzip after this point (${(err as Error).message}); the rest of it is skipped`, file: current.file, line: lastLine + 1 },
        };
        start = segments.indexOf(current) + 1;
        continue;
      }
      if (err instanceof SessionJournalError) throw err;
      throw ioError('read', (err as NodeJS.ErrnoException | undefined)?.path ?? current?.file ?? dir, err);
    }
  }
}
