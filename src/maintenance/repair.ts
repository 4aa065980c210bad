import fs from 'node:fs';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { ErrorCodes, SessionJournalError, ioError } from '../errors.js';
import { COMPACTION_LOCK_NAME, CompactionLock } from '../compact/compaction-lock.js';
import { removeAbandonedTempFiles } from '../compact/leftovers.js';
import { DEFAULT_MAX_LINE_BYTES, Journal, type JournalConsumer } from '../journal/journal.js';
import { LOCK_NAME, fdSize, fsyncDirSync, listStore, openStoreFile, prepareStoreDir, readFully, removeQuietly, segmentName, writeFully } from '../journal/store-files.js';
import type { WarningCode, WarningHandler } from '../journal/warnings.js';
import { tempNameFor } from '../snapshot/snapshot-writer.js';
import { scanSegment, type BadSpan, type SegmentScan } from './segment-scan.js';

/** The directory beside the segments where repair keeps what it moved out. Readers ignore it. */
export const QUARANTINE_DIR = 'quarantine';

export interface RepairOptions {
  /** The store directory (must exist). */
  dir: string;
  /** Only report what would move; takes no lock and changes nothing. */
  dryRun?: boolean;
  /** Wait this long for a running compaction and for the journal lock (default 30 s). */
  lockTimeoutMs?: number;
  /** The longest line a record may have (default 1 MiB, as the store's). */
  maxLineBytes?: number;
  /** Clock for the quarantine file names (default Date.now). */
  now?: () => number;
  /** Replay warnings of the journal opened to rotate the live segment (default: ignored; the result says what moved). */
  onWarning?: WarningHandler;
}

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

export interface RepairedFile {
  /** The segment rewritten (or, with dryRun, that would be). */
  file: string;
  /** `quarantine/<segment>.<time>.bad`: the bad bytes, back to back, exactly as they were; null with dryRun. */
  quarantine: string | null;
  /** `quarantine/<segment>.<time>.json`: the index of the items; null with dryRun. */
  index: string | null;
  bytesBefore: number;
  bytesAfter: number;
  items: QuarantineItem[];
}

/** A problem repair saw and left alone, with why. */
export interface LeftProblem {
  file: string;
  line: number;
  offset: number;
  reason: WarningCode;
  message: string;
}

export interface RepairResult {
  /** `clean`: nothing to do; `repaired`: bytes were moved (or only a whole-record tail was ended by a rotation); `would-repair`: dryRun found work. */
  status: 'clean' | 'repaired' | 'would-repair';
  dryRun: boolean;
  /** The live segment was closed by a rotation marker so it could be rewritten. */
  rotated: { closed: string; next: string } | null;
  /** With dryRun: the live segment a repair would rotate first. */
  wouldRotate?: string | null;
  files: RepairedFile[];
  itemsMoved: number;
  bytesMoved: number;
  left: LeftProblem[];
}

const NOOP_CONSUMER: JournalConsumer = { reset: () => undefined, restore: () => undefined, apply: () => undefined };
const COPY_CHUNK_BYTES = 1024 * 1024;

/**
 * Moves torn and corrupt bytes out of a store's segments into
 * `DIR/quarantine/`, never deleting them, so that replay finds nothing to
 * skip. Safe beside live writers:
 *
 * - the compaction lock is held throughout, so no compaction runs meanwhile;
 * - a live segment with damage is first closed by a rotation (under the
 *   journal lock), so writers move on to a new segment and nobody appends to
 *   the file about to be replaced; an unfinished last line is counted as
 *   damage only when no writer holds the journal lock (otherwise it may be an
 *   append in progress), and the rotation ends it with a newline under the lock;
 * - each closed segment with damage is rewritten: the good lines, byte for
 *   byte, to a unique temporary file (fsync), the bad bytes and their index
 *   to the quarantine (fsync), then the temporary file is renamed over the
 *   segment and the directory fsynced. A process still reading the old file
 *   keeps its descriptor on the old inode, which is unchanged.
 *
 * The removed lines were never part of the hash chain (writers chain from
 * the last valid record), so the chain stays intact.
 */
