import path from 'node:path';
import type { JournalWarning } from '../engine/warnings.js';
import { VerifyCodes, type ChainBreak, type VerifyProblem } from './verify-chain.js';

/** A gap `repair` journaled (a `journal.repair` record's payload item), with where that record is. */
export interface RecordedGap {
  file: string;
  quarantine: string;
  after: { seq: number; h: string } | null;
  resume: { seq: number; h: string };
  missing: [number, number];
  /** The journal.repair record that names it. */
  recordedAt: { file: string; line: number | null };
}

/** Something verify could not check, which is not a problem (history pruned from the archive, records of another reducer). */
export interface VerifyNote {
  code: string;
  file: string | null;
  line: number | null;
  message: string;
}

/** Problems not tied to a record (snapshots, orphan segments) sort after every problem in the history. */
const AFTER_HISTORY = Number.MAX_SAFE_INTEGER;

/**
 * The problems and notes of one verify run. Each problem keeps the ordinal
 * of the record it belongs to, because the phases find them out of history
 * order (a chain break is only explained at the record after it), and
 * `--expect-head` asks whether any problem lies at or before a record.
 */
export class Findings {
  private located: Array<{ problem: VerifyProblem; ordinal: number; at?: ChainBreak }> = [];
  /** About the store as a whole: listed after all the others, in the order found. */
  private readonly overall: VerifyProblem[] = [];
  readonly notes: VerifyNote[] = [];

  /** `dir`: the store directory file names are made relative to; undefined for a store on Redis, whose places are key names. */
  constructor(private readonly dir: string | undefined) {}

  /** Relative to the store directory, as the report names files (the directory itself keeps its own path). */
  relative(file: string): string {
    return this.dir === undefined ? file : path.relative(this.dir, file) || file;
  }

  add(problem: VerifyProblem, ordinal = AFTER_HISTORY, at?: ChainBreak): void {
    this.located.push({ problem, ordinal, ...(at && { at }) });
  }

  /**
   * A chain break that a `journal.repair` record names exactly (the seqs
   * missing, the record the chain resumes at with its hash, and the one
   * before with its hash) is what repair did, not tampering: a note, not a
   * problem. Any other break stays a problem.
   */
  explainGaps(gaps: readonly RecordedGap[]): void {
    const explains = (at: ChainBreak, g: RecordedGap) =>
      g.resume.seq === at.seq && g.resume.h === at.h && g.missing[0] === at.afterSeq + 1 && g.missing[1] === at.seq - 1 && (g.after === null || (g.after.seq === at.afterSeq && g.after.h === at.afterHash));
    this.located = this.located.filter(({ problem, at }) => {
      const gap = at && problem.code === VerifyCodes.RECORD_MISSING ? gaps.find((g) => explains(at, g)) : undefined;
      if (!gap) return true;
      const range = gap.missing[0] === gap.missing[1] ? `seq ${gap.missing[0]} was a damaged record` : `seq ${gap.missing[0]}-${gap.missing[1]} were damaged records`;
      this.notes.push({ code: 'REPAIRED_GAP', file: problem.file, line: problem.line, message: `${range} that repair moved to ${gap.quarantine} (journal.repair at ${gap.recordedAt.file}:${gap.recordedAt.line}); the chain resumes here` });
      return false;
    });
  }

  warning(w: JournalWarning, ordinal?: number): void {
    this.add({ code: w.code, file: w.file === undefined ? null : this.relative(w.file), line: w.line ?? null, offset: w.offset ?? null, ...(w.entry !== undefined && { entry: w.entry }), message: w.message }, ordinal);
  }

  addOverall(problem: VerifyProblem): void {
    this.overall.push(problem);
  }

  /** True when no problem belongs to the record with this ordinal or any before it. */
  noneUpTo(ordinal: number): boolean {
    return this.located.every((p) => p.ordinal > ordinal);
  }

  hasNote(code: string): boolean {
    return this.notes.some((n) => n.code === code);
  }

  /**
   * In history order; at one point, by file and then line. Store file names
   * are zero-padded numbers, so by name is by history there too (a
   * comparator that only ordered lines within a file was no ordering at all
   * once problems of two snapshots shared a point).
   */
  problems(): VerifyProblem[] {
    const byName = (a: string | null, b: string | null) => (a === b ? 0 : a === null ? -1 : b === null ? 1 : a < b ? -1 : 1);
    const sorted = [...this.located].sort((a, b) => a.ordinal - b.ordinal || byName(a.problem.file, b.problem.file) || (a.problem.line ?? 0) - (b.problem.line ?? 0));
    return [...sorted.map((p) => p.problem), ...this.overall];
  }
}
