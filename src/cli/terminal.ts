import type { Writable } from 'node:stream';
import type { Painter } from '../audit/replay-format.js';

/** Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org). */
export function useColour(stream: Writable, env: NodeJS.ProcessEnv): boolean {
  return Boolean((stream as { isTTY?: boolean }).isTTY) && !('NO_COLOR' in env && env.NO_COLOR !== '');
}

/** ANSI colours, or none: the painter the history layer's formatters take. */
export type Paint = Painter;

const wrap = (open: number, close: number) => (s: string) => `\u001b[${open}m${s}\u001b[${close}m`;
const plain = (s: string) => s;

export function paint(enabled: boolean): Paint {
  if (!enabled) return { dim: plain, bold: plain, red: plain, green: plain, yellow: plain, cyan: plain };
  return { dim: wrap(2, 22), bold: wrap(1, 22), red: wrap(31, 39), green: wrap(32, 39), yellow: wrap(33, 39), cyan: wrap(36, 39) };
}

export interface Progress {
  /** Reports `done` out of `total` units (bytes, records); redraws at most every 100 ms. */
  update(done: number): void;
  /** Clears the bar. */
  finish(): void;
}

const SILENT: Progress = { update: () => undefined, finish: () => undefined };

/**
 * A one-line progress bar on stderr, for long work on a terminal. None when
 * stderr is not a terminal or the output is --json.
 */
export function progressBar(stderr: Writable, label: string, total: number, enabled: boolean): Progress {
  if (!enabled || !(stderr as { isTTY?: boolean }).isTTY || total <= 0) return SILENT;
  let last = 0;
  const width = 30;
  return {
    update(done: number) {
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      const ratio = Math.min(1, done / total);
      const filled = Math.round(ratio * width);
      stderr.write(`\r${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(ratio * 100).toFixed(0).padStart(3)}%`);
    },
    finish() {
      if (last !== 0) stderr.write(`\r${' '.repeat(label.length + width + 8)}\r`);
    },
  };
}
