// Starting from files: balena-format config.json, a preloaded apps.json, a local target file.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Agent } from '../../src/agent/agent.js';
import { ValidationError } from '../../src/shared/errors.js';
import { captureLog, containersOf, converge, freshAppId, image, registry, service, startAgent, target, waitFor } from './harness.js';

const tmp = () => fs.mkdtemp(path.join(os.tmpdir(), 'bosun-local-'));

test('config.json: a uuid is generated and written back atomically, other fields kept', async (t) => {
  const dataDir = await tmp();
  await fs.writeFile(
    path.join(dataDir, 'config.json'),
    JSON.stringify({ applicationId: '2167', deviceType: 'raspberrypi4-64', listenPort: 48484, mixpanelToken: 'x' }),
  );
  const { agent } = await startAgent(t, [], { dataDir });
  const written = JSON.parse(await fs.readFile(path.join(dataDir, 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.match(String(written.uuid), /^[0-9a-f]{32}$/);
  assert.equal(written.mixpanelToken, 'x');
  assert.equal(agent.config.uuid, written.uuid);
  assert.deepEqual(
    (await fs.readdir(dataDir)).filter((f) => f.includes('.tmp')),
    [],
  );
});

test('a device that lost its data dir (so its uuid) adopts its networks and volumes and converges', async (t) => {
  const appId = freshAppId();
  const app = target({ [appId]: { services: { main: service({ volumes: ['data:/data'] }) }, volumes: { data: {} } } });
  const first = await startAgent(t, [appId], { dataDir: await tmp() });
  await first.agent.setTarget(app, 'test');
  await converge(first.agent);
  await first.agent.stop();

  const second = await startAgent(t, [], { dataDir: await tmp() });
  assert.notEqual(second.agent.config.uuid, first.agent.config.uuid);
  await second.agent.setTarget(app, 'test');
  await converge(second.agent);
  const cs = await containersOf(appId);
  assert.deepEqual(
    cs.map((c) => [c.service, c.state]),
    [['main', 'running']],
  );
  assert.ok(!second.logs.some((l) => /already exists/.test(l)), second.logs.join('\n'));
});

test('config.json: an invalid field stops the agent with an error naming it', async () => {
  const dataDir = await tmp();
  await fs.writeFile(path.join(dataDir, 'config.json'), JSON.stringify({ listenPort: 'eighty' }));
  const agent = new Agent({ dataDir, log: captureLog().log });
  await assert.rejects(agent.start(), (err: unknown) => err instanceof ValidationError && err.field === '/listenPort');
  await agent.stop();
});

test('apps.json (balena preload format) becomes the first target and is used once', async (t) => {
  const appId = freshAppId();
  const dataDir = await tmp();
  const appsJson = {
    config: { SUPERVISOR_POLL_INTERVAL: '900000' },
    apps: {
      f6a4e1b2c3d4: {
        id: appId,
        name: 'preloaded',
        class: 'fleet',
        releases: {
          deadbeef: {
            id: 7,
            services: {
              main: {
                id: 1,
                image_id: 1,
                image: image('v1'),
                running: true,
                environment: { FROM: 'preload' },
                labels: {},
                composition: { restart: 'always', volumes: ['data:/data'], tty: true },
              },
            },
            volumes: { data: {} },
            networks: {},
          },
        },
      },
    },
  };
  await fs.writeFile(path.join(dataDir, 'apps.json'), JSON.stringify(appsJson));
  // Preloaded images are on the device already in balena; here the agent pulls with these credentials.
  await fs.writeFile(path.join(dataDir, 'config.json'), JSON.stringify({}));
  const { agent, logs } = await startAgent(t, [appId], { dataDir });
  assert.equal(agent.getTarget()?.apps[appId]?.release.commit, 'deadbeef');
  assert.ok(
    logs.some((l) => /unsupported compose keys ignored: main\.tty/.test(l)),
    logs.join('\n'),
  );
  await agent.setTarget({ ...agent.getTarget()!, registries: { local: registry } }, 'test');
  await converge(agent);
  assert.deepEqual(
    (await containersOf(appId)).map((c) => [c.service, c.state, c.releaseId]),
    [['main', 'running', 7]],
  );
  assert.equal(await fs.readFile(path.join(dataDir, 'apps.json'), 'utf8'), '{}\n');
  await fs.access(path.join(dataDir, 'apps.json.preloaded'));
});

test('a local target file is followed: edits are applied, a broken edit is rejected and logged', async (t) => {
  const appId = freshAppId();
  const dataDir = await tmp();
  const file = path.join(dataDir, 'target.json');
  await fs.writeFile(file, JSON.stringify(target({ [appId]: { services: { main: service({ environment: { V: '1' } }) } } })));
  const { agent, logs } = await startAgent(t, [appId], { dataDir, targetFile: file });
  await converge(agent);
  const [first] = await containersOf(appId);

  await fs.writeFile(file, '{"apps": {"1": {"name": 5}}}');
  await waitFor('the rejection', async () => logs.find((l) => l.startsWith(`Target state in ${file} rejected`)), 10_000);
  assert.deepEqual(
    (await containersOf(appId)).map((c) => c.id),
    [first!.id],
  );

  await fs.writeFile(file, JSON.stringify(target({ [appId]: { releaseId: 2, services: { main: service({ environment: { V: '2' } }) } } })));
  await waitFor(
    'the edit applied',
    async () => {
      const cs = await containersOf(appId);
      return cs.length === 1 && cs[0]!.id !== first!.id && cs[0]!.state === 'running' && cs[0]!.releaseId === 2;
    },
    15_000,
  );
});
