import { SessionJournalError, ioError } from '../errors.js';
import { DEFAULT_MAX_LINE_BYTES } from '../engine/group-commit.js';
import { listHistorySegments, readHistory, type HistoryItem, type HistorySegment } from '../storage/file/history-reader.js';

const RETRIES = 5;

/** A segment listed and gone when opened: readHistory's IO_ERROR with an ENOENT cause. */
const isMissingFile = (err: unknown): boolean => err instanceof SessionJournalError && (err.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';

/**
 * readHistory, made robust for a tool that runs beside live writers and
 * compactions:
 * - a segment listed and then moved into the archive by a compaction (ENOENT)
 *   makes it list again and resume from that segment number, skipping the
 *   records (by seq) and problems (by file and line) it already gave;
 * - what readHistory makes a problem (a segment that is not a regular file,
 *   an archived segment that is not valid gzip) stays one, and the history
 *   continues with the next segment.
 * Other I/O failures are thrown as IO_ERROR.
 */
export async function* auditTrail(dir: string, options: { maxLineBytes?: number; maxRecordBytes?: number } = {}): AsyncGenerator<HistoryItem> {
  let segments = listHistorySegments(dir);
  let start = 0;
  let lastSeq = 0;
  let resumeAfterSeq: number | undefined;
  let current: HistorySegment | undefined;
  let retries = 0;
  const problems = new Set<string>();
  while (start < segments.length) {
    try {
      for await (const item of readHistory(dir, { ...options, maxLineBytes: options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES, segments: segments.slice(start) })) {
        if (item.kind === 'segment') {
          current = item.segment;
          yield item;
        } else if (item.kind === 'record') {
          if (resumeAfterSeq !== undefined) {
            if (item.record.seq <= resumeAfterSeq) continue;
            resumeAfterSeq = undefined;
          }
          lastSeq = Math.max(lastSeq, item.record.seq);
          yield item;
        } else if (item.kind === 'parts') {
          const seq = item.lines[item.lines.length - 1]!.record.seq;
          if (resumeAfterSeq !== undefined && seq <= resumeAfterSeq) continue;
          lastSeq = Math.max(lastSeq, seq);
          yield item;
        } else {
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
      if (err instanceof SessionJournalError) throw err;
      throw ioError('read', (err as NodeJS.ErrnoException | undefined)?.path ?? current?.file ?? dir, err);
    }
  }
}
