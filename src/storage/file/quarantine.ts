import fs from 'node:fs';
import path from 'node:path';
import { ErrorCodes, SessionJournalError, ioError } from '../../errors.js';
import type { WarningCode } from '../../engine/warnings.js';
import { fsyncDirSync } from './store-files.js';
import { QUARANTINE_DIR, tempNameFor } from './store-layout.js';
import { copyRange, renameFile, writeNewFile, type CopySource } from './file-copy.js';
import type { BadSpan } from './segment-scan.js';

/** The directory beside the segments where repair keeps what it moved out. Readers ignore it. */
export { QUARANTINE_DIR };

/** One run of bad bytes moved out of a segment. Paths are relative to the store directory. */
export interface QuarantineItem {
  /** The segment the bytes came from. */
  file: string;
  /** 1-based line number in the segment before the repair. */
  line: number;
  /** Byte offset in the segment before the repair. */
  offset: number;
  /** Bytes moved (the line with its newline; a torn tail as it was). */
  length: number;
  /** The warning code replay gave these bytes. */
  reason: WarningCode;
  message: string;
  /** Where these bytes start in the quarantine file. */
  quarantineOffset: number;
}

export interface QuarantineBatch {
  /** The store directory. */
  dir: string;
  /** The segment the items come from. */
  name: string;
  /** When the repair started, as it appears in the file names. */
  stamp: string;
  bytesBefore: number;
  bytesAfter: number;
  items: QuarantineItem[];
  /**
   * Who moved the bytes: `repair` (the default; they left the segment) or
   * `compaction` (copied aside before the segment was archived; the segment
   * itself is unchanged). A compaction's batch has the fixed name
   * `<segment>.kept`, so a segment is kept aside once whatever happens.
   */
  by?: 'repair' | 'compaction';
}

export interface QuarantinePaths {
  bad: string;
  index: string;
}

/**
 * Publishes the items' bytes, read from `source`, and their index in
 * DIR/quarantine, each by an atomic rename, then fsyncs the directory.
 * Temporary names go into `temps` before the files are created: the caller
 * removes them together with its own if anything fails.
 */
export function writeQuarantine(batch: QuarantineBatch, source: CopySource, temps: string[]): QuarantinePaths {
  const { dir, name, stamp, bytesBefore, bytesAfter, items } = batch;
  const qdir = quarantineDir(dir);
  const by = batch.by ?? 'repair';
  const base = by === 'compaction' ? keptBase(name) : uniqueBase(qdir, `${name}.${stamp}`);
  const badPath = path.join(qdir, `${base}.bad`);
  const indexPath = path.join(qdir, `${base}.json`);
  const badTemp = tempNameFor(badPath);
  temps.push(badTemp);
  writeNewFile(badTemp, (write) => {
    for (const item of items) copyRange(source, item.offset, item.length, write);
  });
  renameFile(badTemp, badPath);
  const when = by === 'compaction' ? { by, keptAt: stamp } : { repairedAt: stamp };
  const index = { v: 1, kind: 'quarantine', file: name, quarantine: `${base}.bad`, ...when, bytesBefore, bytesAfter, items };
  const indexTemp = tempNameFor(indexPath);
  temps.push(indexTemp);
  writeNewFile(indexTemp, (write) => write(Buffer.from(JSON.stringify(index, null, 2) + '\n')));
  renameFile(indexTemp, indexPath);
  fsyncDirSync(qdir);
  return { bad: badPath, index: indexPath };
}

/** The fixed base name of what compaction keeps aside from one segment. */
export const keptBase = (segment: string): string => `${segment}.kept`;

/** DIR/quarantine, created 0700 when missing; a symlink in its place is refused. */
function quarantineDir(dir: string): string {
  const qdir = path.join(dir, QUARANTINE_DIR);
  try {
    fs.mkdirSync(qdir, { mode: 0o700 });
    fsyncDirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('mkdir', qdir, err);
  }
  let st: fs.Stats;
  try {
    st = fs.lstatSync(qdir);
  } catch (err) {
    throw ioError('lstat', qdir, err);
  }
  if (st.isSymbolicLink()) throw new SessionJournalError(ErrorCodes.SYMLINK_REFUSED, `${qdir} is a symbolic link; refusing to write through it`, { details: { path: qdir } });
  if (!st.isDirectory()) throw new SessionJournalError(ErrorCodes.NOT_A_DIRECTORY, `${qdir} is not a directory`, { details: { path: qdir } });
  return qdir;
}

/** Two repairs of a segment in the same millisecond (or with a fixed `now`) must not overwrite each other's files. */
function uniqueBase(qdir: string, base: string): string {
  for (let i = 0; ; i++) {
    const candidate = i === 0 ? base : `${base}-${i}`;
    if (!fs.existsSync(path.join(qdir, `${candidate}.bad`)) && !fs.existsSync(path.join(qdir, `${candidate}.json`))) return candidate;
  }
}

/** In offset order, because the quarantine file holds the bytes back to back in that order. */
export function itemsOf(file: string, spans: readonly BadSpan[]): QuarantineItem[] {
  let at = 0;
  return [...spans]
    .sort((a, b) => a.offset - b.offset)
    .map((s) => {
      const item = { file, line: s.line, offset: s.offset, length: s.length, reason: s.reason, message: s.message, quarantineOffset: at };
      at += s.length;
      return item;
    });
}
