// End to end on real parts: the control plane (in-process, SQLite), a device agent in cloud mode,
// the test engine and the authenticated registry. Registry → project → release → containers
// running on the device → successful_deployments and docker_releases; a bad release fails, says
// why, and the previous release keeps running.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { controlPlane, deploymentFailed, imageName, provisionedDevice, tag } from './controlPlane.js';
import { containersOf, docker, image, pullTestImage, startAgent, waitFor } from './harness.js';

test('a release reaches a provisioned device, runs, and is recorded as deployed; a bad one fails and the previous keeps running', async (t) => {
  const cp = await controlPlane(t);
  const { call } = cp;
  const { agent, logs, appId, dataDir, deviceId: registered } = await provisionedDevice(t, cp, 'e2e');
  const deviceId = await registered();
  const config = JSON.parse(await fs.readFile(path.join(dataDir, 'config.json'), 'utf8')) as { apiKey?: string };
  assert.equal(config.apiKey, undefined, 'the provisioning key is dropped once the device has its own');
  assert.deepEqual((await call('GET', `/docker/projects/${appId}/`)).body.devices, [deviceId]);

  // Release 1: runs on the device; the deployment is recorded.
  const r1 = await call('POST', `/docker/projects/${appId}/releases/`, {
    version: '1.0.0',
    containers: [
      {
        name: 'web',
        image: imageName,
        tag,
        required_tags: [],
        startup_parameters: { environment: ['GREETING=hello'], restart_policy: 'always' },
        purge_data: false,
      },
      { name: 'worker', image: imageName, tag, required_tags: ['base'], startup_parameters: { environment: "MODE='batch job'" }, purge_data: false },
    ],
  });
  assert.equal(r1.status, 201, JSON.stringify(r1.body));
  await waitFor(
    'release 1 running',
    async () => {
      const cs = await containersOf(appId);
      return cs.length === 2 && cs.every((c) => c.state === 'running' && c.releaseId === r1.body.id);
    },
    90_000,
  ).catch(async (err: Error) => {
    throw new Error(
      `${err.message}\ncontainers: ${JSON.stringify(await containersOf(appId))}\n` +
        `agent: ${JSON.stringify(await agent.currentState())}\n${logs.slice(-30).join('\n')}`,
    );
  });
  await waitFor(
    'release 1 recorded as deployed',
    async () => (await call('GET', `/docker/projects/${appId}/releases/${r1.body.id}/`)).body.successful_deployments?.includes(deviceId),
    30_000,
  );
  const device = (await call('GET', `/dongle/devices/${deviceId}/`)).body;
  assert.deepEqual(device.docker_releases, [r1.body.id]);
  assert.equal(device.online, true);
  assert.equal(agent.localMode(), false);

  // The supervisor proxy: calls reach the device's API over its link, answers come back.
  const uuid = agent.config.uuid!;
  const info = await call('POST', '/supervisor/v1/device', { uuid, method: 'GET' });
  assert.equal(info.status, 200, JSON.stringify(info.body));
  assert.equal(info.body.api_port, agent.apiPort());
  // (`commit` is left out while an apply runs, as balena does: ask until one is not running)
  await waitFor(
    'the device to report its commit',
    async () => (await call('POST', '/supervisor/v1/device', { uuid, method: 'GET' })).body.commit === r1.body.version_hash,
    15_000,
  );
  const web = (await containersOf(appId)).find((c) => c.service === 'web')!;
  const startedAt = async () => (await docker.getContainer(web.id).inspect()).State.StartedAt;
  const before = await startedAt();
  const restart = await call('POST', '/supervisor/v1/restart', { uuid, data: { appId } });
  assert.equal(restart.status, 200, JSON.stringify(restart.body));
  assert.equal(restart.body, 'OK', 'the device API answers text here, and so does the proxy');
  assert.notEqual(await startedAt(), before, 'the app was restarted on the device');
  const fleet = await call('POST', '/supervisor/ping', { appId, method: 'GET' });
  assert.equal(fleet.status, 207);
  assert.deepEqual(
    fleet.body.map((e: { deviceId: string; status: number }) => [e.deviceId, e.status]),
    [[deviceId, 200]],
  );

  // Release 2 names a tag that does not exist: it fails with the reason; release 1 keeps running.
  const r2 = await call('POST', `/docker/projects/${appId}/releases/`, {
    version: '2.0.0',
    containers: [{ name: 'web', image: imageName, tag: 'no-such-tag', required_tags: [], startup_parameters: {}, purge_data: false }],
  });
  assert.equal(r2.status, 201);
  const failed = await deploymentFailed(cp, appId, r2.body.id, deviceId);
  assert.match(failed.error ?? '', /no-such-tag|not found|manifest unknown/i);
  const cs = await containersOf(appId);
  assert.ok(
    cs.some((c) => c.service === 'web' && c.state === 'running' && c.releaseId === r1.body.id),
    'release 1 keeps running',
  );
});

