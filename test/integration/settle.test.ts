// A deployment succeeds only once its services settled, on real parts: the control plane, a device
// agent in cloud mode and the test engine. A release whose container crash-loops (exit 1 under
// restart=always) or exits with an error is a failed deployment whose error says why (exit code,
// restarts, last lines), and is neither in successful_deployments nor in the device's
// docker_releases; a good release succeeds, no sooner than the settle period after it started. On
// the agent alone: a failing healthcheck keeps a release from settling, and a service's failure is
// said also before its release is applied.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { controlPlane, deploymentOf, imageName, provisionedDevice, tag } from './controlPlane.js';
import { containersOf, docker, freshAppId, image, service, startAgent, target, waitFor } from './harness.js';

const SETTLE_MS = 6000;

test('a crash-looping release is a failed deployment with its reason, not deployed; a good release succeeds after the settle period', async (t) => {
  const cp = await controlPlane(t);
  const { call } = cp;
  const { agent, logs, appId, deviceId: registered } = await provisionedDevice(t, cp, 'settle', {}, { settleMs: SETTLE_MS });
  const deviceId = await registered();
  const release = async (version: string, containers: unknown[]) => {
    const r = await call('POST', `/docker/projects/${appId}/releases/`, { version, containers });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.id as number;
  };
  const deployment = (id: number) => deploymentOf(cp, appId, id, deviceId);
  const deployed = async (id: number) => ({
    successful: (await call('GET', `/docker/projects/${appId}/releases/${id}/`)).body.successful_deployments as string[],
    docker_releases: (await call('GET', `/dongle/devices/${deviceId}/`)).body.docker_releases as number[],
  });
  const explain = async (err: Error) => {
    throw new Error(
      `${err.message}\ncontainers: ${JSON.stringify(await containersOf(appId))}\n` +
        `agent: ${JSON.stringify(await agent.currentState())}\n${logs.slice(-30).join('\n')}`,
    );
  };

  // A good release: succeeded once its service ran the settle period, not before.
  const good = { name: 'web', image: imageName, tag, startup_parameters: { restart_policy: 'always' } };
  const r1 = await release('1', [good]);
  const running = await waitFor(
    'release 1 running',
    async () => (await containersOf(appId)).find((c) => c.state === 'running' && c.releaseId === r1),
    90_000,
  ).catch(explain);
  const startedAt = Date.parse((await docker.getContainer(running!.id).inspect()).State.StartedAt);
  const early = await deployment(r1);
  const checkedAt = Date.now();
  if (checkedAt < startedAt + SETTLE_MS) assert.notEqual(early?.state, 'succeeded', 'not deployed before its service ran the settle period');
  const succeeded = await waitFor(
    'release 1 succeeded',
    async () => ((await deployment(r1))?.state === 'succeeded' ? deployment(r1) : undefined),
    60_000,
  ).catch(explain);
  assert.ok(
    Date.parse(succeeded!.finished_at!) >= startedAt + SETTLE_MS,
    `succeeded at ${succeeded!.finished_at}, its service started at ${new Date(startedAt).toISOString()}`,
  );
  assert.deepEqual(await deployed(r1), { successful: [deviceId], docker_releases: [r1] });

  // A release whose service crash-loops (exit 1, restart=always) and whose job exits with an error.
  const crash = {
    name: 'web',
    image: imageName,
    tag,
    startup_parameters: { restart_policy: 'always', command: ['sh', '-c', 'echo starting up; echo "fatal: no config in /etc/app" >&2; exit 1'] },
  };
  const job = { name: 'job', image: imageName, tag, startup_parameters: { command: ['sh', '-c', 'echo migrating; exit 3'] } };
  const r2 = await release('2', [crash, job]);
  // (between two exits the container runs for a moment: its error then says it restarted, and no exit code)
  const crashed = /web: exited with code 1, restarted \d+ times?; last lines:\n(.*\n)*fatal: no config in \/etc\/app/;
  const failed = await waitFor(
    'release 2 failed with the exit code, the restarts and the last lines',
    async () => {
      const d = await deployment(r2);
      return d?.state === 'failed' && crashed.test(d.error ?? '') ? d : undefined;
    },
    90_000,
  ).catch(explain);
  t.diagnostic(`release 2 failed: ${failed!.error}`);
  assert.ok(failed!.finished_at);
  assert.match(failed!.error!, /job: exited with code 3; last lines:\nmigrating/);
  assert.deepEqual(await deployed(r2), { successful: [], docker_releases: [r1] }, 'the crash-looping release is not deployed');
  const device = (await call('GET', `/dongle/devices/${deviceId}/`)).body;
  assert.equal(device.state.status, 'error');
  assert.match(device.state.apps[String(appId)].services.web.error, /restarted \d+ time/);
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  assert.equal((await deployment(r2))?.state, 'failed', 'it stays failed past the settle period: it never ran that long');

  // The fix: release 3 succeeds; release 2 stays failed (what happened to it).
  const r3 = await release('3', [good]);
  await waitFor('release 3 succeeded', async () => (await deployment(r3))?.state === 'succeeded', 90_000).catch(explain);
  assert.deepEqual(await deployed(r3), { successful: [deviceId], docker_releases: [r1, r3] });
  assert.equal((await deployment(r2))?.state, 'failed');
  assert.equal((await call('GET', `/dongle/devices/${deviceId}/`)).body.state.status, 'idle');
});

