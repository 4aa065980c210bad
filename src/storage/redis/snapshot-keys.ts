import { setImmediate as nextTurn } from 'node:timers/promises';
import { ErrorCodes, SessionJournalError } from '../../errors.js';
import { crypto } from '../../lazy.js';
import { isChainHash } from '../../engine/record-codec.js';
import {
  DEFAULT_SNAPSHOT_LIMITS,
  SnapshotParser,
  checkSnapshotBytes,
  snapshotEntryLine,
  snapshotFooterLine,
  snapshotHeaderLine,
  snapshotTooLarge,
  tooLargeReason,
  tooLongReason,
  type SnapshotLimits,
  type SnapshotReadResult,
} from '../../engine/snapshot-codec.js';
import type { RedisConnection, RedisReply } from './connection.js';
import type { SnapshotManifest } from './scripts.js';

/**
 * A snapshot on Redis (docs/FORMAT.md, "The Redis backend"): the same text
 * as a snapshot file (engine/snapshot-codec.ts), cut into chunks of at most
 * 1 MiB, `{P}:snap:<gen>:<i>`, and described by the manifest `{P}:snap`.
 * The header's `segment` is the generation, as a file's is the number in
 * its name, so a header that does not belong to its manifest is refused.
 *
 * Chunks are cut at UTF-8 character boundaries, so each is valid text on
 * its own. They are written with a time to live (a compaction that dies
 * before installing leaves nothing behind for long); the install script
 * (scripts.ts) removes it as it publishes the manifest.
 */

/** The most a chunk holds: Redis strings can be larger, but a reply this size keeps one GET from holding the server or the client for long. */
export const MAX_CHUNK_BYTES = 1024 * 1024;
/** How long written, not yet installed chunks live (a day): a compaction installs long before. */
export const DEFAULT_PENDING_CHUNK_TTL_MS = 24 * 60 * 60 * 1000;
/** Chunks read (or written) at once. */
const CHUNKS_IN_FLIGHT = 8;

