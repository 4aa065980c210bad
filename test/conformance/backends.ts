/**
 * The backends the conformance suite runs over, as abstract-level runs one
 * suite over every store: each suite file loops `for (const backend of
 * backends)` and registers its tests as `[name] ...`. A backend says how to
 * make an empty store location, open the three stores there, compact one,
 * read what its journal holds, damage it the way real life does, and tell a
 * child process where the store is. The suites use nothing else besides
 * the public API and `await store.catchUp()`.
 *
 * The directory backend is here; the Redis one is redis-backend.ts, and
 * joins the list once its storage lands.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import {
  JournalEventStore,
  KeyValueStore,
  SessionStore,
  compactEventStore,
  compactKeyValueStore,
  compactSessions,
  type CompactEventStoreOptions,
  type CompactKeyValueStoreOptions,
  type CompactResult,
  type CompactSessionsOptions,
  type JournalEventStoreOptions,
  type KeyValueStoreOptions,
  type SessionStoreOptions,
} from '../../src/index.js';
import { stampLock } from '../helpers/held-lock.js';
import { tempStoreDir } from '../helpers/temp-store.js';
import { liveSegmentPath, tearLiveSegment } from '../helpers/tear-segment.js';

export type StoreKind = 'sessions' | 'kv' | 'events';

/** Where a store is: what open() takes besides its options. Plain JSON, so it crosses to a child process as it is. */
export type Location = { dir: string } | { redis: { url: string; prefix: string } };

/** Store options without the location (the backend adds it). */
export type Opts<T> = Omit<Partial<T>, 'dir' | 'redis'>;

/** A compaction's options without the location: `now` always (tests own time), the kind's retention limits. */
export type CompactOpts = Omit<Partial<CompactSessionsOptions & CompactKeyValueStoreOptions & CompactEventStoreOptions>, 'dir'> & { now: () => number };

/** One journal line as stored: its text, and the record when it parses as a JSON object. */
export interface StoredLine {
  text: string;
  record?: { v?: number; seq: number; ts: number; t: string; p: Record<string, unknown>; c?: string; w?: string };
}

export interface Backend {
  readonly name: string;
  /** A new, empty store location, removed when the test ends. */
  fresh(t: ExecutionContext): Promise<Location>;
  openSessions(at: Location, options?: Opts<SessionStoreOptions>): Promise<SessionStore>;
  openKv(at: Location, options?: Opts<KeyValueStoreOptions>): Promise<KeyValueStore>;
  openEvents(at: Location, options?: Opts<JournalEventStoreOptions>): Promise<JournalEventStore>;
  /** The kind's compaction (compactSessions, compactKeyValueStore, compactEventStore) of the store at `at`. */
  compact(kind: StoreKind, at: Location, options: CompactOpts): Promise<CompactResult>;
  /** Every journal line the store holds beyond its snapshot, in order (a directory: its segments; Redis: its stream). */
  lines(at: Location): Promise<StoredLine[]>;
  /** The same, read before this call returns: only a backend this process can read synchronously has it (a directory). */
  readonly linesSync?: (at: Location) => StoredLine[];
  /** The entries of the newest snapshot, parsed (undefined when there is none). */
  snapshotEntries(at: Location): Promise<unknown[] | undefined>;
  /** True when nothing exists at `at`: no directory, or no key under the prefix. */
  untouched(at: Location): Promise<boolean>;
  readonly damage: {
    /**
     * Puts `text` (no newline) after the last record as one line that is no
     * record: garbage. Resolves with what every warning about it names in its
     * `file` (a directory: the segment's path; Redis: at least the prefix).
     */
    garbageAfterLast(at: Location, text: string): Promise<string>;
    /**
     * Puts `text`, half a record, where a writer that died mid-write leaves
     * it: after the last record, as that writer would have (a directory: the
     * end of the live segment, under the store lock, no newline).
     */
    tornAfterLast(at: Location, text: string): Promise<void>;
    /** How torn `text` reads as a line once writers appended after it (a directory seals it with a record separator, 0x1E). */
    sealed(text: string): string;
    /** Changes one byte inside the newest snapshot's entries: it still parses, but its checksum no longer matches. */
    corruptSnapshot(at: Location): Promise<void>;
  };
  /**
   * Whether a read applies what other processes committed by itself (a
   * directory: one fstat per read). When false (Redis), only `await
   * catchUp()` does; the suites then call it, and otherwise leave the read to
   * show that it caught up alone.
   */
  readonly readsCatchUp: boolean;
  /** Whether a store whose newest snapshot is unreadable reads an older copy (a directory: archive/) and so loses nothing. */
  readonly snapshotFallback: boolean;
  /**
   * After a writer was SIGKILLed at `deadAt` (lockLibraryClock(): the clock file times are compared with),
   * lets the survivors go on without waiting out what it may have left held
   * (a directory: its lock, until stale) while `until` is pending. True when
   * there was something to clear.
   */
  afterKill(at: Location, deadAt: number, until: Promise<unknown>): Promise<boolean>;
  /** What a child process (child-store.js, kv-child.js) is sent to open the same store: `dir`, or `redis`. */
  child(at: Location): Location;
}

// ---- the directory backend ------------------------------------------------

const dirOf = (at: Location): string => {
  if (!('dir' in at)) throw new TypeError('not a directory location');
  return at.dir;
};

function segmentsOf(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => /^journal-\d{8,}\.ndjson$/.test(f))
    .sort((a, b) => Number(a.slice(8, -7)) - Number(b.slice(8, -7)));
}

