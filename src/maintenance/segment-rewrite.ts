import path from 'node:path';
import { ErrorCodes, SessionJournalError } from '../errors.js';
import { closeQuietly, fdSize, fsyncDirSync, openStoreFile, removeQuietly } from '../storage/file/store-files.js';
import { tempNameFor } from '../storage/file/store-layout.js';
import { QUARANTINE_DIR, itemsOf, writeQuarantine } from '../storage/file/quarantine.js';
import { copyRange, renameFile, writeNewFile, type CopySource } from '../storage/file/file-copy.js';
import { total, type RepairedFile } from './repair-report.js';
import { scanSegment, type ChainGap } from '../storage/file/segment-scan.js';

const COPY_CHUNK_BYTES = 1024 * 1024;

/**
 * Rewrites one closed segment without its bad bytes; they go to the
 * quarantine first. `startSeq`: the seq readers have applied before this
 * segment (the framing rule needs it). Also returns the chain gaps the
 * removal leaves, each with the quarantine file that holds the bytes.
 */
export function rewriteSegment(dir: string, name: string, maxLineBytes: number, stamp: string, startSeq: number): { file: RepairedFile; gaps: Array<ChainGap & { file: string; quarantine: string }> } | undefined {
  const file = path.join(dir, name);
  const fd = openStoreFile(file, 'read');
  if (fd === undefined) return undefined;
  const temps: string[] = [];
  try {
    const size = fdSize(fd, file);
    const scan = scanSegment(fd, file, maxLineBytes, size, startSeq);
    const items = itemsOf(name, scan.tail ? [...scan.bad, scan.tail] : scan.bad);
    if (items.length === 0) return undefined;
    const source: CopySource = { fd, file, buffer: Buffer.allocUnsafe(COPY_CHUNK_BYTES) };

    // 1. The good lines, byte for byte, to a unique temporary file.
    const temp = tempNameFor(file);
    temps.push(temp);
    writeNewFile(temp, (write) => {
      let from = 0;
      for (const item of items) {
        copyRange(source, from, item.offset - from, write);
        from = item.offset + item.length;
      }
      copyRange(source, from, size - from, write);
    });

    // 2. The bad bytes and their index, published in the quarantine before the segment loses them.
    const bytesAfter = size - total(items);
    const quarantined = writeQuarantine({ dir, name, stamp, bytesBefore: size, bytesAfter, items }, source, temps);

    // 3. The switch: nothing may have been appended to a closed segment meanwhile.
    if (fdSize(fd, file) !== size) {
      throw new SessionJournalError(ErrorCodes.IO_ERROR, `${file} changed during the repair (a writer without the lock?); left as it was, its bad bytes are also in ${quarantined.bad}`, { details: { path: file } });
    }
    renameFile(temp, file);
    fsyncDirSync(dir);
    temps.length = 0;
    const rel = (p: string) => path.join(QUARANTINE_DIR, path.basename(p));
    const repaired: RepairedFile = { file: name, quarantine: rel(quarantined.bad), index: rel(quarantined.index), bytesBefore: size, bytesAfter, items };
    return { file: repaired, gaps: scan.gaps.map((g) => ({ file: name, quarantine: repaired.quarantine!, ...g })) };
  } finally {
    closeQuietly(fd); // only read
    for (const t of temps) removeQuietly(t);
  }
}