export interface WriteChunksOptions {
  /** Bytes per chunk, at most MAX_CHUNK_BYTES (the default). */
  chunkBytes?: number;
  limits?: SnapshotLimits;
  /** Time to live of the chunks until the install (default DEFAULT_PENDING_CHUNK_TTL_MS). */
  pendingTtlMs?: number;
  /** Stops between chunks: the chunks written so far are deleted and the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Reads of a snapshot that met a newer install, before a reader gives up with STORE_CHANGING. */
export const BASE_READ_ATTEMPTS = 5;

export type ManifestRead = { kind: 'none' } | { kind: 'ok'; manifest: SnapshotManifest } | { kind: 'bad'; reason: string };

const SHA256_RE = /^[0-9a-f]{64}$/;

/** The manifest `{P}:snap`: none, one whose fields all check, or why not. */
export async function readManifest(conn: RedisConnection): Promise<ManifestRead> {
  return parseManifest(await conn.command(['HGETALL', conn.keys.snap]));
}

/** A manifest from HGETALL's reply (a flat list of field, value). */
export function parseManifest(reply: RedisReply): ManifestRead {
  if (!Array.isArray(reply) || reply.length === 0) return { kind: 'none' };
  const fields = new Map<string, string>();
  for (let i = 0; i + 1 < reply.length; i += 2) fields.set(String(reply[i]), String(reply[i + 1]));
  const int = (name: string, min: number): number | string => {
    const text = fields.get(name);
    const value = text !== undefined && /^(0|[1-9][0-9]{0,15})$/.test(text) ? Number(text) : NaN;
    return Number.isSafeInteger(value) && value >= min ? value : `${name} ${JSON.stringify(text ?? null)} is not a whole number >= ${min}`;
  };
  const seq = int('seq', 0);
  const gen = int('gen', 1);
  const chunks = int('chunks', 1);
  const bytes = int('bytes', 1);
  for (const v of [seq, gen, chunks, bytes]) if (typeof v === 'string') return { kind: 'bad', reason: `the manifest's ${v}` };
  const h = fields.get('h') ?? '';
  if (h !== '' && !isChainHash(h)) return { kind: 'bad', reason: `the manifest's h ${JSON.stringify(h)} is not a chain hash` };
  const sha256 = fields.get('sha256') ?? '';
  if (!SHA256_RE.test(sha256)) return { kind: 'bad', reason: `the manifest's sha256 ${JSON.stringify(sha256)} is not 64 hex digits` };
  // Informational only (stats): a missing or unreadable `at` is no reason to refuse the snapshot.
  const at = int('at', 0);
  return { kind: 'ok', manifest: { seq: seq as number, h, gen: gen as number, chunks: chunks as number, bytes: bytes as number, sha256, ...(typeof at === 'number' && { at }) } };
}

/**
 * Writes the snapshot of `entries` folded up to (`seq`, `hash`) as the
 * chunks of generation `gen`, and returns its manifest, not yet installed
 * (StoreScripts.installSnapshot). SNAPSHOT_TOO_LARGE, before anything is
 * installed, for a snapshot readers would refuse; its chunks are deleted.
 */
export async function writeSnapshotChunks(conn: RedisConnection, gen: number, seq: number, hash: string, entries: Iterable<unknown>, options: WriteChunksOptions = {}): Promise<SnapshotManifest> {
  const limits = options.limits ?? DEFAULT_SNAPSHOT_LIMITS;
  const chunkBytes = options.chunkBytes ?? MAX_CHUNK_BYTES;
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 4 || chunkBytes > MAX_CHUNK_BYTES) throw new RangeError(`chunkBytes must be 4 to ${MAX_CHUNK_BYTES}, got ${chunkBytes}`);
  const ttl = String(options.pendingTtlMs ?? DEFAULT_PENDING_CHUNK_TTL_MS);
  conn.keys.chunk(gen, 0); // checks gen
  const digest = crypto().createHash('sha256');
  let chunks = 0;
  let bytes = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const writes = new Set<Promise<unknown>>();
  const put = async (chunk: Buffer): Promise<void> => {
    const key = conn.keys.chunk(gen, chunks++);
    // Each chunk ends on a character boundary, so it travels as text.
    const write = conn.command(['SET', key, chunk.toString('utf8'), 'PX', ttl]);
    writes.add(write);
    void write.then(
      () => writes.delete(write),
      () => undefined,
    );
    if (writes.size >= CHUNKS_IN_FLIGHT) await Promise.race(writes);
    if (options.signal?.aborted) throw options.signal.reason;
  };
  /** Writes whole chunks out of what is pending; everything with `all`. */
  const drain = async (all: boolean): Promise<void> => {
    while (pendingBytes >= chunkBytes || (all && pendingBytes > 0)) {
      const buf = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
      let cut = Math.min(chunkBytes, buf.length);
      // Never between the bytes of one character (a continuation byte is 10xxxxxx).
      while (cut < buf.length && cut > 0 && (buf[cut]! & 0xc0) === 0x80) cut--;
      const rest = buf.subarray(cut);
      pending = rest.length > 0 ? [rest] : [];
      pendingBytes = rest.length;
      await put(buf.subarray(0, cut));
    }
  };
  const add = async (text: string): Promise<void> => {
    const buf = Buffer.from(text, 'utf8');
    digest.update(buf);
    bytes += buf.length;
    checkSnapshotBytes(bytes, limits);
    pending.push(buf);
    pendingBytes += buf.length;
    if (pendingBytes >= chunkBytes) await drain(false);
  };
  try {
    await add(snapshotHeaderLine(gen, seq, hash));
    let count = 0;
    for (const entry of entries) {
      try {
        await add(snapshotEntryLine(entry, ++count, limits));
      } catch (err) {
        // An entry too big for a string at all (Invalid string length) is too large a snapshot.
        if (err instanceof RangeError) throw snapshotTooLarge(`an entry is too large to encode (${err.message})`, {}, err);
        throw err;
      }
      if (count % 256 === 0) await nextTurn(); // a stop request is heard even when entries are small
      if (options.signal?.aborted) throw options.signal.reason;
    }
    // The footer's sha256 covers every byte before it, as in a file; the manifest's covers the footer too.
    const footer = snapshotFooterLine(count, digest.copy().digest('hex'));
    await add(footer);
    await drain(true);
    await Promise.all(writes);
  } catch (err) {
    await Promise.allSettled(writes);
    await deleteSnapshotChunks(conn, gen, chunks).catch(() => undefined); // their time to live removes them otherwise
    throw err;
  }
  return { seq, h: hash, gen, chunks, bytes, sha256: digest.digest('hex') };
}

/** Deletes the chunks of a generation that will not be installed (a compaction that failed or was stopped). */
export async function deleteSnapshotChunks(conn: RedisConnection, gen: number, chunks: number): Promise<void> {
  for (let first = 0; first < chunks; first += 256) {
    const keys = Array.from({ length: Math.min(256, chunks - first) }, (_, i) => conn.keys.chunk(gen, first + i));
    await conn.command(['DEL', ...keys]);
  }
}

/** The base a store on Redis is read from: its snapshot, as the manifest names it. */
export type RedisBase =
  | { kind: 'none' }
  /** The manifest itself does not read. */
  | { kind: 'bad-manifest'; reason: string }
  /** The manifest, and its snapshot read and checked (`snapshot.ok` false: unreadable, with the reason). */
  | { kind: 'snapshot'; manifest: SnapshotManifest; snapshot: SnapshotReadResult };

/**
 * The current snapshot: the manifest and the snapshot it names, read and
 * checked (readSnapshotChunks). An install deletes the previous
 * generation's chunks, so a read that overlaps one meets missing chunks
 * that say nothing about the store: when a read fails and the manifest no
 * longer names the generation read, the newer snapshot is read instead.
 * An unreadable snapshot is answered only when the manifest still names it
 * after the read. STORE_CHANGING when every one of BASE_READ_ATTEMPTS reads
 * met a newer install (compactions back to back): nothing is known to be
 * wrong with the store.
 */
