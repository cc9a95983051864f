// The device API's authentication and keys as apps and users see them: which routes need a key, an
// app's key scoped to its app, regenerating an app's or the device's key. Each test runs its own agent
// on the real engine.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { converge, execIn, freshAppId, sleep, waitFor } from './harness.js';
import { show, assertFailed, assertOk, deploy, inspect, running, envOf, containerOf, hostActions, oneService } from './deviceApiFixture.js';

test('auth: /ping and /v1/healthy need no key; a missing or wrong key is 401 with a JSON message; query and bearer both work', async (t) => {
  const appId = freshAppId();
  const d = await deploy(t, { [appId]: oneService() });
  const { api } = d;
  const appKey = await api.key(appId);
  const deviceKey = await api.deviceKey();

  const ping = await api.call('GET', '/ping');
  assert.equal(ping.status, 200, show(ping));
  assert.equal(ping.text, 'OK');
  assert.equal((await api.call('GET', '/v1/healthy')).status, 200);

  assertFailed(await api.call('GET', '/v1/device'), 401);
  assertFailed(await api.call('GET', '/v1/device', { key: 'wrong' }), 401);
  assertFailed(await api.call('GET', '/v1/device', { key: 'f'.repeat(appKey.length) }), 401);
  assertFailed(await api.call('GET', '/v1/device', { bearer: 'wrong' }), 401);
  assertFailed(await api.call('GET', '/v2/applications/state'), 401);
  assertFailed(await api.call('GET', `/v1/apps/${appId}`, { key: `${appKey}x` }), 401);

  // Nothing happens on the device for an unauthenticated action.
  assertFailed(await api.call('POST', '/v1/blink'), 401);
  assertFailed(await api.call('POST', '/v1/reboot', { key: 'wrong', json: { force: true } }), 401);
  assertFailed(await api.call('POST', `/v2/applications/${appId}/stop-service`, { json: { serviceName: 'main' } }), 401);
  await sleep(300);
  assert.deepEqual(await hostActions(d.dataDir), []);
  assert.equal(await running((await containerOf(appId, 'main')).id), true);

  for (const key of [appKey, deviceKey]) {
    const q = await api.call('GET', '/v1/device', { key });
    assert.equal(q.status, 200, show(q));
    assert.equal(q.body.api_port, api.port);
    const b = await api.call('GET', '/v1/device', { bearer: key });
    assert.equal(b.status, 200, show(b));
    assert.equal((await api.call('GET', `/v1/apps/${appId}`, { bearer: key })).status, 200);
  }
});

test("key scoping: app A's key cannot act on app B (401, nothing happens); the device key works on both", async (t) => {
  const a = freshAppId();
  const b = freshAppId();
  const d = await deploy(t, { [a]: oneService(), [b]: oneService() });
  const { api } = d;
  const keyA = await api.key(a);
  const keyB = await api.key(b);
  assert.notEqual(keyA, keyB);
  assert.notEqual(keyA, await api.deviceKey());
  const bMain = await containerOf(b, 'main');
  const startedB = (await inspect(bMain.id)).State.StartedAt;

  assert.equal((await api.call('GET', `/v1/apps/${a}`, { key: keyA })).status, 200);
  assertFailed(await api.call('GET', `/v1/apps/${b}`, { key: keyA }), 401);
  assertFailed(await api.call('GET', `/v2/applications/${b}/state`, { key: keyA }), 401);
  assertFailed(await api.call('POST', `/v1/apps/${b}/stop`, { key: keyA }), 401);
  assertFailed(await api.call('POST', `/v2/applications/${b}/restart-service`, { key: keyA, json: { serviceName: 'main' } }), 401);
  assertFailed(await api.call('POST', `/v2/applications/${b}/stop-service`, { bearer: keyA, json: { serviceName: 'main' } }), 401);
  assertFailed(await api.call('POST', `/v2/applications/${b}/restart`, { key: keyA }), 401);
  assertFailed(await api.call('POST', `/v2/applications/${b}/purge`, { key: keyA }), 401);
  assertFailed(await api.call('POST', '/v1/restart', { key: keyA, json: { appId: b } }), 401);
  assertFailed(await api.call('POST', '/v1/purge', { key: keyA, json: { appId: b } }), 401);
  await sleep(500);
  const bNow = await inspect(bMain.id);
  assert.equal(bNow.State.Running, true);
  assert.equal(bNow.State.StartedAt, startedB, 'B was not restarted');

  // Each app's own key and the device key do work.
  assert.equal((await api.call('GET', `/v1/apps/${b}`, { key: keyB })).status, 200);
  const deviceKey = await api.deviceKey();
  for (const id of [a, b]) {
    const r = await api.call('GET', `/v1/apps/${id}`, { key: deviceKey });
    assert.equal(r.status, 200, show(r));
    assert.equal(r.body.appId, id);
    assert.equal((await api.call('GET', `/v2/applications/${id}/state`, { key: deviceKey })).status, 200);
  }
  assertOk(await api.call('POST', `/v2/applications/${b}/restart-service`, { key: deviceKey, json: { serviceName: 'main' } }));
  await waitFor('B restarted by the device key', async () => {
    const s = (await inspect(bMain.id)).State;
    return s.Running && s.StartedAt !== startedB;
  });
});

