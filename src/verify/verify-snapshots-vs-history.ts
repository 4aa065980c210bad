import { stableStringify } from '../engine/canonical-json.js';
import { CHAIN_START } from '../engine/record-codec.js';
import { VerifyCodes, shortHash } from './verify-chain.js';
import type { Findings } from './verify-findings.js';
import type { ReadableSnapshot } from './verify-snapshots.js';
import type { HistoryWalk } from './verify-walk.js';

type WalkedHistory = Pick<HistoryWalk, 'reachedSegments' | 'markers' | 'checkpoints' | 'retention' | 'otherTypes'>;

/**
 * Each snapshot against the walked history: its header against the rotation
 * marker that closed the segment before it, and (for a store of session
 * records only, the only ones folded) its sessions against the fold there.
 */
export function checkSnapshotsAgainstHistory(snapshots: readonly ReadableSnapshot[], history: WalkedHistory, findings: Findings): void {
  const sessionStore = history.otherTypes.size === 0;
  if (!sessionStore) {
    findings.notes.push({ code: 'NOT_SESSION_RECORDS', file: null, line: null, message: `records of types ${[...history.otherTypes].sort().join(', ')} are not session records: the chain is checked, snapshot contents are not compared` });
  }
  for (const snap of snapshots) {
    checkHeader(snap, history, findings);
    if (sessionStore) checkState(snap, history, findings);
  }
}

function checkHeader(snap: ReadableSnapshot, history: WalkedHistory, findings: Findings): void {
  const { header } = snap;
  const closed = header.segment - 1;
  if (!history.reachedSegments.has(closed)) return;
  const marker = history.markers.get(closed);
  if (!marker || marker.next !== header.segment) {
    findings.add({ code: VerifyCodes.SNAPSHOT_HEADER_MISMATCH, file: snap.file, line: 1, offset: 0, message: `it folds segment ${closed}, but that segment does not end in a rotation marker to segment ${header.segment}` });
  } else if (marker.seq !== header.seq || (marker.h ?? CHAIN_START) !== (header.h ?? CHAIN_START)) {
    findings.add({
      code: VerifyCodes.SNAPSHOT_HEADER_MISMATCH,
      file: snap.file,
      line: 1,
      offset: 0,
      message: `the header says seq ${header.seq} h ${shortHash(header.h)}, but the rotation marker that closed segment ${closed} (${marker.place.file}:${marker.place.line}) has seq ${marker.seq} h ${shortHash(marker.h)}`,
    });
  }
}

function checkState(snap: ReadableSnapshot, history: WalkedHistory, findings: Findings): void {
  const { header } = snap;
  const expected = history.checkpoints.get(snap.number);
  if (!expected) {
    if (header.segment > 1) findings.notes.push({ code: 'STATE_NOT_COMPARED', file: snap.file, line: null, message: `the history before segment ${header.segment} is not complete, so the sessions in this snapshot are not compared with it` });
    return;
  }
  const marker = history.markers.get(header.segment - 1);
  const retained = new Set((history.retention.get(header.segment) ?? []).filter((d) => !marker || d.w === marker.w).map((d) => d.id));
  compareState(snap, expected, retained, findings);
}

/** The snapshot's sessions must be exactly the folded history's, but for sessions retention removed when it was written. */
function compareState(snap: ReadableSnapshot, expected: Map<string, string>, retained: Set<string>, findings: Findings): void {
  const seen = new Set<string>();
  for (const entry of snap.entries) {
    const id = (entry.value as { id?: unknown } | null)?.id;
    const where = { file: snap.file, line: entry.line, offset: entry.offset };
    if (typeof id !== 'string') {
      findings.add({ code: VerifyCodes.SNAPSHOT_STATE_MISMATCH, ...where, message: 'an entry without a session id' });
      continue;
    }
    seen.add(id);
    const want = expected.get(id);
    if (want === undefined) {
      findings.add({ code: VerifyCodes.SNAPSHOT_STATE_MISMATCH, ...where, message: `session ${JSON.stringify(id)} is in the snapshot but not in the history it folds` });
      continue;
    }
    const got = stableStringify(entry.value);
    if (got !== want) {
      findings.add({ code: VerifyCodes.SNAPSHOT_STATE_MISMATCH, ...where, message: `session ${JSON.stringify(id)} differs from the history it folds (${differingFields(JSON.parse(want), entry.value)})` });
    }
  }
  for (const id of expected.keys()) {
    if (!seen.has(id) && !retained.has(id)) {
      findings.add({ code: VerifyCodes.SNAPSHOT_STATE_MISMATCH, file: snap.file, line: null, offset: null, message: `session ${JSON.stringify(id)} is missing from the snapshot, and no retention record removed it` });
    }
  }
}

function differingFields(want: unknown, got: unknown): string {
  const a = (want ?? {}) as Record<string, unknown>;
  const b = (got ?? {}) as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort().filter((k) => stableStringify(a[k]) !== stableStringify(b[k]));
  return `field${keys.length === 1 ? '' : 's'} ${keys.join(', ')}`;
}
