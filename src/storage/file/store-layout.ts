import { crypto } from '../../lazy.js';
const os = process.getBuiltinModule('node:os');
const path = process.getBuiltinModule('node:path');

/**
 * Every name a store directory may hold, in the order docs/FORMAT.md ("The
 * store directory") describes them. The writer, the readers, the compactor,
 * verify and repair all take names from here: a name written twice is a
 * name that drifts, and a drifted name loses a file.
 */

// ---- segments and snapshots --------------------------------------------------

const SEGMENT_RE = /^journal-(\d{8,})\.ndjson$/;
const SNAPSHOT_RE = /^snapshot-(\d{8,})\.ndjson$/;

/** Segment N: journal records (8 or more digits). */
export const segmentName = (n: number): string => `journal-${String(n).padStart(8, '0')}.ndjson`;
/** Snapshot N: the state folded from every segment numbered below N. */
export const snapshotName = (n: number): string => `snapshot-${String(n).padStart(8, '0')}.ndjson`;

/** The number in a segment's name (`journal-00000007.ndjson` is 7), or undefined for any other name. */
export function segmentNumberOf(file: string): number | undefined {
  const m = SEGMENT_RE.exec(path.basename(file));
  return m ? Number(m[1]) : undefined;
}

/** The number in a snapshot's name, or undefined for any other name. */
export function snapshotNumberOf(file: string): number | undefined {
  const m = SNAPSHOT_RE.exec(path.basename(file));
  return m ? Number(m[1]) : undefined;
}

// ---- locks ---------------------------------------------------------------------

/** Held around one commit (proper-lockfile's mkdir lock). */
export const LOCK_NAME = 'journal.lock';
/** Held for a whole compaction or repair: one at a time. */
export const COMPACTION_LOCK_NAME = 'compact.lock';
/** The automatic compaction's claim: running, busy or failed, and since when (compaction-claim.ts). */
export const AUTO_COMPACT_CLAIM_NAME = 'compact.claim';

// ---- archive and quarantine --------------------------------------------------

/** Folded segments and snapshots, gzipped. */
export const ARCHIVE_DIR = 'archive';
/** Bytes moved aside by repair and compaction, never deleted. */
export const QUARANTINE_DIR = 'quarantine';

/** A store file's name in the archive. */
export const archivedName = (name: string): string => `${name}.gz`;
const ARCHIVED_RE = { journal: /^journal-(\d{8,})\.ndjson\.gz$/, snapshot: /^snapshot-(\d{8,})\.ndjson\.gz$/ } as const;

/** The number of an archived segment or snapshot (`journal-00000003.ndjson.gz`), or undefined. */
export function archivedNumberOf(name: string, kind: 'journal' | 'snapshot'): number | undefined {
  const m = ARCHIVED_RE[kind].exec(name);
  return m ? Number(m[1]) : undefined;
}

/** True for any archived store file (what archive retention may delete). */
export const isArchivedName = (name: string): boolean => name.endsWith('.ndjson.gz');

// ---- what makes a directory a store ------------------------------------------

/**
 * True for the names only a store holds: segments, snapshots, the locks,
 * the automatic compaction's claim, archive/ and quarantine/. A directory with none of them is not a store
 * (an empty directory, a store's parent); a writer makes segment 1 when it
 * opens a new store, so even a store with no records yet has one.
 */
export function isStoreName(name: string): boolean {
  return SEGMENT_RE.test(name) || SNAPSHOT_RE.test(name) || name === LOCK_NAME || name === COMPACTION_LOCK_NAME || name === AUTO_COMPACT_CLAIM_NAME || name === ARCHIVE_DIR || name === QUARANTINE_DIR;
}

// ---- temporary files -----------------------------------------------------------

const TEMP_RE = /\.tmp-(.+)-(\d+)-[0-9a-f]{8}$/;

/**
 * A temporary file's name: the final name, then this host and process and 8
 * hex digits, so no two writers pick the same one (a shared temp name broke
 * another MCP SDK's store) and a leftover says whose it was. `fixed` gives
 * a name this process reuses (the clock probe).
 */
export function tempNameFor(finalPath: string, fixed = false): string {
  const suffix = fixed ? '00000000' : crypto().randomBytes(4).toString('hex');
  return `${finalPath}.tmp-${os.hostname()}-${process.pid}-${suffix}`;
}

/** Who made a temporary file, from its name; undefined for any other name. */
export function tempFileOwner(name: string): { host: string; pid: number } | undefined {
  const m = TEMP_RE.exec(name);
  return m ? { host: m[1]!, pid: Number(m[2]) } : undefined;
}