export async function repairStore(options: RepairOptions): Promise<RepairResult> {
  const dir = options.dir;
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  if (!prepareStoreDir(dir, false)) throw new SessionJournalError(ErrorCodes.STORE_NOT_FOUND, `no store at ${dir}`, { details: { dir } });
  if (options.dryRun) return plan(dir, maxLineBytes);

  const timeoutMs = options.lockTimeoutMs ?? 30_000;
  const lock = new CompactionLock(dir, path.join(dir, COMPACTION_LOCK_NAME));
  await lock.acquire(timeoutMs);
  try {
    removeAbandonedTempFiles(dir);
    removeAbandonedTempFiles(path.join(dir, QUARANTINE_DIR));
    let scans = scanStore(dir, maxLineBytes);
    let rotated: RepairResult['rotated'] = null;
    const tailCounts = !writerHoldsLock(dir);
    if (scans.some((s) => !s.scan.closed && liveDamage(s.scan, tailCounts))) {
      const journal = Journal.openSync({ dir, consumer: NOOP_CONSUMER, create: false, flushOnExit: false, lockTimeoutMs: timeoutMs, maxLineBytes, onWarning: options.onWarning ?? (() => undefined) });
      try {
        lock.check('rotation');
        const r = await journal.rotate();
        rotated = { closed: segmentName(r.closed), next: segmentName(r.next) };
      } finally {
        await journal.close();
      }
      scans = scanStore(dir, maxLineBytes);
    }
    const stamp = new Date((options.now ?? Date.now)()).toISOString().replace(/:/g, '-');
    const files: RepairedFile[] = [];
    for (const { name, scan } of scans) {
      if (!scan.closed || (scan.bad.length === 0 && !scan.tail)) continue;
      lock.check(`rewriting ${name}`);
      const repaired = rewriteSegment(dir, name, maxLineBytes, stamp);
      if (repaired) files.push(repaired);
    }
    const left = scans.flatMap(({ name, scan }) => leftProblems(name, scan, tailCounts, false));
    return summarize(files, left, rotated, false);
  } finally {
    await lock.releaseQuietly();
  }
}

interface NamedScan {
  name: string;
  scan: SegmentScan;
}

function scanStore(dir: string, maxLineBytes: number): NamedScan[] {
  const out: NamedScan[] = [];
  for (const n of listStore(dir).segments) {
    const name = segmentName(n);
    const file = path.join(dir, name);
    const fd = openStoreFile(file, 'read');
    if (fd === undefined) continue;
    try {
      out.push({ name, scan: scanSegment(fd, file, maxLineBytes) });
    } finally {
      fs.closeSync(fd);
    }
  }
  return out;
}

function liveDamage(scan: SegmentScan, tailCounts: boolean): boolean {
  return scan.bad.length > 0 || (scan.tail !== undefined && tailCounts);
}

/** What a repair would do, read without any lock. */
function plan(dir: string, maxLineBytes: number): RepairResult {
  const scans = scanStore(dir, maxLineBytes);
  const tailCounts = !writerHoldsLock(dir);
  const files: RepairedFile[] = [];
  const left: LeftProblem[] = [];
  let wouldRotate: string | null = null;
  for (const { name, scan } of scans) {
    const live = !scan.closed;
    const spans: BadSpan[] = [...scan.bad];
    if (scan.tail && (!live || tailCounts)) spans.push(scan.tail);
    left.push(...leftProblems(name, scan, tailCounts, true));
    if (spans.length === 0) continue;
    if (live) wouldRotate = name;
    // A whole record with no newline is kept: the rotation ends it and replay applies it.
    const moved = spans.filter((s) => !(live && s === scan.tail && scan.tail.wholeRecord));
    if (moved.length > 0) files.push({ file: name, quarantine: null, index: null, bytesBefore: scan.size, bytesAfter: scan.size - total(moved), items: itemsOf(name, moved) });
  }
  const result = summarize(files, left, null, true, wouldRotate !== null);
  result.wouldRotate = wouldRotate;
  return result;
}

