import { listHistorySegments, type HistorySegment } from '../storage/file/history-reader.js';
import { fileSizeOrZero } from '../storage/file/store-files.js';
import type { CliIO } from './output.js';
import { progressBar, type Progress } from './terminal.js';

/** A replay shorter than this shows no progress bar at all. */
const PROGRESS_AFTER_MS = 500;

/**
 * A progress bar on stderr for a long human replay on a terminal, by bytes
 * of the segment files (an archived segment counts when it is done). Cleared
 * before each printed line so it never mixes with output on the same terminal.
 */
export class ReplayProgress {
  private readonly bar: Progress;
  private readonly enabled: boolean;
  private readonly started = Date.now();
  private readonly startOf = new Map<string, { start: number; size: number }>();
  private base = 0;
  private current: HistorySegment | undefined;
  private drawn = false;
  private lastDraw = 0;

  constructor(io: CliIO, dir: string, wanted: boolean) {
    this.enabled = wanted && Boolean((io.stderr as { isTTY?: boolean }).isTTY);
    let total = 0;
    if (this.enabled) {
      for (const segment of listHistorySegments(dir)) {
        const size = fileSizeOrZero(segment.file);
        this.startOf.set(segment.file, { start: total, size });
        total += size;
      }
    }
    this.bar = progressBar(io.stderr, 'replay', total, this.enabled);
  }

  segment(segment: HistorySegment): void {
    this.current = segment;
    this.base = this.startOf.get(segment.file)?.start ?? this.base;
  }

  at(offset: number): void {
    if (!this.enabled || !this.current) return;
    const now = Date.now();
    if (now - this.started < PROGRESS_AFTER_MS || now - this.lastDraw < 200) return;
    this.lastDraw = now;
    const size = this.startOf.get(this.current.file)?.size ?? 0;
    this.bar.update(this.base + (this.current.archived ? 0 : Math.min(offset, size)));
    this.drawn = true;
  }

  /** Removes the bar (before a line of output, and at the end). */
  clear(): void {
    if (!this.drawn) return;
    this.bar.finish();
    this.drawn = false;
  }
}
