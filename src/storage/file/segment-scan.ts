import { CommitAssembler } from '../../engine/commit-framing.js';
import { LineDecoder, rotationTarget, type CommitHeader, type JournalRecord, type Rejection } from '../../engine/record-codec.js';
import { DEFAULT_MAX_RECORD_BYTES, joinParts } from '../../engine/record-parts.js';
import { isCr } from './line-framing.js';
import { SegmentReader, type LinePlace } from './segment-reader.js';
import { fdSize, readFully, segmentNumberOf } from './store-files.js';
import { WarningCodes, type WarningCode } from '../../engine/warnings.js';

/** A run of bytes that no reader can use: one line with its newline, a BOM, or an unfinished tail. */
export interface BadSpan {
  /** 1-based line number, as replay warnings count them. */
  line: number;
  /** Byte offset of the first byte. */
  offset: number;
  /** Bytes, including the line's newline when it has one. */
  length: number;
  reason: WarningCode;
  message: string;
}

/** A line that replay skips but that is not damage: another version's or a larger-limit writer's record. */
export interface KeptLine {
  line: number;
  offset: number;
  reason: WarningCode;
  message: string;
}

/**
 * Where removing the damage leaves the hash chain without records: the
 * damage stood for committed records (a record whose bytes were corrupted
 * after it was written: the records after it still number and chain past
 * it). `repair` journals these in a `journal.repair` record, so that verify
 * can tell them from a deletion it did not make.
 */
export interface ChainGap {
  /** The last applied record before the damage, in this segment (null: the damage opens the segment). */
  after: { seq: number; h: string } | null;
  /** The first applied record after it: where the chain resumes. */
  resume: { seq: number; h: string };
  /** The sequence numbers no record holds any more (inclusive). */
  missing: [number, number];
}

export interface SegmentScan {
  file: string;
  /** The seq of the last applied record before this segment (the framing's starting point), and after it. */
  startSeq: number;
  endSeq: number;
  /** Chain gaps that moving the damage out leaves. */
  gaps: ChainGap[];
  /** Bytes scanned (the file size when the scan started). */
  size: number;
  /** Complete lines (and a BOM) to quarantine. */
  bad: BadSpan[];
  /** Skipped lines left in place on purpose. */
  kept: KeptLine[];
  /** Bytes after the last newline: torn, or an append in progress. */
  tail?: BadSpan & { wholeRecord: boolean };
  /** True when a valid rotation marker closes the segment: no writer appends to it any more. */
  closed: boolean;
  /** Where the last complete line starts (a damaged rotation marker is reported there). */
  lastLine?: { line: number; offset: number };
}

const NUL_CHECK_BYTES = 64 * 1024;

interface ScannedRecord {
  seq: number;
  commit?: CommitHeader;
  h: string | undefined;
  record: JournalRecord;
  place: LinePlace;
  end: number;
}

/**
 * Which lines of a segment are damage. Damage is what the replay skips
 * because the bytes are not a record at all: unparsable text, NUL runs, JSON
 * that is not an object, a broken envelope (including an invalid `ts`), a
 * byte order mark; and the records of commits no reader applies (the
 * framing rule, commit-framing.ts: an incomplete commit's, a stale writer's
 * copy), which are not in the hash chain; and the parts of a spread record
 * that do not join (record-parts.ts), which no reader applies. Where damage
 * stood for committed records, the gap it leaves in the chain is noted
 * (`gaps`). Records replay skips for other reasons (a newer format version,
 * a line over `maxLineBytes`, a record over `maxRecordBytes`) are kept.
 * Reads `size` bytes of `fd` with the replay's own line reader; never throws
 * on content.
 */
