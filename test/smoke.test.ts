import test from 'ava';
import { SessionStore } from '../src/index.js';
import { tempStoreDir } from './helpers/temp-store.js';

test('a session written and closed is there after reopening', async (t) => {
  const dir = tempStoreDir(t);
  const store = await SessionStore.open({ dir });
  const id = store.createSession();
  store.addTurn(id, { prompt: 'p', response: 'r', timestamp: new Date('2026-01-01T00:00:00Z') });
  await store.close();
  const reopened = await SessionStore.open({ dir });
  t.is(reopened.getSession(id)?.turns.length, 1);
  await reopened.close();
});