test('offline: the device keeps running its release while the server is down, and reconnects when it is back', async (t) => {
  const cp = await controlPlane(t);
  const { call } = cp;
  const { agent, logs, appId, dataDir } = await provisionedDevice(t, cp, 'offline', { appUpdatePollInterval: 5000 });
  const release = (version: string, env: string) =>
    call('POST', `/docker/projects/${appId}/releases/`, {
      version,
      containers: [
        { name: 'main', image: imageName, tag, required_tags: [], startup_parameters: { environment: [env], restart_policy: 'always' }, purge_data: false },
      ],
    });
  const r1 = await release('1', 'V=1');
  assert.equal(r1.status, 201, JSON.stringify(r1.body));
  await waitFor('release 1 running', async () => (await containersOf(appId)).some((c) => c.state === 'running' && c.releaseId === r1.body.id), 90_000).catch(
    (err: Error) => {
      throw new Error(`${err.message}\n${logs.join('\n')}`);
    },
  );

  await cp.stop();
  await waitFor('the agent to notice', async () => logs.some((l) => /not fetched/.test(l)), 30_000);
  const running = await containersOf(appId);
  assert.ok(
    running.every((c) => c.state === 'running'),
    'apps keep running offline',
  );
  // an agent restart while offline keeps the last target (it is persisted)
  await agent.stop();
  const again = await startAgent(t, [], { dataDir });
  assert.equal(await again.agent.applyNow(), 'converged');
  assert.deepEqual(
    (await containersOf(appId)).map((c) => c.id),
    running.map((c) => c.id),
  );

  await cp.restart();
  const r2 = await release('2', 'V=2');
  await waitFor(
    'release 2 after reconnecting',
    async () => (await containersOf(appId)).some((c) => c.state === 'running' && c.releaseId === r2.body.id),
    120_000,
  );
  await waitFor(
    'release 2 recorded',
    async () => (await call('GET', `/docker/projects/${appId}/releases/${r2.body.id}/`)).body.successful_deployments?.length === 1,
    30_000,
  );
});

