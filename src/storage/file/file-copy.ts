import fs from 'node:fs';
import { ErrorCodes, SessionJournalError, ioError } from '../../errors.js';
import { closeQuietly, readFully, writeFully } from './store-files.js';

/** An open segment that byte ranges are copied from, with the one buffer all copies share. */
export interface CopySource {
  fd: number;
  file: string;
  buffer: Buffer;
}

export type Write = (bytes: Uint8Array) => void;

/**
 * Creates `file` (0600, exclusive, no symlink), lets `fill` write it, fsyncs
 * and closes it. Errors of `fill`'s writes are reported against `file` here,
 * so that copies from another file need not know where they write.
 */
export function writeNewFile(file: string, fill: (write: Write) => void): void {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    throw ioError('create', file, err);
  }
  try {
    fill((bytes) => writeFully(fd, bytes));
    fs.fsyncSync(fd);
  } catch (err) {
    // Errors already ours (reading the source, a source cut short) pass through unchanged.
    throw ioError('write', file, err);
  } finally {
    closeQuietly(fd); // written and fsynced, or already failing
  }
}

export function copyRange(source: CopySource, offset: number, length: number, write: Write): void {
  const { fd, file, buffer } = source;
  let done = 0;
  while (done < length) {
    const got = readFully(fd, file, buffer, offset + done, Math.min(buffer.length, length - done));
    // The scan saw these bytes: a shorter file means someone truncated it since.
    if (got === 0) throw new SessionJournalError(ErrorCodes.IO_ERROR, `${file} is shorter than expected (truncated during the repair?)`, { details: { path: file } });
    write(buffer.subarray(0, got));
    done += got;
  }
}

/** A failed rename is reported against the destination: the file being published. */
export function renameFile(from: string, to: string): void {
  try {
    fs.renameSync(from, to);
  } catch (err) {
    throw ioError('rename', to, err);
  }
}
