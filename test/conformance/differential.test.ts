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
 * It runs on every backend of the conformance suite (backends.ts). With two
 * stores (two processes or hosts on one store), the store about to act first
 * awaits catchUp() where reads do not catch up alone (Redis), as a request
 * handler there does.
 *
 * One intended difference: InMemorySessionStorage deletes expired sessions
 * (and, after a create, the least recently used beyond its limit) inside
 * createSession, ensureSession and listSessions. SessionStore only hides
 * them there and journals their removal when asked (expireNow, or
 * compaction), so that no process deletes by its own clock what others still
 * use (docs/FORMAT.md, "Time"). The store side therefore calls expireNow()
 * around exactly those three calls; with it, the two match op by op.
 */
import { isDeepStrictEqual } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import { InMemorySessionStorage } from 'codex-mcp-server/dist/session/storage.js';
import { SessionJournalError, type SessionStore } from '../../src/index.js';
import { seededRandom } from '../helpers/child-protocol.js';
import { FakeClock, withFakeDate } from '../helpers/fake-clock.js';
import { collectWarnings } from '../helpers/temp-store.js';
import { backends, type Backend } from './backends.js';
import { beforePeerRead, named } from './harness.js';
import {
  MAX_SESSIONS,
  INVALID_IDS,
  OPS_PER_SEQUENCE,
  SEEDS,
  START,
  TTL_MS,
  attempt,
  canon,
  int,
  memState,
  normOutcome,
  normSession,
  pick,
  pickTarget,
  storeState,
  turnSpec,
  updateSpec,
  type Harness,
  type Target,
} from './differential-model.js';

// ---- the runner --------------------------------------------------------------

function fail(h: Harness, step: number | string, what: string, actual: unknown, expected: unknown, versus = 'store vs InMemorySessionStorage'): false {
  h.t.log(`seed ${h.seed}, last steps:\n  ${h.log.slice(-12).join('\n  ')}`);
  const message = `seed ${h.seed}, step ${step}: ${what} differs (${versus})`;
  if (h.t.deepEqual(actual, expected, message)) h.t.fail(`${message} (strictly: ${JSON.stringify(actual)} vs ${JSON.stringify(expected)})`);
  return false;
}

function openStore(h: Harness): Promise<SessionStore> {
  return h.backend.openSessions(h.at, {
    fsync: false,
    ttlMs: TTL_MS,
    maxSessions: MAX_SESSIONS,
    clock: h.clock.read,
    onWarning: h.onWarning as never,
  });
}

async function makeHarness(t: ExecutionContext, backend: Backend, seed: number, storeCount: number, options: { undefinedUpdates?: boolean; midReopen?: boolean } = {}): Promise<Harness> {
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
    backend,
    at: await backend.fresh(t),
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
  for (let i = 0; i < storeCount; i++) h.stores.push(await openStore(h));
  t.teardown(async () => {
    for (const s of h.stores) await s.close();
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
    await beforePeerRead(h.backend, store); // what the other store committed (a store on Redis reads only its own view until then)
    await store.expireNow(); // the original's listSessions above dropped the expired (see the header)
    const live = store.listSessions().map((s) => normSession(h.storeToCanon, s));
    if (!isDeepStrictEqual(live, expected)) return fail(h, when, `listSessions of live store ${n}`, live, expected);
  }
  await beforePeerRead(h.backend, h.stores[0]!);
  const liveState = storeState(h, h.stores[0]!);
  for (const store of h.stores) await store.close();
  const fresh = await openStore(h);
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
    // Taking turns: the store about to act first applies the other's step, as a request handler would.
    if (h.stores.length > 1) await beforePeerRead(h.backend, store);
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

for (const backend of backends) {
  for (const seed of SEEDS) {
    test.serial(named(backend, `seed ${seed}: SessionStore matches InMemorySessionStorage op by op, and a fresh replay matches both`), async (t) => {
      const h = await makeHarness(t, backend, seed, 1);
      if (await runSequence(h)) t.pass();
    });
  }

  for (const seed of SEEDS.slice(0, 4)) {
    test.serial(named(backend, `seed ${seed}: the same with the store closed and reopened mid-sequence`), async (t) => {
      const h = await makeHarness(t, backend, seed + 100, 1, { midReopen: true });
      if (await runSequence(h)) t.pass();
    });
  }

  for (const seed of SEEDS.slice(0, 4)) {
    test.serial(named(backend, `seed ${seed}: updateSession with codexConversationId: undefined survives a replay as InMemory keeps it`), async (t) => {
      const h = await makeHarness(t, backend, seed + 200, 1, { undefinedUpdates: true, midReopen: true });
      if (await runSequence(h)) t.pass();
    });
  }

  for (const seed of SEEDS.slice(0, 3)) {
    test.serial(named(backend, `seed ${seed}: two stores on one location (two processes or hosts), taking turns (flush after each step), match InMemorySessionStorage`), async (t) => {
      const h = await makeHarness(t, backend, seed + 300, 2);
      if (await runSequence(h)) t.pass();
    });
  }
}

test.serial('the fake Date is restored between calls', (t) => {
  const clock = new FakeClock(START);
  const inside = withFakeDate(clock, () => [Date.now(), new Date().getTime(), new Date(5).getTime(), new Date(0) instanceof Date]);
  t.deepEqual(inside, [START, START, 5, true]);
  t.true(Math.abs(Date.now() - START) > 1000 * 60 * 60 * 24);
  t.true(withFakeDate(clock, () => new Date()) instanceof Date);
});
