/**
 * Differential test: random operation sequences run against codex-mcp-server's
 * real InMemorySessionStorage and against SessionStore, comparing every
 * result (times included), the whole session map after every step, and, at the
 * end, a fresh replay of the journal.
 *
 * Time is controlled: InMemorySessionStorage reads the global Date, which is
 * replaced by a fake one only around its calls (see withFakeDate); SessionStore
 * gets the same clock through its `clock` option and runs under the real Date,
 * so a stray Date.now() in the store would show up as a mismatch.
 *
 * One intended difference: InMemorySessionStorage deletes expired sessions
 * (and, after a create, the least recently used beyond its limit) inside
 * createSession, ensureSession and listSessions. SessionStore only hides
 * them there and journals their removal when asked (expireNow, or
 * compaction), so that no process deletes by its own clock what others still
 * use (docs/FORMAT.md, "Time"). The store side therefore calls expireNow()
 * around exactly those three calls; with it, the two match op by op.
 */
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import { InMemorySessionStorage } from 'codex-mcp-server/dist/session/storage.js';
import { SessionJournalError, SessionStore, type ConversationTurn, type SessionData } from '../src/index.js';
import { seededRandom } from './helpers/child-protocol.js';
import { FakeClock, withFakeDate } from './helpers/fake-clock.js';
import { collectWarnings, tempStoreDir } from './helpers/temp-store.js';

const TTL_MS = 10_000;
const MAX_SESSIONS = 5;
const START = Date.UTC(2023, 10, 14, 22, 13, 20); // far from the real clock on purpose
const OPS_PER_SEQUENCE = 400;
const SEEDS = [1, 2, 3, 42, 1337, 20_251_122, 0xdeadbeef, 987_654_321];

/** Valid ids shared by both sides (ensureSession creates them), including names that are Object.prototype keys. */
const POOL_IDS = ['alpha', 'beta', 'gamma-1', 'x_Y-z', '__proto__', 'constructor', 'A'.repeat(256)];
/** Rejected by ensureSession; harmless (unknown) everywhere else. */
const INVALID_IDS = ['', 'bad id!', 'A'.repeat(257), 'a/b', '../etc', 'é', 'a.b', 'a\nb'];
/** Valid but never created. */
const UNKNOWN_IDS = ['nobody', randomUUID()];

type Rng = () => number;

interface Harness {
  t: ExecutionContext;
  seed: number;
  rng: Rng;
  clock: FakeClock;
  mem: InMemorySessionStorage;
  /** Index 0 acts alone; with two stores, steps alternate between them. */
  stores: SessionStore[];
  dir: string;
  onWarning: (w: unknown) => void;
  warnings: unknown[];
  /** Ids by creation order, per side. */
  memIds: string[];
  storeIds: string[];
  memToCanon: Map<string, string>;
  storeToCanon: Map<string, string>;
  log: string[];
  /** Include updates with `codexConversationId: undefined` (a JSON round-trip hazard). */
  undefinedUpdates: boolean;
  /** Close and reopen the store now and then in the middle of a sequence. */
  midReopen: boolean;
}

// ---- random helpers --------------------------------------------------------

const int = (rng: Rng, lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1));
const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)]!;

const TEXT_BITS = ['hello', 'wörld', '"quoted"', 'line\nbreak', 'tab\t', '😀', '{"json":1}', '\\', ' ', 'ü'];
function randomText(rng: Rng): string {
  let s = '';
  const n = int(rng, 0, 4);
  for (let i = 0; i < n; i++) s += pick(rng, TEXT_BITS);
  return s;
}

// ---- operations ------------------------------------------------------------

/** A target id: [id on the InMemory side, id on the store side, description]. */
type Target = [string, string, string];

function pickTarget(h: Harness): Target {
  const r = h.rng();
  if (r < 0.45 && h.memIds.length > 0) {
    const i = int(h.rng, 0, h.memIds.length - 1);
    return [h.memIds[i]!, h.storeIds[i]!, `created#${i}`];
  }
  if (r < 0.85) {
    const id = pick(h.rng, POOL_IDS);
    return [id, id, id.length > 20 ? `${id.slice(0, 8)}...(${id.length})` : id];
  }
  if (r < 0.93) {
    const id = pick(h.rng, UNKNOWN_IDS);
    return [id, id, `unknown:${id.slice(0, 8)}`];
  }
  const id = pick(h.rng, INVALID_IDS);
  return [id, id, `invalid:${JSON.stringify(id.slice(0, 12))}`];
}

