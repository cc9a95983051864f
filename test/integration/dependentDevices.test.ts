// A gateway on a real engine, its target from a file-like source (no control plane): the dependent
// app's image is pulled (never run) and kept by the image cleanup, its /assets served as a tar byte
// for byte; devices are provisioned locally, hooked (202 repeated until the device reports the
// commit, across an agent restart), deleted (DELETE hook); keys of other apps get 401, bad bodies 400.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Agent } from '../../src/agent/agent.js';
import type { DependentTarget } from '../../src/shared/dependents.js';
import type { TargetState } from '../../src/shared/targetState.js';
import { dependentImage, hookBody, hookCalls, hookServer, type DependentImage } from './gateway.js';
import { filesOf } from './tarFiles.js';
import { docker, freshAppId, imagePresent, service, sleep, startAgent, target, waitFor } from './harness.js';

const HOOKS = { hookBackoff: { baseMs: 200, maxMs: 1000 }, hookTimeoutMs: 5000 };

async function api(agent: Agent, method: string, path: string, key: string, body?: unknown) {
  const res = await fetch(`http://127.0.0.1:${agent.apiPort()}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const buf = Buffer.from(await res.arrayBuffer());
  let json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  try {
    json = JSON.parse(buf.toString());
  } catch {
    json = undefined;
  }
  return { status: res.status, type: res.headers.get('content-type'), buf, body: json };
}

export function assertAssets(files: Map<string, Buffer>, img: DependentImage): void {
  for (const [name, data] of img.files) assert.ok(files.get(`assets/${name}`)?.equals(data), `assets/${name} byte for byte`);
}

test('a gateway: dependent app images and assets, local provisioning, hooks across a restart, deletion, key scope', async (t) => {
  const gw = freshAppId();
  const other = freshAppId();
  const dep = freshAppId();
  const [c0, c1, hooks] = await Promise.all([dependentImage(`c0-${dep}`), dependentImage(`c1-${dep}`), hookServer()]);
  const dependent = (
    devices: DependentTarget['devices'] = {},
    release: { commit: string; image: string } | null = { commit: 'c1', image: c1.ref },
    pinned: { commit: string; image: string }[] = [],
  ) =>
    ({
      apps: {
        [dep]: {
          name: 'edge',
          parent_app: gw,
          device_type: 'generic-amd64',
          release: release ? { id: 2, ...release } : null,
          ...(pinned.length ? { pinned_releases: pinned.map((r) => ({ id: 1, ...r })) } : {}),
          config: { MODE: 'x' },
        },
      },
      devices,
    }) satisfies DependentTarget;
  const gatewayTarget = (d: DependentTarget): TargetState => ({
    ...target({ [gw]: { services: { hooks: hooks.service } }, [other]: { services: { main: service() } } }),
    dependent: d,
  });
  const { agent, dataDir } = await startAgent(t, [gw, other], { dependents: HOOKS });
  await agent.setTarget(gatewayTarget(dependent()), 'test');
  const key = agent.apiKeys.keyForApp(gw)!;
  const otherKey = agent.apiKeys.keyForApp(other)!;

  // the dependent apps, in balena's shape; another app's key gets 401
  assert.deepEqual((await api(agent, 'GET', '/v1/dependent-apps', key)).body, [{ id: dep, name: 'edge', commit: 'c1', config: { MODE: 'x' } }]);
  assert.equal((await api(agent, 'GET', '/v1/dependent-apps', otherKey)).status, 401);
  assert.equal((await api(agent, 'GET', `/v1/dependent-apps/${dep}/assets/c1`, otherKey)).status, 401);
  assert.equal((await api(agent, 'GET', '/v1/devices', otherKey)).status, 401);
  assert.equal((await api(agent, 'POST', '/v1/devices', otherKey, { appId: dep })).status, 401);

  // the image is pulled, its /assets served as a tar, byte for byte, and nothing of it runs
  const assets = await waitFor('the assets', async () => {
    const r = await api(agent, 'GET', `/v1/dependent-apps/${dep}/assets/c1`, key);
    return r.status === 200 ? r : undefined;
  });
  assert.equal(assets.type, 'application/x-tar');
  assertAssets(filesOf(assets.buf), c1);
  assert.deepEqual(await docker.listContainers({ all: true, filters: { ancestor: [c1.ref] } }), [], 'no container of the dependent image is left');
  assert.equal((await api(agent, 'GET', `/v1/dependent-apps/${dep}/assets/c0`, key)).status, 404);
  assert.equal((await api(agent, 'GET', `/v1/dependent-apps/${dep + 1000}/assets/c1`, key)).status, 404);
  // the image cleanup keeps it though no service uses it
  await agent.applyNow();
  await agent.applyNow();
  assert.ok(await imagePresent(c1.ref), 'the dependent image is kept');

  // provisioned locally (no control plane): balena's 201 body
  const created = await api(agent, 'POST', '/v1/devices', key, { appId: dep });
  assert.equal(created.status, 201);
  assert.deepEqual(Object.keys(created.body).sort(), ['device_type', 'id', 'name', 'note', 'uuid']);
  assert.equal(created.body.device_type, 'generic-amd64');
  const uuid = created.body.uuid as string;
  assert.match(uuid, /^[0-9a-f]{32}$/);
  assert.equal((await api(agent, 'POST', '/v1/devices', key, {})).body.message.includes('appId'), true, 'a bad body names the field');
  assert.equal((await api(agent, 'POST', '/v1/devices', key, {})).status, 400);

  // the update hook: 202 twice (repeated), then the device reports the commit and it stops
  const updates = await hookCalls(hooks, new RegExp(`^PUT /${uuid} `), 2);
  assert.deepEqual(JSON.parse(updates[0]!.split(' ').slice(2).join(' ')), { commit: 'c1', environment: {} });
  const put = await api(agent, 'PUT', `/v1/devices/${uuid}`, key, { is_online: true, status: 'Idle', commit: 'c1' });
  assert.equal(put.status, 200);
  assert.equal(put.body.commit, 'c1');
  assert.equal(put.body.targetCommit, 'c1');
  assert.equal(put.body.is_online, true);
  const callsAfter = (await hooks.calls()).length;
  await sleep(2500); // the backoff is at most 1 s: a hook still owed would have come again
  assert.equal((await hooks.calls()).length, callsAfter, 'no hook once the device reported the commit');
  assert.equal((await api(agent, 'PUT', `/v1/devices/${uuid}`, key, { is_online: 'yes' })).status, 400);
  assert.match((await api(agent, 'PUT', `/v1/devices/${uuid}`, key, { is_online: 'yes' })).body.message, /is_online/);
  assert.equal((await api(agent, 'GET', `/v1/devices/${'f'.repeat(32)}`, key)).status, 404);
  assert.equal((await api(agent, 'GET', `/v1/devices/${uuid}`, otherKey)).status, 401);
  const listed = (await api(agent, 'GET', '/v1/devices', key)).body;
  assert.equal(listed.length, 1);
  assert.deepEqual(
    Object.keys(listed[0]).sort(),
    [
      'appId',
      'commit',
      'config',
      'deviceId',
      'device_type',
      'download_progress',
      'environment',
      'id',
      'is_online',
      'logs_channel',
      'name',
      'status',
      'targetCommit',
      'targetConfig',
      'targetEnvironment',
      'uuid',
    ].sort(),
  );
  assert.equal((await api(agent, 'POST', `/v1/devices/${uuid}/logs`, key, { message: 'detected movement', timestamp: 1472142960 })).status, 202);
  assert.equal((await api(agent, 'POST', `/v1/devices/${uuid}/logs`, key, { message: 'm', timestamp: 'yesterday' })).status, 400);
  // a restart request for the device (the control plane relays it with the device key) is the restart hook
  assert.equal((await api(agent, 'POST', `/v1/devices/${uuid}/restart`, otherKey)).status, 401);
  assert.equal((await api(agent, 'POST', `/v1/devices/${uuid}/restart`, key)).status, 202);
  await hookCalls(hooks, new RegExp(`^PUT /${uuid}/restart`), 1);

  // a device of the control plane's (target), pinned to an older release the gateway never had: its
  // hook, and that release's assets; the agent restarts while the hook repeats
  const remote = 'd'.repeat(32);
  const deviceTarget = (commit: string) => ({
    id: 99,
    app_id: dep,
    name: 'wild-paper',
    device_type: 'generic-amd64',
    commit,
    environment: { LED: 'on' },
    config: {},
  });
  await agent.setTarget(gatewayTarget(dependent({ [remote]: deviceTarget('c0') }, undefined, [{ commit: 'c0', image: c0.ref }])), 'test');
  assert.deepEqual(hookBody((await hookCalls(hooks, new RegExp(`^PUT /${remote} `), 1))[0]!), { commit: 'c0', environment: { LED: 'on' } });
  const pinnedAssets = await waitFor("the pinned release's assets", async () => {
    const r = await api(agent, 'GET', `/v1/dependent-apps/${dep}/assets/c0`, key);
    return r.status === 200 ? r : undefined;
  });
  assertAssets(filesOf(pinnedAssets.buf), c0);
  await agent.stop();
  const before = (await hooks.calls()).filter((c) => c.startsWith(`PUT /${remote} `)).length;
  const restarted = (await startAgent(t, [], { dataDir, dependents: HOOKS })).agent;
  // repeated by the restarted agent (the first two answers are 202): it owed the hook on disk
  await hookCalls(hooks, new RegExp(`^PUT /${remote} `), Math.max(before + 1, 2));
  assert.equal((await api(restarted, 'PUT', `/v1/devices/${remote}`, key, { commit: 'c0' })).status, 200);

  // deleted on the control plane (gone from the target): the DELETE hook, and the device is gone;
  // the device provisioned here and not synced is not deleted
  await restarted.setTarget(gatewayTarget(dependent()), 'test');
  await hookCalls(hooks, new RegExp(`^DELETE /${remote}`), 1);
  assert.equal((await api(restarted, 'GET', `/v1/devices/${remote}`, key)).status, 404);
  assert.equal((await api(restarted, 'GET', `/v1/devices/${uuid}`, key)).status, 200);
  assert.ok(!(await hooks.calls()).some((c) => c.startsWith(`DELETE /${uuid}`)));

  // the dependent app itself is deleted: its devices' DELETE hooks still go to the gateway app's address
  const last = 'e'.repeat(32);
  await restarted.setTarget(gatewayTarget(dependent({ [last]: { ...deviceTarget('c1'), id: 100 } })), 'test');
  await hookCalls(hooks, new RegExp(`^PUT /${last} `), 1);
  await restarted.setTarget(gatewayTarget({ apps: {}, devices: {} }), 'test');
  await hookCalls(hooks, new RegExp(`^DELETE /${last}`), 1);

  // the dependent app has no release: its image goes with the next cleanup
  await restarted.setTarget(gatewayTarget(dependent({}, null)), 'test');
  await waitFor('the dependent image removed', async () => {
    await restarted.applyNow();
    return !(await imagePresent(c1.ref));
  });
});
