// Deploying and updating multi-container apps from the authenticated registry.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { containersOf, converge, docker, execIn, freshAppId, image, service, startAgent, target } from './harness.js';

const threeServices = (env: Record<string, string> = {}) => ({
  services: {
    db: service({ environment: { ROLE: 'db' } }),
    api: service({ depends_on: ['db'], environment: { ROLE: 'api', ...env } }),
    web: service({ depends_on: ['api'], volumes: ['data:/data'] }),
  },
  volumes: { data: {} },
});

test('deploys a 3-service app from the authenticated registry; services reach each other by name', async (t) => {
  const appId = freshAppId();
  const { agent } = await startAgent(t, [appId]);
  await agent.setTarget(target({ [appId]: threeServices() }), 'test');
  await converge(agent);

  const cs = await containersOf(appId);
  assert.deepEqual(
    cs.map((c) => [c.service, c.state]),
    [
      ['api', 'running'],
      ['db', 'running'],
      ['web', 'running'],
    ],
  );
  const web = cs.find((c) => c.service === 'web')!;
  const ping = await execIn(web.id, ['ping', '-c', '1', '-W', '2', 'db']);
  assert.equal(ping.exitCode, 0, ping.output);
  const env = await execIn(web.id, ['sh', '-c', 'echo $BALENA_APP_ID $BALENA_SERVICE_NAME $BALENA_APP_LOCK_PATH; ls -d /tmp/balena /tmp/resin']);
  assert.equal(env.output.trim().split('\n')[0], `${appId} web /tmp/balena/updates.lock`);

  const state = await agent.currentState();
  assert.equal(state[appId]!.releaseId, 1);
  assert.equal(state[appId]!.updateStatus, 'done');
  assert.deepEqual(
    Object.values(state[appId]!.services).map((s) => s.status),
    ['Running', 'Running', 'Running'],
  );
});

test('an env change recreates only that service and the log says which variable changed', async (t) => {
  const appId = freshAppId();
  const { agent, logs } = await startAgent(t, [appId]);
  await agent.setTarget(target({ [appId]: threeServices() }), 'test');
  await converge(agent);
  const before = await containersOf(appId);

  await agent.setTarget(target({ [appId]: { ...threeServices({ SECRET: 's3cr3t-value' }), releaseId: 2 } }), 'test');
  await converge(agent);
  const after = await containersOf(appId);

  const id = (cs: typeof before, s: string) => cs.find((c) => c.service === s)!.id;
  assert.notEqual(id(after, 'api'), id(before, 'api'));
  assert.equal(id(after, 'db'), id(before, 'db'));
  assert.equal(id(after, 'web'), id(before, 'web'));
  const kill = logs.find((l) => l.startsWith('Killing service api'));
  assert.match(kill ?? '', /environment \(SECRET added\)/);
  assert.ok(!logs.some((l) => l.includes('s3cr3t-value')), 'env values never reach the log');
  assert.equal((await agent.currentState())[appId]!.releaseId, 2);
});

test('an unchanged target never restarts anything, across applies and agent restarts', async (t) => {
  const appId = freshAppId();
  const first = await startAgent(t, [appId]);
  // Fields the engine normalises in what inspect returns: none of them may cause a replace loop.
  const tricky = service({
    restart: 'no',
    ports: ['127.0.0.1::8080', '8081/udp'],
    mem_limit: '64m',
    cpus: 0.5,
    cap_add: ['NET_ADMIN'],
    cap_drop: ['MKNOD'],
    devices: ['/dev/null:/dev/bosun-null:rw'],
    healthcheck: { test: 'true', interval: '30s' },
    command: 'sh -c "exec idle"',
    working_dir: '/tmp',
  });
  const app = threeServices();
  await first.agent.setTarget(target({ [appId]: { ...app, services: { ...app.services, tricky } } }), 'test');
  await converge(first.agent);
  const before = await containersOf(appId);
  for (let i = 0; i < 3; i++) assert.equal(await first.agent.applyNow(), 'converged');
  await first.agent.stop();

  const second = await startAgent(t, [], { dataDir: first.dataDir });
  await converge(second.agent);
  const after = await containersOf(appId);
  assert.deepEqual(
    after.map((c) => [c.id, c.state]),
    before.map((c) => [c.id, c.state]),
  );
});

