// The device API's service actions (v1 and v2 stop, start, restart, purge), bodies as balena accepts
// them, and errors: a 4xx with a message, never a 5xx. Each test runs its own agent on the real engine.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { containersOf, converge, execIn, freshAppId, service, sleep, startAgent, target, waitFor } from './harness.js';
import {
  show,
  assertFailed,
  assertClientError,
  assertOk,
  deploy,
  inspect,
  running,
  containerOf,
  oneService,
  twoServices,
  withVolume,
} from './deviceApiFixture.js';

test('v2 stop-service / start-service / restart-service act on one service; restart keeps the container and changes StartedAt', async (t) => {
  const a = freshAppId();
  const d = await deploy(t, { [a]: twoServices() });
  const { api } = d;
  const key = await api.key(a);
  const main = await containerOf(a, 'main');
  const side = await containerOf(a, 'side');

  assertOk(await api.call('POST', `/v2/applications/${a}/stop-service`, { key, json: { serviceName: 'main' } }));
  assert.equal(await running(main.id), false);
  assert.equal(await running(side.id), true);
  // The reconciler leaves a stopped service stopped.
  await sleep(2500);
  await d.agent.applyNow();
  assert.equal(await running(main.id), false);
  assert.equal((await containerOf(a, 'main')).id, main.id, 'stopped, not removed');
  const state = await api.call('GET', '/v2/applications/state', { key });
  assert.notEqual(state.body[`app${a}`].services.main.status, 'Running', show(state));
  assert.equal(state.body[`app${a}`].services.side.status, 'Running', show(state));

  assertOk(await api.call('POST', `/v2/applications/${a}/start-service`, { key, json: { serviceName: 'main' } }));
  assert.equal(await running(main.id), true);
  assert.equal((await containerOf(a, 'main')).id, main.id);

  const startedAt = (await inspect(main.id)).State.StartedAt;
  const sideStartedAt = (await inspect(side.id)).State.StartedAt;
  assertOk(await api.call('POST', `/v2/applications/${a}/restart-service`, { bearer: key, json: { serviceName: 'main', force: true } }));
  const after = await inspect(main.id);
  assert.equal(after.State.Running, true);
  assert.notEqual(after.State.StartedAt, startedAt);
  assert.equal((await containerOf(a, 'main')).id, main.id, 'restart keeps the container');
  assert.equal((await inspect(side.id)).State.StartedAt, sideStartedAt, 'the other service is not restarted');
});

test('a stopped service stays stopped across a new target with an unrelated change, until start-service; an agent restart starts it again', async (t) => {
  const a = freshAppId();
  const d = await deploy(t, { [a]: twoServices() });
  const { api } = d;
  const key = await api.key(a);
  const main = await containerOf(a, 'main');
  const side = await containerOf(a, 'side');
  assertOk(await api.call('POST', `/v2/applications/${a}/stop-service`, { key, json: { serviceName: 'main' } }));

  await d.agent.setTarget(target({ [a]: { releaseId: 2, services: { main: service(), side: service({ environment: { V: '2' } }) } } }), 'test');
  await converge(d.agent);
  const side2 = await containerOf(a, 'side');
  assert.notEqual(side2.id, side.id, 'the changed service was updated');
  assert.equal(await running(side2.id), true);
  assert.equal((await containerOf(a, 'main')).id, main.id);
  assert.equal(await running(main.id), false, 'the stopped service stays stopped');
  await sleep(1500);
  assert.equal(await running(main.id), false);

  // Agent restart (as a supervisor restart or reboot would): the service runs again.
  await d.agent.stop();
  const second = await startAgent(t, [], { dataDir: d.dataDir });
  await converge(second.agent);
  await waitFor('main running after an agent restart', async () => {
    const c = (await containersOf(a)).find((x) => x.service === 'main');
    return c && (await running(c.id));
  });
});

