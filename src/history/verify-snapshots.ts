import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { archiveDir } from '../compact/archive.js';
import { FORMAT_VERSION } from '../journal/record-codec.js';
import { listStore, snapshotName } from '../journal/store-files.js';
import type { JournalWarning } from '../journal/warnings.js';
import { readSnapshotSync, type SnapshotHeader } from '../snapshot/snapshot-file.js';

/** A snapshot as verify sees it: live in the store, or gzipped in the archive. */
export interface SnapshotInfo {
  /** The number in its name. */
  number: number;
  /** Path relative to the store directory. */
  file: string;
  archived: boolean;
  /** Set when readable. */
  header?: SnapshotHeader;
  entries?: Array<{ value: unknown; line: number; offset: number }>;
  /** Why it is not readable. */
  reason?: string;
}

const ARCHIVED_SNAPSHOT_RE = /^snapshot-(\d{8,})\.ndjson\.gz$/;

/** Every snapshot of the store and its archive, parsed (read-only). Line-level warnings go to `warn`. */
export function readAllSnapshots(dir: string, maxLineBytes: number, warn: (w: JournalWarning) => void): SnapshotInfo[] {
  const out: SnapshotInfo[] = [];
  let archived: string[] = [];
  try {
    archived = fs.readdirSync(archiveDir(dir)).sort();
  } catch {
    // no archive
  }
  for (const name of archived) {
    const m = ARCHIVED_SNAPSHOT_RE.exec(name);
    if (!m) continue;
    const file = path.join('archive', name);
    let text: string;
    try {
      text = zlib.gunzipSync(fs.readFileSync(path.join(dir, file))).toString('utf8');
    } catch (err) {
      out.push({ number: Number(m[1]), file, archived: true, reason: `cannot be read or decompressed: ${(err as Error).message}` });
      continue;
    }
    out.push({ number: Number(m[1]), file, archived: true, ...parseSnapshotText(text) });
  }
  for (const n of listStore(dir).snapshots) {
    const file = snapshotName(n);
    const result = readSnapshotSync(path.join(dir, file), maxLineBytes, warn);
    if (result.ok) {
      out.push({ number: n, file, archived: false, header: result.header, entries: result.entries.map((e) => ({ value: e.value, line: e.place.line, offset: e.place.offset })) });
    } else {
      out.push({ number: n, file, archived: false, reason: result.reason });
    }
  }
  return out.sort((a, b) => a.number - b.number || Number(a.archived) - Number(b.archived));
}

/** The same checks as readSnapshotSync, on the text of a decompressed snapshot. */
function parseSnapshotText(text: string): Pick<SnapshotInfo, 'header' | 'entries' | 'reason'> {
  let header: SnapshotHeader | undefined;
  let footer: { entries: number } | undefined;
  const entries: Array<{ value: unknown; line: number; offset: number }> = [];
  let offset = 0;
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  else return { reason: 'no final newline: the file is truncated' };
  for (const [i, rawLine] of lines.entries()) {
    const lineOffset = offset;
    offset += Buffer.byteLength(rawLine) + 1;
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return { reason: `line ${i + 1} is not valid JSON` };
    }
    if (!header) {
      const h = value as SnapshotHeader;
      if (h?.kind !== 'snapshot' || typeof h.segment !== 'number' || typeof h.seq !== 'number') return { reason: 'first line is not a snapshot header' };
      if (h.v > FORMAT_VERSION) return { reason: `snapshot format ${h.v} is newer than ${FORMAT_VERSION}` };
      header = h;
    } else if (footer) {
      return { reason: `data after the footer at line ${i + 1}` };
    } else if ((value as { end?: unknown })?.end === true) {
      footer = value as { entries: number };
    } else {
      entries.push({ value, line: i + 1, offset: lineOffset });
    }
  }
  if (!header) return { reason: 'empty snapshot' };
  if (!footer) return { reason: 'no footer: the file is truncated' };
  if (footer.entries !== entries.length) return { reason: `footer counts ${footer.entries} entries, file has ${entries.length}` };
  return { header, entries };
}