/** One description of a turn, built twice so the two sides never share objects. */
function turnSpec(h: Harness): () => ConversationTurn {
  const prompt = randomText(h.rng);
  const response = randomText(h.rng);
  const ts = h.clock.now - int(h.rng, 0, 5000);
  return () => ({ prompt, response, timestamp: new Date(ts) });
}

/** An update's data, built twice (one per side). Only JSON-faithful values, plus `undefined` when asked. */
function updateSpec(h: Harness): [() => Partial<SessionData>, string] {
  const makers: Array<[string, () => unknown]> = [];
  const keys = new Set<string>();
  const n = int(h.rng, 1, 3);
  for (let i = 0; i < n; i++) {
    const r = h.rng();
    if (r < (h.undefinedUpdates ? 0.5 : 0.25)) {
      if (h.undefinedUpdates && h.rng() < 0.5) {
        makers.push(['codexConversationId', () => undefined]);
      } else {
        const v = `conv-${int(h.rng, 0, 9)}`;
        makers.push(['codexConversationId', () => v]);
      }
    } else if (r < 0.35) {
      const ms = h.clock.now - int(h.rng, 0, 50_000);
      makers.push(['createdAt', () => new Date(ms)]);
    } else if (r < 0.42) {
      const ms = h.clock.now - int(h.rng, 0, 50_000);
      makers.push(['lastAccessedAt', () => new Date(ms)]);
    } else if (r < 0.55) {
      const specs = Array.from({ length: int(h.rng, 0, 2) }, () => turnSpec(h));
      makers.push(['turns', () => specs.map((make) => make())]);
    } else if (r < 0.65) {
      const v = randomText(h.rng);
      makers.push(['model', () => v]);
    } else if (r < 0.73) {
      const v = int(h.rng, -1000, 1000) / 8;
      makers.push(['count', () => v]);
    } else if (r < 0.8) {
      const v = h.rng() < 0.5;
      makers.push(['flag', () => v]);
    } else if (r < 0.9) {
      const v = { a: [int(h.rng, 0, 9), randomText(h.rng), null], b: { c: h.rng() < 0.5 } };
      makers.push(['meta', () => structuredClone(v)]);
    } else {
      makers.push(['note', () => null]);
    }
  }
  const make = (): Partial<SessionData> => {
    const data: Record<string, unknown> = {};
    for (const [key, value] of makers) data[key] = value();
    return data as Partial<SessionData>;
  };
  for (const [key] of makers) keys.add(key);
  return [make, [...keys].join(',')];
}

type Outcome = { threw: false; value: unknown } | { threw: true; error: unknown };

function attempt(fn: () => unknown): Outcome {
  try {
    return { threw: false, value: fn() };
  } catch (error) {
    return { threw: true, error };
  }
}

// ---- normalization -----------------------------------------------------------

/** Dates to epoch ms, undefined-valued keys dropped (so `codexConversationId: undefined` equals a missing key), keys sorted. */
function plain(value: unknown): unknown {
  if (value instanceof Date) return { $date: value.getTime() };
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = plain(v);
    }
    return out;
  }
  return value;
}

function canon(ids: Map<string, string>, id: unknown): unknown {
  return typeof id === 'string' ? (ids.get(id) ?? id) : id;
}

function normSession(ids: Map<string, string>, s: SessionData | undefined): unknown {
  if (s === undefined) return undefined;
  const out = plain(s) as Record<string, unknown>;
  out.id = canon(ids, s.id);
  return out;
}

function normOutcome(ids: Map<string, string>, kind: string, o: Outcome): unknown {
  if (o.threw) return { threw: true };
  switch (kind) {
    case 'getSession':
      return { value: normSession(ids, o.value as SessionData | undefined) };
    case 'listSessions':
      return { value: (o.value as SessionData[]).map((s) => normSession(ids, s)) };
    case 'createSession':
      return { value: 'new-id' };
    default:
      return { value: plain(o.value) };
  }
}