test('the agent alone: a service whose healthcheck fails does not settle; its error says unhealthy', async (t) => {
  const appId = freshAppId();
  const { agent } = await startAgent(t, [appId], { settleMs: 1000 });
  const healthcheck = (cmd: string) => ({ test: ['CMD-SHELL', cmd], interval: '1s', timeout: '1s', retries: 1 });
  await agent.setTarget(
    target({ [appId]: { releaseId: 1, services: { main: service({ image: image('v1'), healthcheck: healthcheck('echo sick; exit 1') }) } } }),
    'test',
  );
  const sick = await waitFor(
    'the app to fail',
    async () => {
      const app = (await agent.currentState())[String(appId)];
      return app?.settle === 'failed' ? app : undefined;
    },
    60_000,
  );
  assert.equal(sick.updateStatus, 'done', 'the release is applied (balena’s updateStatus), it just did not settle');
  assert.match(sick.services.main!.error ?? '', /^unhealthy \(healthcheck: sick\)/);

  await agent.setTarget(target({ [appId]: { releaseId: 2, services: { main: service({ image: image('v1'), healthcheck: healthcheck('true') }) } } }), 'test');
  const fine = await waitFor(
    'release 2 to settle',
    async () => {
      const app = (await agent.currentState())[String(appId)];
      return app?.releaseId === 2 && app.settle === 'settled' ? app : undefined;
    },
    60_000,
  );
  assert.equal(fine.services.main!.error, null);
});

test('the agent alone: a service that exited with an error says why, also while its release is not applied', async (t) => {
  const appId = freshAppId();
  const { agent } = await startAgent(t, [appId], { settleMs: 1000 });
  // web's image does not exist, so the release is never applied; db runs meanwhile, and fails
  const db = service({ image: image('v1'), restart: 'no', command: ['sh', '-c', 'echo "db: cannot open /data"; exit 1'] });
  const web = service({ image: `${image('v1').replace(/:v1$/, '')}:no-such-tag` });
  await agent.setTarget(target({ [appId]: { releaseId: 1, services: { db, web } } }), 'test');
  const held = await waitFor(
    'the failure to show',
    async () => {
      const app = (await agent.currentState())[String(appId)];
      return app?.services.db?.error ? app : undefined;
    },
    60_000,
  );
  assert.equal(held.services.db!.error, 'exited with code 1; last lines:\ndb: cannot open /data');
  assert.notEqual(held.updateStatus, 'done');
  assert.equal(held.releaseId, null, 'the release is not applied');
  assert.equal(held.settle, null, 'settling is said of an applied release only');
});