test('v1 apps stop/start on a single-container app: containerId answered, stop survives reconciles, start runs it again', async (t) => {
  const a = freshAppId();
  const d = await deploy(t, { [a]: oneService({ environment: { FOO: 'bar' } }) });
  const { api } = d;
  const key = await api.key(a);
  const main = await containerOf(a, 'main');

  const stop = await api.call('POST', `/v1/apps/${a}/stop`, { key });
  assert.equal(stop.status, 200, show(stop));
  assert.equal(typeof stop.body.containerId, 'string');
  assert.ok(main.id.startsWith(stop.body.containerId), show(stop));
  assert.equal(await running(main.id), false);
  await sleep(2500);
  assert.equal(await running(main.id), false);

  const info = await api.call('GET', `/v1/apps/${a}`, { key });
  assert.equal(info.status, 200, show(info));
  assert.equal(info.body.appId, a);
  assert.equal(info.body.commit, 'commit1');
  assert.equal(info.body.env.FOO, 'bar');
  for (const hidden of ['BALENA_SUPERVISOR_API_KEY', 'RESIN_SUPERVISOR_API_KEY', 'BOSUN_SUPERVISOR_API_KEY']) {
    assert.equal(info.body.env[hidden], undefined, `${hidden} is not shown (balena hides the API keys)`);
  }

  const start = await api.call('POST', `/v1/apps/${a}/start`, { key });
  assert.equal(start.status, 200, show(start));
  assert.ok(main.id.startsWith(start.body.containerId), show(start));
  assert.equal(await running(main.id), true);
});

test('restart: v1 /restart and v2 /applications/:appId/restart restart every service of the app', async (t) => {
  const a = freshAppId();
  const d = await deploy(t, { [a]: twoServices() });
  const { api } = d;
  const key = await api.key(a);
  const stamp = async () => Promise.all((await containersOf(a)).map(async (c) => `${c.id}@${(await inspect(c.id)).State.StartedAt}`));
  const allRunning = async () => {
    const cs = await containersOf(a);
    return cs.length === 2 && (await Promise.all(cs.map((c) => running(c.id)))).every(Boolean);
  };

  let before = await stamp();
  assertOk(await api.call('POST', '/v1/restart', { key, json: { appId: a } }));
  await waitFor('all restarted (v1)', async () => {
    const now = await stamp();
    return (await allRunning()) && now.every((s) => !before.includes(s));
  });

  before = await stamp();
  assertOk(await api.call('POST', `/v2/applications/${a}/restart`, { key, json: {} }));
  await waitFor('all restarted (v2)', async () => {
    const now = await stamp();
    return (await allRunning()) && now.every((s) => !before.includes(s));
  });
});

for (const how of ['v1', 'v2'] as const) {
  test(`purge (${how}): the app's volume is emptied and the service runs again`, async (t) => {
    const a = freshAppId();
    const d = await deploy(t, { [a]: withVolume() });
    const { api } = d;
    const key = await api.key(a);
    const main = await containerOf(a, 'main');
    assert.equal((await execIn(main.id, ['sh', '-c', 'echo precious > /data/file'])).exitCode, 0);

    if (how === 'v1') {
      const r = await api.call('POST', '/v1/purge', { key, json: { appId: a } });
      assert.equal(r.status, 200, show(r));
      assert.deepEqual(r.body, { Data: 'OK', Error: '' });
    } else {
      assertOk(await api.call('POST', `/v2/applications/${a}/purge`, { key, json: {} }));
    }
    const again = await waitFor('main running after purge', async () => {
      const c = (await containersOf(a)).find((x) => x.service === 'main');
      return c && (await running(c.id)) && c;
    });
    const ls = await execIn(again.id, ['sh', '-c', 'ls -A /data']);
    assert.equal(ls.exitCode, 0, ls.output);
    assert.equal(ls.output.trim(), '', 'the volume is empty');
    assert.equal((await execIn(again.id, ['sh', '-c', 'echo new > /data/file'])).exitCode, 0, 'the volume is usable');
  });
}

