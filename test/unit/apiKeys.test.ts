// Device API keys: per-app scope, the device key, regeneration, persistence.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ApiKeys } from '../../src/agent/api/apiKeys.js';
import { AgentStore } from '../../src/agent/store/agentStore.js';
import { openAgentDb } from '../../src/agent/store/database.js';

async function open(dir: string) {
  const store = await AgentStore.open(await openAgentDb(path.join(dir, 'agent.sqlite')));
  return { store, keys: await ApiKeys.load(store) };
}

test('keys are scoped, regenerated at once, and survive a restart', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-keys-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const { store, keys } = await open(dir);
  await keys.ensureApps([1, 2]);
  const device = keys.deviceKey();
  const one = keys.keyForApp(1);
  assert.match(one, /^[0-9a-f]{64}$/);
  assert.notEqual(one, keys.keyForApp(2));
  assert.deepEqual(keys.authenticate(device), { kind: 'device' });
  assert.deepEqual(keys.authenticate(one), { kind: 'app', appId: 1 });
  assert.equal(keys.authenticate('nope'), undefined);
  assert.equal(keys.authenticate(''), undefined);
  assert.throws(() => keys.keyForApp(3), /no API key for app 3/);

  const fresh = await keys.regenerate({ kind: 'app', appId: 1 });
  assert.equal(keys.authenticate(one), undefined, 'the old key stops working at once');
  assert.deepEqual(keys.authenticate(fresh), { kind: 'app', appId: 1 });
  await keys.ensureApps([1, 2]);
  assert.equal(keys.keyForApp(1), fresh, 'ensureApps keeps existing keys');
  await store.db.destroy();

  const again = await open(dir);
  assert.equal(again.keys.deviceKey(), device);
  assert.equal(again.keys.keyForApp(1), fresh);
  await again.store.db.destroy();
});