/**
 * Problems a repair leaves alone. `moving`: the segment's damage is being (or
 * would be) moved, so only kept lines and a tail that may be in progress remain.
 */
function leftProblems(name: string, scan: SegmentScan, tailCounts: boolean, moving: boolean): LeftProblem[] {
  const left: LeftProblem[] = scan.kept.map((k) => ({ file: name, ...k }));
  if (scan.closed) return left;
  if (!moving) {
    // Still not closed after the rotation: not the live segment (an orphan no marker leads to).
    for (const b of scan.bad) left.push({ file: name, line: b.line, offset: b.offset, reason: b.reason, message: `${b.message}; left in place: no rotation marker closes this segment` });
  }
  if (scan.tail && (!tailCounts || !moving)) {
    const why = tailCounts ? 'no rotation marker closes this segment' : 'a writer holds the journal lock, so it may be an append in progress';
    left.push({ file: name, line: scan.tail.line, offset: scan.tail.offset, reason: scan.tail.reason, message: `${scan.tail.message}; left in place: ${why}` });
  }
  return left;
}

function summarize(files: RepairedFile[], left: LeftProblem[], rotated: RepairResult['rotated'], dryRun: boolean, wouldRotate = false): RepairResult {
  const itemsMoved = files.reduce((n, f) => n + f.items.length, 0);
  const bytesMoved = files.reduce((n, f) => n + total(f.items), 0);
  const changes = itemsMoved > 0 || rotated !== null || wouldRotate;
  const status = !changes ? 'clean' : dryRun ? 'would-repair' : 'repaired';
  return { status, dryRun, rotated, files, itemsMoved, bytesMoved, left };
}

const total = (spans: readonly { length: number }[]): number => spans.reduce((n, s) => n + s.length, 0);

function itemsOf(file: string, spans: readonly BadSpan[]): QuarantineItem[] {
  let at = 0;
  return [...spans]
    .sort((a, b) => a.offset - b.offset)
    .map((s) => {
      const item = { file, line: s.line, offset: s.offset, length: s.length, reason: s.reason, message: s.message, quarantineOffset: at };
      at += s.length;
      return item;
    });
}

/** Rewrites one closed segment without its bad bytes; they go to the quarantine first. */
function rewriteSegment(dir: string, name: string, maxLineBytes: number, stamp: string): RepairedFile | undefined {
  const file = path.join(dir, name);
  const fd = openStoreFile(file, 'read');
  if (fd === undefined) return undefined;
  const temps: string[] = [];
  try {
    const size = fdSize(fd, file);
    const scan = scanSegment(fd, file, maxLineBytes, size);
    const items = itemsOf(name, scan.tail ? [...scan.bad, scan.tail] : scan.bad);
    if (items.length === 0) return undefined;
    const buffer = Buffer.allocUnsafe(COPY_CHUNK_BYTES);

    // 1. The good lines, byte for byte, to a unique temporary file.
    const temp = tempNameFor(file);
    temps.push(temp);
    writeFileSync(temp, (out) => {
      let from = 0;
      for (const item of items) {
        copyRange(fd, file, from, item.offset - from, out, temp, buffer);
        from = item.offset + item.length;
      }
      copyRange(fd, file, from, size - from, out, temp, buffer);
    });

    // 2. The bad bytes and their index, published in the quarantine.
    const qdir = quarantineDir(dir);
    const base = uniqueBase(qdir, `${name}.${stamp}`);
    const badPath = path.join(qdir, `${base}.bad`);
    const indexPath = path.join(qdir, `${base}.json`);
    const badTemp = tempNameFor(badPath);
    temps.push(badTemp);
    writeFileSync(badTemp, (out) => {
      for (const item of items) copyRange(fd, file, item.offset, item.length, out, badTemp, buffer);
    });
    rename(badTemp, badPath);
    const bytesAfter = size - total(items);
    const index = { v: 1, kind: 'quarantine', file: name, quarantine: `${base}.bad`, repairedAt: stamp, bytesBefore: size, bytesAfter, items };
    const indexTemp = tempNameFor(indexPath);
    temps.push(indexTemp);
    writeFileSync(indexTemp, (out) => writeAll(out, indexTemp, Buffer.from(JSON.stringify(index, null, 2) + '\n')));
    rename(indexTemp, indexPath);
    syncDir(qdir);

    // 3. The switch: nothing may have been appended to a closed segment meanwhile.
    if (fdSize(fd, file) !== size) {
      throw new SessionJournalError(ErrorCodes.IO_ERROR, `${file} changed during the repair (a writer without the lock?); left as it was, its bad bytes are also in ${badPath}`, { details: { path: file } });
    }
    rename(temp, file);
    syncDir(dir);
    temps.length = 0;
    const rel = (p: string) => path.join(QUARANTINE_DIR, path.basename(p));
    return { file: name, quarantine: rel(badPath), index: rel(indexPath), bytesBefore: size, bytesAfter, items };
  } finally {
    fs.closeSync(fd);
    for (const t of temps) removeQuietly(t);
  }
}