test('action POSTs without a body (with or without a JSON content type) are accepted, as balena accepts them', async (t) => {
  const a = freshAppId();
  const d = await deploy(t, { [a]: oneService() });
  const { api } = d;
  const key = await api.key(a);
  for (const jsonHeaderOnly of [false, true]) {
    const update = await api.call('POST', '/v1/update', { key, jsonHeaderOnly });
    assert.equal(update.status, 204, `POST /v1/update: ${show(update)}`);
    const stop = await api.call('POST', `/v1/apps/${a}/stop`, { key, jsonHeaderOnly });
    assert.equal(stop.status, 200, `POST /v1/apps/:appId/stop: ${show(stop)}`);
    const start = await api.call('POST', `/v1/apps/${a}/start`, { key, jsonHeaderOnly });
    assert.equal(start.status, 200, `POST /v1/apps/:appId/start: ${show(start)}`);
    for (const action of ['restart', 'purge']) {
      const r = await api.call('POST', `/v2/applications/${a}/${action}`, { key, jsonHeaderOnly });
      assert.equal(r.status, 200, `POST /v2/applications/:appId/${action}: ${show(r)}`);
      await waitFor(`main running after ${action}`, async () => {
        const c = (await containersOf(a)).find((x) => x.service === 'main');
        // the container listed may be gone by the time it is inspected (purge removes, the apply recreates)
        return c && (await running(c.id).catch(() => false));
      });
    }
  }
});

// ---------------------------------------------------------------------------------------------
// errors

test('malformed bodies, bad or unknown app ids and unknown services get a 4xx with a message, never a 5xx', async (t) => {
  const a = freshAppId();
  const unknown = freshAppId();
  const d = await deploy(t, { [a]: oneService() });
  const { api } = d;
  const key = await api.deviceKey();
  const main = await containerOf(a, 'main');

  // Malformed JSON.
  assertFailed(await api.call('POST', '/v1/purge', { key, raw: '{not json' }), 400);
  assertFailed(await api.call('POST', `/v2/applications/${a}/restart-service`, { key, raw: '{"serviceName":' }), 400);
  assertFailed(await api.call('POST', '/v1/reboot', { key, raw: '{"force": tru' }), 400);
  // Missing or non-numeric app ids.
  assertFailed(await api.call('POST', '/v1/purge', { key, json: {} }), 400);
  assertFailed(await api.call('POST', '/v1/restart', { key, json: {} }), 400);
  assertFailed(await api.call('POST', '/v1/purge', { key, json: { appId: 'abc' } }), 400);
  assertFailed(await api.call('POST', '/v1/restart', { key, json: { appId: 'abc' } }), 400);
  assertFailed(await api.call('POST', '/v2/applications/abc/restart-service', { key, json: { serviceName: 'main' } }), 400);
  assertFailed(await api.call('GET', '/v2/applications/abc/state', { key }), 400);
  assertFailed(await api.call('GET', '/v1/apps/abc', { key }), 400);
  // An app that is not on the device.
  for (const action of ['restart-service', 'stop-service', 'start-service']) {
    assertFailed(await api.call('POST', `/v2/applications/${unknown}/${action}`, { key, json: { serviceName: 'main' } }), 404);
  }
  assertFailed(await api.call('POST', `/v2/applications/${unknown}/restart`, { key, json: {} }), 404);
  assertFailed(await api.call('POST', `/v2/applications/${unknown}/purge`, { key, json: {} }), 404);
  assertFailed(await api.call('GET', `/v2/applications/${unknown}/state`, { key }), 409);
  assertClientError(await api.call('GET', `/v1/apps/${unknown}`, { key }));
  assertClientError(await api.call('POST', `/v1/apps/${unknown}/stop`, { key }));
  assertClientError(await api.call('POST', '/v1/restart', { key, json: { appId: unknown } }));
  assertClientError(await api.call('POST', '/v1/purge', { key, json: { appId: unknown } }));
  // Unknown or missing service names.
  for (const action of ['restart-service', 'stop-service', 'start-service']) {
    assertFailed(await api.call('POST', `/v2/applications/${a}/${action}`, { key, json: { serviceName: 'nope' } }), 404);
    assertFailed(await api.call('POST', `/v2/applications/${a}/${action}`, { key, json: {} }), 400);
  }
  assertClientError(await api.call('POST', `/v2/applications/${a}/restart-service`, { key, json: { serviceName: 5 } }));
  const cid = await api.call('GET', '/v2/containerId?serviceName=nope', { key });
  assertFailed(cid, 503);
  // Unknown route.
  assert.equal((await api.call('GET', '/v1/nothing-here', { key })).status, 404);

  // None of it touched the app or the agent.
  assert.equal((await containerOf(a, 'main')).id, main.id);
  assert.equal(await running(main.id), true);
  assert.equal((await api.call('GET', '/v1/healthy')).status, 200);
});