/** The whole session map, in insertion order (it decides LRU ties). */
function memState(h: Harness): unknown {
  const sessions = (h.mem as unknown as { sessions: Map<string, SessionData> }).sessions;
  return [...sessions].map(([key, s]) => [canon(h.memToCanon, key), normSession(h.memToCanon, s)]);
}

function storeState(h: Harness, store: SessionStore): unknown {
  const sessions = (store as unknown as { view?: { sessions?: Map<string, SessionData> } }).view?.sessions;
  if (!(sessions instanceof Map)) return undefined;
  return [...sessions].map(([key, s]) => [canon(h.storeToCanon, key), normSession(h.storeToCanon, s)]);
}

// ---- the runner --------------------------------------------------------------

function fail(h: Harness, step: number | string, what: string, actual: unknown, expected: unknown, versus = 'store vs InMemorySessionStorage'): false {
  h.t.log(`seed ${h.seed}, last steps:\n  ${h.log.slice(-12).join('\n  ')}`);
  const message = `seed ${h.seed}, step ${step}: ${what} differs (${versus})`;
  if (h.t.deepEqual(actual, expected, message)) h.t.fail(`${message} (strictly: ${JSON.stringify(actual)} vs ${JSON.stringify(expected)})`);
  return false;
}

function openStore(h: Harness): SessionStore {
  return SessionStore.openSync({
    dir: h.dir,
    fsync: false,
    ttlMs: TTL_MS,
    maxSessions: MAX_SESSIONS,
    clock: h.clock.read,
    onWarning: h.onWarning as never,
  });
}

function makeHarness(t: ExecutionContext, seed: number, storeCount: number, options: { undefinedUpdates?: boolean; midReopen?: boolean } = {}): Harness {
  const mem = new InMemorySessionStorage();
  (mem as unknown as { maxSessions: number }).maxSessions = MAX_SESSIONS;
  (mem as unknown as { sessionTtl: number }).sessionTtl = TTL_MS;
  const { warnings, onWarning } = collectWarnings();
  const h: Harness = {
    t,
    seed,
    rng: seededRandom(seed),
    clock: new FakeClock(START),
    mem,
    stores: [],
    dir: tempStoreDir(t),
    onWarning: onWarning as (w: unknown) => void,
    warnings,
    memIds: [],
    storeIds: [],
    memToCanon: new Map(),
    storeToCanon: new Map(),
    log: [],
    undefinedUpdates: options.undefinedUpdates ?? false,
    midReopen: options.midReopen ?? false,
  };
  for (let i = 0; i < storeCount; i++) h.stores.push(openStore(h));
  t.teardown(() => {
    for (const s of h.stores) s.closeSync();
  });
  return h;
}

function advanceClock(h: Harness): string {
  const r = h.rng();
  let step: number;
  if (r < 0.3) step = 0; // ties
  else if (r < 0.8) step = int(h.rng, 1, 50);
  else if (r < 0.96) step = int(h.rng, 50, 3000);
  else step = TTL_MS + int(h.rng, -1, 4000); // around and beyond the TTL
  h.clock.advance(step);
  return `+${step}`;
}