export function scanSegment(fd: number, file: string, maxLineBytes: number, size = fdSize(fd, file), startSeq = 0, maxRecordBytes = DEFAULT_MAX_RECORD_BYTES): SegmentScan {
  const scan: SegmentScan = { file, startSeq, endSeq: startSeq, gaps: [], size, bad: [], kept: [], closed: false };
  const number = segmentNumberOf(file) ?? 0;
  let last: ScannedRecord | undefined;
  let damageSinceLast = false;
  const framing = new CommitAssembler<ScannedRecord>(startSeq, {
    applied: (records) => {
      const unjoined = new Map<number, Rejection>();
      joinParts(records.length, (i) => records[i]!.record, maxRecordBytes, {
        whole: () => undefined,
        broken: (first, last, rejection) => {
          for (let i = first; i <= last; i++) unjoined.set(i, rejection);
        },
      });
      for (const [i, r] of records.entries()) {
        const rejection = unjoined.get(i);
        if (rejection?.code === WarningCodes.RECORD_TOO_LARGE) {
          scan.kept.push({ ...r.place, reason: rejection.code, message: `${rejection.message}; left in place` });
        } else if (rejection) {
          damage({ line: r.place.line, offset: r.place.offset, length: r.end - r.place.offset, reason: rejection.code, message: rejection.message });
          continue;
        }
        // Before the segment's first record, the seq to resume from is known only from the segment before (or at segment 1).
        const known = last !== undefined || startSeq > 0 || number === 1;
        if (damageSinceLast && known && r.h !== undefined && r.seq > (last?.seq ?? startSeq) + 1) {
          scan.gaps.push({ after: last?.h === undefined ? null : { seq: last.seq, h: last.h }, resume: { seq: r.seq, h: r.h }, missing: [(last?.seq ?? startSeq) + 1, r.seq - 1] });
        }
        last = r;
        damageSinceLast = false;
      }
    },
    rejected: (records, header, why) => {
      const reason = why === 'stale' ? WarningCodes.STALE_COMMIT : WarningCodes.INCOMPLETE_COMMIT;
      const message = why === 'stale' ? `a record of commit ${header.id}, numbered from an out-of-date view (its writer wrote it again): no reader applies it` : `a record of commit ${header.id}, which never reached the file whole: no reader applies it`;
      for (const r of records) scan.bad.push({ line: r.place.line, offset: r.place.offset, length: r.end - r.place.offset, reason, message });
    },
    warn: () => undefined, // the spans say what moves
  });
  const damage = (span: BadSpan) => {
    scan.bad.push(span);
    damageSinceLast = true;
  };
  const reader = new SegmentReader(fd, file, maxLineBytes, (w) => {
    if (w.code === WarningCodes.BOM_IGNORED) damage({ line: 1, offset: 0, length: 3, reason: w.code, message: 'UTF-8 byte order mark at start of file' });
  });
  reader.onTooLong = (place, end) => {
    const content = contentBytes(fd, file, place.offset, end);
    framing.unreadableLine(place, false);
    if (allNul(fd, file, place.offset, content)) damage({ line: place.line, offset: place.offset, length: end - place.offset, reason: WarningCodes.ZERO_FILLED, message: `line of ${content} NUL bytes` });
    else scan.kept.push({ line: place.line, offset: place.offset, reason: WarningCodes.LINE_TOO_LONG, message: `line of ${content} bytes exceeds maxLineBytes (${maxLineBytes}); left in place` });
  };
  const lines = new LineDecoder();
  reader.readTo(size, (text, place, end) => {
    scan.lastLine = { line: place.line, offset: place.offset };
    const decoded = lines.decode(text);
    if (decoded.ok) {
      const { record } = decoded;
      if (rotationTarget(record, number) !== undefined) scan.closed = true;
      framing.record({ seq: record.seq, commit: record.commit, h: record.hash, record, place, end }, place);
    } else if (decoded.rejection.code === WarningCodes.UNSUPPORTED_VERSION) {
      framing.unreadableLine(place, false);
      scan.kept.push({ ...place, reason: decoded.rejection.code, message: `${decoded.rejection.message}; left in place` });
    } else {
      framing.unreadableLine(place, 'sealed' in decoded);
      damage({ line: place.line, offset: place.offset, length: end - place.offset, reason: decoded.rejection.code, message: decoded.rejection.message });
    }
    return 'continue';
  });
  scan.bad.sort((a, b) => a.offset - b.offset);
  scan.endSeq = framing.lastSeq;
  const tailBytes = size - reader.offset;
  if (tailBytes > 0) {
    const nul = allNul(fd, file, reader.offset, tailBytes);
    const wholeRecord = !nul && tailBytes <= maxLineBytes && lines.decode(reader.peekTail(tailBytes).toString('utf8')).ok;
    scan.tail = {
      line: reader.line + 1,
      offset: reader.offset,
      length: tailBytes,
      reason: nul ? WarningCodes.ZERO_FILLED : WarningCodes.INCOMPLETE_TAIL,
      message: nul ? `file ends in ${tailBytes} NUL bytes with no newline (a zero-filled tail)` : `last ${tailBytes} bytes have no newline${wholeRecord ? ' (a whole record)' : ' (a torn write)'}`,
      wholeRecord,
    };
  }
  return scan;
}

/** The line's bytes without its newline and a CR before it, as readers measure it. */
function contentBytes(fd: number, file: string, offset: number, end: number): number {
  const last = Buffer.alloc(1);
  const hasCr = end - offset >= 2 && readFully(fd, file, last, end - 2, 1) === 1 && isCr(last[0]);
  return end - offset - 1 - (hasCr ? 1 : 0);
}

/** True when `length` bytes at `offset` are all NUL (read in small chunks: the run may be long). */
function allNul(fd: number, file: string, offset: number, length: number): boolean {
  const buffer = Buffer.allocUnsafe(Math.min(NUL_CHECK_BYTES, Math.max(length, 1)));
  for (let done = 0; done < length; ) {
    const got = readFully(fd, file, buffer, offset + done, Math.min(buffer.length, length - done));
    if (got === 0) return false;
    for (let i = 0; i < got; i++) if (buffer[i] !== 0) return false;
    done += got;
  }
  return length > 0;
}