export async function readRedisBase(conn: RedisConnection, limits: SnapshotLimits = DEFAULT_SNAPSHOT_LIMITS): Promise<RedisBase> {
  let read = await readManifest(conn);
  for (let attempt = 1; ; attempt++) {
    if (read.kind === 'none') return { kind: 'none' };
    if (read.kind === 'bad') return { kind: 'bad-manifest', reason: read.reason };
    const manifest = read.manifest;
    const snapshot = await readSnapshotChunks(conn, manifest, limits);
    if (snapshot.ok) return { kind: 'snapshot', manifest, snapshot };
    read = await readManifest(conn);
    if (!(read.kind === 'ok' && read.manifest.gen !== manifest.gen)) return { kind: 'snapshot', manifest, snapshot };
    if (attempt >= BASE_READ_ATTEMPTS) {
      throw new SessionJournalError(ErrorCodes.STORE_CHANGING, `${conn.where}: compactions installed a newer snapshot during each of ${BASE_READ_ATTEMPTS} reads of one (${snapshot.reason}); try again`, { details: { dir: conn.where, attempts: attempt } });
    }
  }
}

/**
 * Reads the snapshot `manifest` describes and checks it: every chunk there,
 * the bytes and sha256 the manifest gives, then the text's own checks
 * (SnapshotParser: header, footer, count, the footer's sha256), the header
 * naming the manifest's generation, seq and hash. A snapshot that fails
 * any is `{ ok: false, reason }`, never a throw (SNAPSHOT_UNREADABLE for the
 * caller); REDIS_UNAVAILABLE and the like are thrown.
 *
 * Entries' places: `file` is the chunk key where the line begins, `line`
 * and `offset` count over the whole text.
 */
export async function readSnapshotChunks(conn: RedisConnection, manifest: SnapshotManifest, limits: SnapshotLimits = DEFAULT_SNAPSHOT_LIMITS): Promise<SnapshotReadResult> {
  if (manifest.bytes > limits.maxSnapshotBytes) return { ok: false, reason: tooLargeReason(manifest.bytes, limits) };
  const parser = new SnapshotParser(manifest.gen, 'the manifest');
  const digest = crypto().createHash('sha256');
  let bytes = 0;
  let line = 0;
  let carry = '';
  let carryFile = conn.keys.chunk(manifest.gen, 0);
  let carryOffset = 0;
  let failed: string | undefined;
  const take = (text: string, file: string): void => {
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1 && !failed; nl = text.indexOf('\n', start)) {
      const piece = text.slice(start, nl);
      const whole = carry === '' ? piece : carry + piece;
      const length = Buffer.byteLength(whole);
      line++;
      if (length > limits.maxSnapshotLineBytes) failed = tooLongReason(line, length, limits);
      else if (parser.push(whole, { file: carryFile, line, offset: carryOffset }) === 'stop') failed = 'stop';
      carryOffset += length + 1;
      carry = '';
      carryFile = file;
      start = nl + 1;
    }
    if (carry === '') carryFile = file;
    carry += text.slice(start);
    // A line cannot be longer than this without being refused: stop holding it.
    if (!failed && carry.length > limits.maxSnapshotLineBytes) failed = tooLongReason(line + 1, Buffer.byteLength(carry), limits);
  };
  for (let first = 0; first < manifest.chunks && !failed; first += CHUNKS_IN_FLIGHT) {
    const keys = Array.from({ length: Math.min(CHUNKS_IN_FLIGHT, manifest.chunks - first) }, (_, i) => conn.keys.chunk(manifest.gen, first + i));
    const replies = await Promise.all(keys.map((key) => conn.command(['GET', key])));
    for (let i = 0; i < replies.length && !failed; i++) {
      const chunk = replies[i];
      if (typeof chunk !== 'string') return { ok: false, reason: `chunk ${keys[i]} is missing` };
      bytes += Buffer.byteLength(chunk);
      if (bytes > manifest.bytes) return { ok: false, reason: `the chunks hold more than the manifest's ${manifest.bytes} bytes` };
      digest.update(chunk, 'utf8');
      take(chunk, keys[i]!);
    }
  }
  if (failed === 'stop') return parser.result(bytes);
  if (failed) return { ok: false, reason: failed };
  if (carry !== '') {
    line++;
    parser.push(carry, { file: carryFile, line, offset: carryOffset });
  }
  if (bytes !== manifest.bytes) return { ok: false, reason: `the chunks hold ${bytes} bytes, the manifest says ${manifest.bytes}` };
  if (digest.digest('hex') !== manifest.sha256) return { ok: false, reason: "the chunks do not match the manifest's sha256 (a damaged or replaced chunk)" };
  const result = parser.result(bytes);
  if (!result.ok) return result;
  if (result.header.seq !== manifest.seq || (result.header.h ?? '') !== manifest.h) {
    return { ok: false, reason: `the header folds seq ${result.header.seq} (h ${JSON.stringify(result.header.h ?? '')}), the manifest seq ${manifest.seq} (h ${JSON.stringify(manifest.h)})` };
  }
  return result;
}