test('a new image tag is pulled and replaces the container (download-then-kill)', async (t) => {
  const appId = freshAppId();
  const { agent } = await startAgent(t, [appId]);
  await agent.setTarget(target({ [appId]: { services: { main: service() } } }), 'test');
  await converge(agent);
  const [before] = await containersOf(appId);

  await agent.setTarget(target({ [appId]: { releaseId: 2, services: { main: service({ image: image('v2') }) } } }), 'test');
  await converge(agent);
  const after = await containersOf(appId);
  assert.equal(after.length, 1);
  assert.notEqual(after[0]!.id, before!.id);
  assert.equal((await execIn(after[0]!.id, ['cat', '/VERSION'])).output.trim(), 'v2');
});

test('removing a service removes its container only; volumes stay', async (t) => {
  const appId = freshAppId();
  const { agent } = await startAgent(t, [appId]);
  await agent.setTarget(target({ [appId]: threeServices() }), 'test');
  await converge(agent);
  const web = (await containersOf(appId)).find((c) => c.service === 'web')!;
  await execIn(web.id, ['sh', '-c', 'echo kept > /data/file']);

  const { services, volumes } = threeServices();
  await agent.setTarget(target({ [appId]: { releaseId: 2, services: { db: services.db, api: services.api }, volumes } }), 'test');
  await converge(agent);
  assert.deepEqual(
    (await containersOf(appId)).map((c) => c.service),
    ['api', 'db'],
  );

  await agent.setTarget(target({ [appId]: { releaseId: 3, ...threeServices() } }), 'test');
  await converge(agent);
  const web2 = (await containersOf(appId)).find((c) => c.service === 'web')!;
  assert.equal((await execIn(web2.id, ['cat', '/data/file'])).output.trim(), 'kept');
});

test("network_mode service:x shares that service's network namespace and starts after it", async (t) => {
  const appId = freshAppId();
  const { agent } = await startAgent(t, [appId]);
  await agent.setTarget(
    target({
      [appId]: {
        services: {
          sidecar: service({ network_mode: 'service:vpn' }),
          vpn: service({ command: ['sh', '-c', 'echo from-vpn > /tmp/index.html; exec httpd -f -p 8080 -h /tmp'] }),
        },
      },
    }),
    'test',
  );
  await converge(agent);
  const cs = await containersOf(appId);
  assert.deepEqual(
    cs.map((c) => [c.service, c.state]),
    [
      ['sidecar', 'running'],
      ['vpn', 'running'],
    ],
  );
  const sidecar = cs.find((c) => c.service === 'sidecar')!;
  const got = await execIn(sidecar.id, ['wget', '-q', '-O', '-', 'http://127.0.0.1:8080/']);
  assert.equal(got.output.trim(), 'from-vpn');
  const mode = (await docker.getContainer(sidecar.id).inspect()).HostConfig.NetworkMode;
  assert.equal(mode, `container:${cs.find((c) => c.service === 'vpn')!.id}`);

  // Replacing vpn replaces what shares its network, or sidecar would sit in a dead namespace.
  await agent.setTarget(
    target({
      [appId]: {
        releaseId: 2,
        services: {
          sidecar: service({ network_mode: 'service:vpn' }),
          vpn: service({ environment: { V: '2' }, command: ['sh', '-c', 'echo from-vpn-2 > /tmp/index.html; exec httpd -f -p 8080 -h /tmp'] }),
        },
      },
    }),
    'test',
  );
  await converge(agent);
  const after = await containersOf(appId);
  const sidecar2 = after.find((c) => c.service === 'sidecar')!;
  assert.notEqual(sidecar2.id, sidecar.id);
  assert.equal((await execIn(sidecar2.id, ['wget', '-q', '-O', '-', 'http://127.0.0.1:8080/'])).output.trim(), 'from-vpn-2');
});