/** Runs one random operation on both sides and compares. Returns false on the first difference. */
async function step(h: Harness, i: number, store: SessionStore): Promise<boolean> {
  const tick = advanceClock(h);
  const r = h.rng();
  let kind: string;
  let desc: string;
  let onMem: () => unknown;
  let onStore: () => unknown;

  if (r < 0.08) {
    kind = 'createSession';
    desc = kind;
    onMem = () => h.mem.createSession();
    onStore = () => store.createSession();
  } else if (r < 0.2) {
    kind = 'ensureSession';
    const [m, s, d] = h.rng() < 0.15 ? ((id: string): Target => [id, id, `invalid:${JSON.stringify(id.slice(0, 12))}`])(pick(h.rng, INVALID_IDS)) : pickTarget(h);
    desc = `${kind}(${d})`;
    onMem = () => h.mem.ensureSession(m);
    onStore = () => store.ensureSession(s);
  } else if (r < 0.34) {
    kind = 'getSession';
    const [m, s, d] = pickTarget(h);
    desc = `${kind}(${d})`;
    onMem = () => h.mem.getSession(m);
    onStore = () => store.getSession(s);
  } else if (r < 0.44) {
    kind = 'updateSession';
    const [m, s, d] = pickTarget(h);
    const [make, keys] = updateSpec(h);
    desc = `${kind}(${d}, {${keys}})`;
    onMem = () => h.mem.updateSession(m, make());
    onStore = () => store.updateSession(s, make());
  } else if (r < 0.5) {
    kind = 'deleteSession';
    const [m, s, d] = pickTarget(h);
    desc = `${kind}(${d})`;
    onMem = () => h.mem.deleteSession(m);
    onStore = () => store.deleteSession(s);
  } else if (r < 0.58) {
    kind = 'listSessions';
    desc = kind;
    onMem = () => h.mem.listSessions();
    onStore = () => store.listSessions();
  } else if (r < 0.72) {
    kind = 'addTurn';
    const [m, s, d] = pickTarget(h);
    const make = turnSpec(h);
    desc = `${kind}(${d})`;
    onMem = () => h.mem.addTurn(m, make());
    onStore = () => store.addTurn(s, make());
  } else if (r < 0.78) {
    kind = 'resetSession';
    const [m, s, d] = pickTarget(h);
    desc = `${kind}(${d})`;
    onMem = () => h.mem.resetSession(m);
    onStore = () => store.resetSession(s);
  } else if (r < 0.9) {
    kind = 'setCodexConversationId';
    const [m, s, d] = pickTarget(h);
    const conv = h.rng() < 0.1 ? '' : `conv-${int(h.rng, 0, 20)}`;
    desc = `${kind}(${d}, ${JSON.stringify(conv)})`;
    onMem = () => h.mem.setCodexConversationId(m, conv);
    onStore = () => store.setCodexConversationId(s, conv);
  } else {
    kind = 'getCodexConversationId';
    const [m, s, d] = pickTarget(h);
    desc = `${kind}(${d})`;
    onMem = () => h.mem.getCodexConversationId(m);
    onStore = () => store.getCodexConversationId(s);
  }

  const label = `#${i} t${tick}=${h.clock.now - START} [store ${h.stores.indexOf(store)}] ${desc}`;
  h.log.push(label);
  const memOut = withFakeDate(h.clock, () => attempt(onMem));
  // Where the original cleans up, the store is asked to journal the same removals (see the header).
  const cleansUp = kind === 'createSession' || kind === 'ensureSession' || kind === 'listSessions';
  if (cleansUp) await store.expireNow();
  const storeOut = attempt(onStore);
  if (cleansUp) await store.expireNow();

  if (kind === 'createSession' && !memOut.threw && !storeOut.threw) {
    const canonId = `created#${h.memIds.length}`;
    h.memIds.push(memOut.value as string);
    h.storeIds.push(storeOut.value as string);
    h.memToCanon.set(memOut.value as string, canonId);
    h.storeToCanon.set(storeOut.value as string, canonId);
  }
  if (storeOut.threw && !memOut.threw) h.t.log(`seed ${h.seed} ${label}: store threw`, storeOut.error);
  if (storeOut.threw && memOut.threw && !(storeOut.error instanceof SessionJournalError && storeOut.error.code === 'INVALID_SESSION_ID')) {
    return fail(h, label, 'error kind (expected SessionJournalError INVALID_SESSION_ID)', storeOut.error, 'INVALID_SESSION_ID');
  }

  const a = normOutcome(h.storeToCanon, kind, storeOut);
  const e = normOutcome(h.memToCanon, kind, memOut);
  if (!isDeepStrictEqual(a, e)) return fail(h, label, 'result', a, e);

  const sa = storeState(h, store);
  if (sa !== undefined) {
    const se = memState(h);
    if (!isDeepStrictEqual(sa, se)) return fail(h, label, 'session map after the step', sa, se);
  }
  return true;
}