function newestSnapshot(dir: string): string | undefined {
  if (!fs.existsSync(dir)) return undefined;
  const names = fs.readdirSync(dir).filter((f) => /^snapshot-\d{8,}\.ndjson$/.test(f));
  names.sort((a, b) => Number(a.slice(9, -7)) - Number(b.slice(9, -7)));
  const newest = names.pop();
  return newest === undefined ? undefined : path.join(dir, newest);
}

function directoryLines(dir: string): StoredLine[] {
  return segmentsOf(dir).flatMap((name) =>
    fs
      .readFileSync(path.join(dir, name), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map(storedLine),
  );
}

/** A line as stored: parsed when it is a JSON object. Exported for the Redis backend, whose stream entries are the same lines. */
export function storedLine(text: string): StoredLine {
  try {
    const record = JSON.parse(text) as unknown;
    if (record !== null && typeof record === 'object' && !Array.isArray(record)) return { text, record: record as StoredLine['record'] };
  } catch {
    // a damaged line: its text alone
  }
  return { text };
}

/** The lines of a snapshot that are entries: neither its header nor its footer. */
export function snapshotEntryLines(text: string): unknown[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((o) => o.kind !== 'snapshot' && o.end !== true);
}

/** Index in `text` of an ASCII letter inside the entries (past the first line), whose case flips without breaking the JSON. */
export function letterToFlip(text: string): number {
  const from = text.indexOf('\n') + 1;
  const footer = text.lastIndexOf('{"end"');
  for (let i = from; i < (footer > from ? footer : text.length); i++) if (/[a-z]/.test(text[i]!)) return i;
  throw new Error('no letter to change in the snapshot entries');
}

export const flipCase = (text: string, i: number): string => text.slice(0, i) + text[i]!.toUpperCase() + text.slice(i + 1);

/**
 * The same stale-lock watch as the crash tests had: a lock directory taken
 * before the victim died that stays the same for a full second (no live
 * holder keeps it that long) is the dead writer's; its mtime is backdated
 * past the stale limit, which is what proper-lockfile's staleness check reads.
 */
async function fastForwardOrphanLock(dir: string, deadAt: number, until: Promise<unknown>): Promise<boolean> {
  const lockPath = path.join(dir, 'journal.lock');
  let finished = false;
  void until.finally(() => {
    finished = true;
  });
  let seen: { key: string; since: number } | undefined;
  while (!finished) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    let stat: fs.Stats;
    try {
      stat = fs.statSync(lockPath);
    } catch {
      seen = undefined;
      continue;
    }
    // proper-lockfile gives successive locks the same mtime (and maybe inode); ctime tells them apart.
    const key = `${stat.ino}:${stat.ctimeMs}:${stat.mtimeMs}`;
    if (seen?.key !== key) {
      seen = { key, since: performance.now() };
      continue;
    }
    if (stat.ctimeMs <= deadAt && performance.now() - seen.since >= 1000) {
      stampLock(lockPath, 11_000); // past the stale limit, by the lock library's clock
      return true;
    }
  }
  return false;
}

export const directoryBackend: Backend = {
  name: 'dir',
  fresh: async (t) => ({ dir: tempStoreDir(t) }),
  openSessions: (at, options = {}) => SessionStore.open({ ...options, dir: dirOf(at) }),
  openKv: (at, options = {}) => KeyValueStore.open({ ...options, dir: dirOf(at) }),
  openEvents: (at, options = {}) => JournalEventStore.open({ ...options, dir: dirOf(at) }),
  compact: (kind, at, options) => {
    const dir = dirOf(at);
    if (kind === 'sessions') return compactSessions({ ...options, dir });
    if (kind === 'kv') return compactKeyValueStore({ ...options, dir });
    return compactEventStore({ ...options, dir });
  },
  lines: async (at) => directoryLines(dirOf(at)),
  linesSync: (at) => directoryLines(dirOf(at)),
  snapshotEntries: async (at) => {
    const file = newestSnapshot(dirOf(at));
    return file === undefined ? undefined : snapshotEntryLines(fs.readFileSync(file, 'utf8'));
  },
  untouched: async (at) => !fs.existsSync(dirOf(at)),
  damage: {
    // Like fixtures/journals/garbage-lines: a line that is no JSON, in the live segment, newline-terminated.
    garbageAfterLast: async (at, text) => {
      const file = liveSegmentPath(dirOf(at));
      if (!file) throw new Error('no segment to damage');
      fs.appendFileSync(file, `${text}\n`);
      return file;
    },
    // Like fixtures/journals/torn-last-line: a cut record at the end, written as a writer writes.
    tornAfterLast: async (at, text) => void tearLiveSegment(dirOf(at), text),
    sealed: (text) => `${text}\x1e`,
    // Like fixtures/stores/damaged-snapshot-archive-fallback: a byte of an entry changed, the footer's sha256 now wrong.
    corruptSnapshot: async (at) => {
      const file = newestSnapshot(dirOf(at));
      if (!file) throw new Error('no snapshot to damage');
      const text = fs.readFileSync(file, 'utf8');
      fs.writeFileSync(file, flipCase(text, letterToFlip(text)));
    },
  },
  readsCatchUp: true,
  snapshotFallback: true,
  afterKill: (at, deadAt, until) => fastForwardOrphanLock(dirOf(at), deadAt, until),
  child: (at) => ({ dir: dirOf(at) }),
};
