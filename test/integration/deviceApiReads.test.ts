// The device API's reads (v1 device, v2 version, name, state, status, containerId, local target), and
// calls made from inside the app's own containers with the environment they are given. Each test runs
// its own agent on the real engine.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { execIn, freshAppId, service, waitFor } from './harness.js';
import { type Json, show, deploy, inspect, envOf, containerOf } from './deviceApiFixture.js';

test('reads: /v1/device has every field true to the agent; v2 version, device name, state, status, containerId, local target', async (t) => {
  const a = freshAppId();
  const d = await deploy(t, { [a]: { commit: 'c0ffee', services: { main: service() } } });
  const { api } = d;
  const key = await api.key(a);
  const main = await containerOf(a, 'main');

  const dev = await api.call('GET', '/v1/device', { key });
  assert.equal(dev.status, 200, show(dev));
  const b = dev.body;
  assert.equal(b.api_port, api.port);
  for (const f of ['ip_address', 'mac_address', 'os_version', 'supervisor_version', 'status']) assert.equal(typeof b[f], 'string', `${f}: ${show(dev)}`);
  for (const f of ['update_pending', 'update_downloaded', 'update_failed']) assert.equal(b[f], false, `${f}: ${show(dev)}`);
  assert.equal(b.commit, 'c0ffee');
  assert.equal(b.status, 'Idle');
  assert.equal(b.download_progress, null);
  assert.ok('download_progress' in b);

  const version = await api.call('GET', '/v2/version', { key });
  assert.equal(version.status, 200, show(version));
  assert.equal(version.body.status, 'success');
  assert.match(version.body.version, /^\d+\.\d+\.\d+/);
  assert.equal(b.supervisor_version, version.body.version);

  const name = await api.call('GET', '/v2/device/name', { key });
  assert.equal(name.status, 200, show(name));
  assert.equal(name.body.status, 'success');
  assert.equal(typeof name.body.deviceName, 'string');

  const apps = await api.call('GET', '/v2/applications/state', { key });
  assert.equal(apps.status, 200, show(apps));
  const app = apps.body[`app${a}`];
  assert.ok(app, `keyed by app name: ${show(apps)}`);
  assert.equal(app.appId, a);
  assert.equal(app.commit, 'c0ffee');
  assert.equal(app.services.main.status, 'Running');
  assert.equal(app.services.main.releaseId, 1);
  assert.equal(app.services.main.downloadProgress, null);

  const one = await api.call('GET', `/v2/applications/${a}/state`, { key });
  assert.equal(one.status, 200, show(one));
  assert.equal(typeof one.body, 'object');

  const status = await api.call('GET', '/v2/state/status', { key });
  assert.equal(status.status, 200, show(status));
  assert.equal(status.body.status, 'success');
  assert.equal(status.body.appState, 'applied');
  assert.ok(Array.isArray(status.body.containers), show(status));
  const c = status.body.containers.find((x: Json) => x.serviceName === 'main');
  assert.ok(c, show(status));
  assert.equal(c.appId, a);
  assert.ok(main.id.startsWith(c.containerId));
  assert.equal(c.status, 'Running');

  const cid = await api.call('GET', '/v2/containerId?serviceName=main', { key });
  assert.equal(cid.status, 200, show(cid));
  assert.deepEqual(cid.body, { status: 'success', containerId: main.id });
  assert.deepEqual((await api.call('GET', '/v2/containerId?service=main', { key })).body, { status: 'success', containerId: main.id });
  const all = await api.call('GET', '/v2/containerId', { key });
  assert.equal(all.status, 200, show(all));
  assert.equal(all.body.status, 'success');
  assert.equal(all.body.services.main, main.id);

  const local = await api.call('GET', '/v2/local/target-state', { key: await api.deviceKey() });
  assert.equal(local.status, 200, show(local));
  assert.equal(local.body.status, 'success');
  assert.equal(typeof local.body.state, 'object');

  const update = await api.call('POST', '/v1/update', { key, json: { force: true } });
  assert.equal(update.status, 204, show(update));
  assert.equal(update.text, '');
});

// ---------------------------------------------------------------------------------------------
// from inside the app's containers

const twinNames = [
  'APP_ID',
  'APP_NAME',
  'SERVICE_NAME',
  'DEVICE_UUID',
  'DEVICE_TYPE',
  'DEVICE_NAME_AT_INIT',
  'SUPERVISOR_ADDRESS',
  'SUPERVISOR_HOST',
  'SUPERVISOR_PORT',
  'SUPERVISOR_API_KEY',
];