test("regenerate (app key): the old key is rejected at once, the new one works, and the app's containers get it on the next apply", async (t) => {
  const a = freshAppId();
  const b = freshAppId();
  const d = await deploy(t, { [a]: oneService(), [b]: oneService() });
  const { api } = d;
  const oldKey = await api.key(a);
  const keyB = await api.key(b);
  const deviceKey = await api.deviceKey();
  assert.equal((await envOf((await containerOf(a, 'main')).id)).BALENA_SUPERVISOR_API_KEY, oldKey);
  const bBefore = await containerOf(b, 'main');

  const r = await api.call('POST', '/v1/regenerate-api-key', { key: oldKey });
  assert.equal(r.status, 200, show(r));
  const newKey = r.text.trim();
  assert.match(newKey, /^\w+$/);
  assert.notEqual(newKey, oldKey);

  assertFailed(await api.call('GET', '/v1/device', { key: oldKey }), 401);
  assertFailed(await api.call('GET', `/v1/apps/${a}`, { bearer: oldKey }), 401);
  assert.equal((await api.call('GET', '/v1/device', { key: newKey })).status, 200);
  assert.equal((await api.call('GET', `/v1/apps/${a}`, { bearer: newKey })).status, 200);
  // Only the caller's key changed.
  assert.equal((await api.call('GET', `/v1/apps/${b}`, { key: keyB })).status, 200);
  assert.equal((await api.call('GET', '/v1/device', { key: deviceKey })).status, 200);
  assert.equal(await api.key(a), newKey);

  await converge(d.agent);
  const aMain = await containerOf(a, 'main');
  const env = await envOf(aMain.id);
  assert.equal(env.BALENA_SUPERVISOR_API_KEY, newKey);
  assert.equal(env.RESIN_SUPERVISOR_API_KEY, newKey);
  assert.equal(await running(aMain.id), true);
  // The app's new environment works from inside the container.
  const got = await execIn(aMain.id, ['sh', '-c', 'wget -qO- "$BALENA_SUPERVISOR_ADDRESS/v1/device?apikey=$BALENA_SUPERVISOR_API_KEY"']);
  assert.equal(got.exitCode, 0, got.output);
  assert.equal(JSON.parse(got.output).api_port, api.port);
  // The other app is untouched.
  assert.equal((await containerOf(b, 'main')).id, bBefore.id);
  assert.equal((await envOf(bBefore.id)).BALENA_SUPERVISOR_API_KEY, keyB);
});

test('regenerate (device key): the old device key is rejected at once, the new one works, app keys are unaffected', async (t) => {
  const a = freshAppId();
  const d = await deploy(t, { [a]: oneService() });
  const { api } = d;
  const oldKey = await api.deviceKey();
  const appKey = await api.key(a);
  const r = await api.call('POST', '/v1/regenerate-api-key', { bearer: oldKey });
  assert.equal(r.status, 200, show(r));
  const newKey = r.text.trim();
  assert.match(newKey, /^\w+$/);
  assert.notEqual(newKey, oldKey);
  assertFailed(await api.call('GET', '/v1/device', { key: oldKey }), 401);
  assert.equal((await api.call('GET', `/v1/apps/${a}`, { key: newKey })).status, 200);
  assert.equal(await api.deviceKey(), newKey);
  assert.equal((await api.call('GET', `/v1/apps/${a}`, { key: appKey })).status, 200);
});