/** DIR/quarantine, created 0700 when missing; a symlink in its place is refused. */
function quarantineDir(dir: string): string {
  const qdir = path.join(dir, QUARANTINE_DIR);
  try {
    fs.mkdirSync(qdir, { mode: 0o700 });
    syncDir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('mkdir', qdir, err);
  }
  const st = fs.lstatSync(qdir);
  if (st.isSymbolicLink()) throw new SessionJournalError(ErrorCodes.SYMLINK_REFUSED, `${qdir} is a symbolic link; refusing to write through it`, { details: { path: qdir } });
  if (!st.isDirectory()) throw new SessionJournalError(ErrorCodes.NOT_A_DIRECTORY, `${qdir} is not a directory`, { details: { path: qdir } });
  return qdir;
}

function uniqueBase(qdir: string, base: string): string {
  for (let i = 0; ; i++) {
    const candidate = i === 0 ? base : `${base}-${i}`;
    if (!fs.existsSync(path.join(qdir, `${candidate}.bad`)) && !fs.existsSync(path.join(qdir, `${candidate}.json`))) return candidate;
  }
}

/** Creates `file` (0600, exclusive, no symlink), lets `fill` write it, fsyncs and closes it. */
function writeFileSync(file: string, fill: (fd: number) => void): void {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    throw ioError('create', file, err);
  }
  try {
    fill(fd);
    fs.fsyncSync(fd);
  } catch (err) {
    if (err instanceof SessionJournalError) throw err;
    throw ioError('write', file, err);
  } finally {
    fs.closeSync(fd);
  }
}

function copyRange(from: number, fromFile: string, offset: number, length: number, to: number, toFile: string, buffer: Buffer): void {
  let done = 0;
  while (done < length) {
    const got = readFully(from, fromFile, buffer, offset + done, Math.min(buffer.length, length - done));
    if (got === 0) throw new SessionJournalError(ErrorCodes.IO_ERROR, `${fromFile} is shorter than expected (truncated during the repair?)`, { details: { path: fromFile } });
    writeAll(to, toFile, buffer.subarray(0, got));
    done += got;
  }
}

function writeAll(fd: number, file: string, bytes: Buffer): void {
  try {
    writeFully(fd, bytes);
  } catch (err) {
    throw ioError('write', file, err);
  }
}

function rename(from: string, to: string): void {
  try {
    fs.renameSync(from, to);
  } catch (err) {
    throw ioError('rename', to, err);
  }
}

function syncDir(dir: string): void {
  try {
    fsyncDirSync(dir);
  } catch (err) {
    throw ioError('fsync', dir, err);
  }
}

/** True when a writer (or a compaction's rotation) holds the journal lock right now. */
function writerHoldsLock(dir: string): boolean {
  try {
    return lockfile.checkSync(path.join(dir, 'journal'), { lockfilePath: path.join(dir, LOCK_NAME), realpath: false, stale: 10_000 });
  } catch {
    return false;
  }
}