/** Lists both sides, closes the stores, replays the journal fresh and checks it holds the same state. */
async function checkReplay(h: Harness, when: string): Promise<boolean> {
  const expected = withFakeDate(h.clock, () => h.mem.listSessions()).map((s) => normSession(h.memToCanon, s));
  for (const [n, store] of h.stores.entries()) {
    await store.expireNow(); // the original's listSessions above dropped the expired (see the header)
    const live = store.listSessions().map((s) => normSession(h.storeToCanon, s));
    if (!isDeepStrictEqual(live, expected)) return fail(h, when, `listSessions of live store ${n}`, live, expected);
  }
  const liveState = storeState(h, h.stores[0]!);
  for (const store of h.stores) await store.close();
  const fresh = openStore(h);
  h.stores = [fresh];
  const replayedState = storeState(h, fresh);
  if (liveState !== undefined && !isDeepStrictEqual(replayedState, liveState)) {
    return fail(h, when, 'session map after a fresh replay', replayedState, liveState, 'fresh replay vs the live store');
  }
  const replayed = fresh.listSessions().map((s) => normSession(h.storeToCanon, s));
  if (!isDeepStrictEqual(replayed, expected)) return fail(h, when, 'listSessions after a fresh replay', replayed, expected);
  for (const s of withFakeDate(h.clock, () => h.mem.listSessions())) {
    const storeId = h.storeIds[h.memIds.indexOf(s.id)] ?? s.id;
    const got = fresh.getCodexConversationId(storeId);
    if (got !== s.codexConversationId) return fail(h, when, `getCodexConversationId(${canon(h.memToCanon, s.id)}) after a fresh replay`, got, s.codexConversationId);
  }
  return true;
}

async function runSequence(h: Harness): Promise<boolean> {
  for (let i = 0; i < OPS_PER_SEQUENCE; i++) {
    const store = h.stores.length > 1 ? h.stores[i % h.stores.length]! : h.stores[0]!;
    if (!(await step(h, i, store))) return false;
    if (h.stores.length > 1) {
      // Two writers take turns: each step is committed before the other one acts.
      await store.flush();
    } else if (h.rng() < 0.06) {
      h.log.push(`#${i} flush`);
      await store.flush();
    }
    if (h.midReopen && h.rng() < (h.undefinedUpdates ? 0.08 : 0.02)) {
      h.log.push(`#${i} close + reopen`);
      if (!(await checkReplay(h, `reopen after #${i}`))) return false;
    }
  }
  if (!(await checkReplay(h, 'end of sequence'))) return false;
  if (h.warnings.length > 0) {
    h.t.fail(`seed ${h.seed}: unexpected warnings ${JSON.stringify(h.warnings)}`);
    return false;
  }
  return true;
}

// ---- the tests -----------------------------------------------------------------

for (const seed of SEEDS) {
  test.serial(`seed ${seed}: SessionStore matches InMemorySessionStorage op by op, and a fresh replay matches both`, async (t) => {
    const h = makeHarness(t, seed, 1);
    if (await runSequence(h)) t.pass();
  });
}

for (const seed of SEEDS.slice(0, 4)) {
  test.serial(`seed ${seed}: the same with the store closed and reopened mid-sequence`, async (t) => {
    const h = makeHarness(t, seed + 100, 1, { midReopen: true });
    if (await runSequence(h)) t.pass();
  });
}

for (const seed of SEEDS.slice(0, 4)) {
  test.serial(`seed ${seed}: updateSession with codexConversationId: undefined survives a replay as InMemory keeps it`, async (t) => {
    const h = makeHarness(t, seed + 200, 1, { undefinedUpdates: true, midReopen: true });
    if (await runSequence(h)) t.pass();
  });
}

for (const seed of SEEDS.slice(0, 3)) {
  test.serial(`seed ${seed}: two stores on one directory, taking turns (flush between), match InMemorySessionStorage`, async (t) => {
    const h = makeHarness(t, seed + 300, 2);
    if (await runSequence(h)) t.pass();
  });
}

test.serial('the fake Date is restored between calls', (t) => {
  const clock = new FakeClock(START);
  const inside = withFakeDate(clock, () => [Date.now(), new Date().getTime(), new Date(5).getTime(), new Date(0) instanceof Date]);
  t.deepEqual(inside, [START, START, 5, true]);
  t.true(Math.abs(Date.now() - START) > 1000 * 60 * 60 * 24);
  t.true(withFakeDate(clock, () => new Date()) instanceof Date);
});