test('remove_containers: stopped before the release, removed when it runs, started again when it fails; purge_data empties the data first', async (t) => {
  const cp = await controlPlane(t);
  const { call } = cp;
  // The device's "initial containers" (a factory app the agent does not manage).
  await pullTestImage(image('v1'));
  const initial = async (name: string) => {
    await docker
      .getContainer(name)
      .remove({ force: true })
      .catch(() => undefined);
    const c = await docker.createContainer({ name, Image: image('v1') });
    await c.start();
    t.after(() => c.remove({ force: true }).catch(() => undefined));
    return c;
  };
  const factory = await initial(`bosun-factory-${process.pid}`);
  const spare = await initial(`bosun-spare-${process.pid}`);
  const dataRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-purge-'));
  t.after(() => fs.rm(dataRoot, { recursive: true, force: true }));
  // the data area purge_data may empty, for the server and the agent (both in this process)
  process.env.BOSUN_DATA_ROOTS = dataRoot;
  t.after(() => delete process.env.BOSUN_DATA_ROOTS);
  await fs.mkdir(path.join(dataRoot, 'data', 'cache'), { recursive: true });
  await fs.writeFile(path.join(dataRoot, 'data', 'cache', 'old.db'), 'from the factory app');
  await fs.writeFile(path.join(dataRoot, 'keep.txt'), 'outside the bind');

  const { agent, logs, appId, deviceId: registered } = await provisionedDevice(t, cp, 'initial');
  const deviceId = await registered();

  // Release 1 replaces the factory container and starts on purged data.
  const r1 = await call('POST', `/docker/projects/${appId}/releases/`, {
    version: '1',
    remove_containers: [`bosun-factory-${process.pid}`],
    containers: [
      {
        name: 'app',
        image: imageName,
        tag,
        startup_parameters: {
          binds: [`${dataRoot}/data:/data`],
          command: ['sh', '-c', "trap 'exit 0' TERM; ls -A /data > /tmp/seen; mv /tmp/seen /data/seen-at-start; while true; do sleep 1; done"],
        },
        purge_data: true,
      },
    ],
  });
  assert.equal(r1.status, 201, JSON.stringify(r1.body));
  await waitFor(
    'release 1 deployed',
    async () => (await call('GET', `/docker/projects/${appId}/releases/${r1.body.id}/`)).body.successful_deployments?.includes(deviceId),
    90_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${logs.slice(-30).join('\n')}`);
  });
  assert.equal(
    await factory.inspect().then(
      () => 'exists',
      () => 'gone',
    ),
    'gone',
    'the factory container is removed once the release runs',
  );
  assert.equal(await fs.readFile(path.join(dataRoot, 'data', 'seen-at-start'), 'utf8'), '', 'the app started on an empty data folder');
  assert.equal(await fs.readFile(path.join(dataRoot, 'keep.txt'), 'utf8'), 'outside the bind');
  const stoppedAt = logs.findIndex((l) => l.includes('Stopping container bosun-factory'));
  const installedAt = logs.findIndex((l) => l.includes('Installing service app'));
  assert.ok(stoppedAt >= 0 && stoppedAt < installedAt, 'the factory container is stopped before the release is installed');
  assert.equal((await spare.inspect()).State.Running, true, 'containers not named are left alone');

  // Release 2 names the spare container and has a container that cannot start: the spare comes back.
  const spareBefore = (await spare.inspect()).State.StartedAt;
  const r2 = await call('POST', `/docker/projects/${appId}/releases/`, {
    version: '2',
    remove_containers: [`bosun-spare-${process.pid}`],
    containers: [
      { name: 'app', image: imageName, tag, startup_parameters: { binds: [`${dataRoot}/data:/data`] } },
      { name: 'broken', image: imageName, tag, startup_parameters: { devices: ['/dev/bosun-no-such-device'] } },
    ],
  });
  assert.equal(r2.status, 201, JSON.stringify(r2.body));
  const failed = await deploymentFailed(cp, appId, r2.body.id, deviceId);
  assert.match(failed.error ?? '', /broken/);
  const restarted = await waitFor(
    'the spare container to run again',
    async () => {
      const s = (await spare.inspect()).State;
      return s.Running && s.StartedAt !== spareBefore ? s : undefined;
    },
    30_000,
  );
  assert.ok(restarted.Running);
  assert.ok(
    logs.some((l) => l.includes(`Stopping container bosun-spare-${process.pid}`)),
    'it was stopped for the deployment',
  );
  // not stopped again while the agent keeps retrying the broken container
  await waitFor('a retry of the broken container', async () => logs.filter((l) => /Failed to (create|start) service broken/.test(l)).length >= 2, 30_000);
  assert.equal((await spare.inspect()).State.StartedAt, restarted.StartedAt);
  assert.equal(agent.localMode(), false);
});