test('in-container call: a bridge-networked busybox service reaches the API with its own env (wget), and its env is complete', async (t) => {
  const a = freshAppId();
  const script = [
    'for i in $(seq 1 30); do',
    '  wget -qO- "$BALENA_SUPERVISOR_ADDRESS/v1/device?apikey=$BALENA_SUPERVISOR_API_KEY" > /tmp/device.json &&',
    '  wget -qO- "$BALENA_SUPERVISOR_ADDRESS/v2/applications/state?apikey=$BALENA_SUPERVISOR_API_KEY" > /tmp/state.json && break;',
    '  sleep 1;',
    'done; exec idle',
  ].join('\n');
  const d = await deploy(t, { [a]: { name: 'caller-app', services: { caller: service({ command: ['sh', '-c', script] }) } } });
  const { api } = d;
  const caller = await containerOf(a, 'caller');

  // What the service's own command fetched when it started.
  const readJson = async (file: string) => {
    const r = await execIn(caller.id, ['cat', file]);
    try {
      return r.exitCode === 0 && (JSON.parse(r.output) as Json);
    } catch {
      return undefined;
    }
  };
  const fetched = await waitFor(
    "the service's own wget of /v1/device and /v2/applications/state",
    async () => {
      const dev = await readJson('/tmp/device.json');
      const st = dev && (await readJson('/tmp/state.json'));
      return st && { dev, st };
    },
    40_000,
  );
  assert.equal(fetched.dev.api_port, api.port);
  assert.equal(fetched.st['caller-app']?.appId, a, JSON.stringify(fetched.st));

  // And again on demand, from the container's network.
  const now = await execIn(caller.id, ['sh', '-c', 'wget -qO- "$BALENA_SUPERVISOR_ADDRESS/v2/applications/state?apikey=$BALENA_SUPERVISOR_API_KEY"']);
  assert.equal(now.exitCode, 0, now.output);
  assert.equal(JSON.parse(now.output)['caller-app'].services.caller.status, 'Running');
  const ping = await execIn(caller.id, ['sh', '-c', 'wget -qO- "$BALENA_SUPERVISOR_ADDRESS/ping"']);
  assert.equal(ping.output.trim(), 'OK');

  // The environment: the address is the gateway of the app's own network.
  const info = await inspect(caller.id);
  const nets = Object.entries(info.NetworkSettings.Networks);
  const appNet = nets.find(([n]) => n.includes(String(a))) ?? nets[0];
  assert.ok(appNet, JSON.stringify(info.NetworkSettings.Networks));
  const gateway = appNet[1].Gateway;
  assert.ok(gateway);
  const env = await envOf(caller.id);
  assert.equal(env.BALENA_SUPERVISOR_HOST, gateway);
  assert.equal(env.BALENA_SUPERVISOR_PORT, String(api.port));
  assert.equal(env.BALENA_SUPERVISOR_ADDRESS, `http://${gateway}:${api.port}`);
  assert.equal(env.BALENA_SUPERVISOR_API_KEY, await api.key(a));
  assert.equal(env.BALENA_APP_ID, String(a));
  assert.equal(env.BALENA_APP_NAME, 'caller-app');
  assert.equal(env.BALENA_SERVICE_NAME, 'caller');
  assert.equal(env.BALENA_DEVICE_UUID, d.agent.config.uuid);
  assert.ok(env.BALENA_DEVICE_TYPE);
  assert.ok(env.BALENA_DEVICE_NAME_AT_INIT);
  assert.equal(env.BALENA, '1');
  assert.equal(env.RESIN, '1');
  for (const n of twinNames) {
    assert.equal(env[`RESIN_${n}`], env[`BALENA_${n}`], `RESIN_${n}`);
    assert.equal(env[`BOSUN_${n}`], env[`BALENA_${n}`], `BOSUN_${n}`);
  }
});

test('in-container call: a host-networked service gets BALENA_SUPERVISOR_ADDRESS=http://127.0.0.1:<port> and reaches the API', async (t) => {
  const a = freshAppId();
  const d = await deploy(t, { [a]: { services: { hostnet: service({ network_mode: 'host' }) } } });
  const { api } = d;
  const c = await containerOf(a, 'hostnet');
  const env = await envOf(c.id);
  assert.equal(env.BALENA_SUPERVISOR_ADDRESS, `http://127.0.0.1:${api.port}`);
  assert.equal(env.BALENA_SUPERVISOR_HOST, '127.0.0.1');
  assert.equal(env.BALENA_SUPERVISOR_PORT, String(api.port));
  assert.equal(env.BALENA_SUPERVISOR_API_KEY, await api.key(a));
  const got = await execIn(c.id, ['sh', '-c', 'wget -qO- "$BALENA_SUPERVISOR_ADDRESS/v1/device?apikey=$BALENA_SUPERVISOR_API_KEY"']);
  assert.equal(got.exitCode, 0, got.output);
  assert.equal(JSON.parse(got.output).api_port, api.port);
});
