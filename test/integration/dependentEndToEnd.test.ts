// Issue 16 end to end: a real control plane, a real agent (a child process, so that it can be
// killed) on the real engine, and a gateway app whose hook server answers a device's first two
// updates 202, later ones 200. A dependent app's release reaches the gateway, its assets byte for
// byte; a device provisioned through the gateway is hooked until it reports the commit; the control
// plane shows its commit, online state and logs; pinning and deletion reach the gateway app as
// hooks; then the same with the control plane down part of the way and the agent killed meanwhile.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { controlPlane, imageName, type ControlPlane } from './controlPlane.js';
import { dependentImage, hookBody, hookCalls, hookServer, type DependentImage } from './gateway.js';
import { docker, ENGINE_SCOPE, freePort, registry, removeApps, waitFor } from './harness.js';
import { filesOf } from './tarFiles.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

interface Gateway {
  child: ChildProcess;
  exited: Promise<unknown>;
  lines: string[];
}

/** The agent as a process in cloud mode (src/agent/main.ts through tsx). */
function spawnAgent(dataDir: string, apiPort: number): Gateway {
  const args = [
    '-d',
    dataDir,
    '--interval',
    '500',
    '--engine-scope',
    ENGINE_SCOPE,
    '--api-port',
    String(apiPort),
    '--host-sandbox',
    path.join(dataDir, 'host'),
  ];
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/agent/main.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const keep = (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return { child, lines, exited: new Promise((r) => child.once('exit', r)) };
}

async function kill(g: Gateway): Promise<void> {
  if (g.child.exitCode === null && g.child.signalCode === null) g.child.kill('SIGKILL');
  await g.exited;
}

async function setUp(t: TestContext, cp: ControlPlane, hookCommand: string[], hookEnv: Record<string, string>, hookPort: number) {
  const reg = await cp.call('POST', '/docker/registries/', { url: registry.url, username: registry.username, password: registry.password });
  assert.equal(reg.status, 201);
  const project = (await cp.call('POST', '/docker/projects/', { name: 'gateways', default_registry: reg.body.id })).body.id as number;
  const key = await cp.call('POST', '/provisioning-keys/', { name: 'gw', project });
  await removeApps([project]); // project ids are small: what an interrupted earlier run left goes
  t.after(() => removeApps([project]));
  const release = await cp.call('POST', `/docker/projects/${project}/releases/`, {
    version: '1.0.0',
    containers: [
      {
        name: 'hooks',
        image: imageName,
        tag: 'v1',
        startup_parameters: { command: hookCommand, environment: hookEnv, port_bindings: [`127.0.0.1:${hookPort}:1337`], restart_policy: 'always' },
      },
    ],
  });
  assert.equal(release.status, 201, JSON.stringify(release.body));
  const app = await cp.call('POST', `/docker/projects/${project}/dependent-apps/`, { name: 'edge', device_type: 'esp32' });
  assert.equal(app.status, 201, JSON.stringify(app.body));
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-gateway-'));
  t.after(() => fs.rm(dataDir, { recursive: true, force: true }));
  await fs.writeFile(path.join(dataDir, 'config.json'), JSON.stringify({ apiEndpoint: cp.url, apiKey: key.body.key, deviceType: 'generic-amd64' }));
  return { project, appId: app.body.id as number, dataDir };
}

async function releaseDependent(cp: ControlPlane, appId: number, img: DependentImage): Promise<string> {
  const [repo, tag] = [img.ref.slice(registry.url.length + 1, img.ref.lastIndexOf(':')), img.ref.slice(img.ref.lastIndexOf(':') + 1)];
  const res = await cp.call('POST', `/docker/dependent-apps/${appId}/releases/`, { image: repo, tag });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.commit as string;
}

test('dependent apps and devices end to end: control plane, gateway agent, engine, gateway app hooks; offline and killed', async (t) => {
  const cp = await controlPlane(t);
  const hooks = await hookServer();
  const { project, appId, dataDir } = await setUp(t, cp, hooks.command, hooks.environment, hooks.port);
  const apiPort = await freePort();
  let gateway = spawnAgent(dataDir, apiPort);
  t.after(async () => {
    await kill(gateway);
    if (process.env.BOSUN_TEST_AGENT_LOG) await fs.writeFile(process.env.BOSUN_TEST_AGENT_LOG, gateway.lines.join('\n'));
  });
  const [c1, c2] = await Promise.all([dependentImage(`e2e1-${project}`), dependentImage(`e2e2-${project}`)]);
  const commit1 = await releaseDependent(cp, appId, c1);

  // the gateway app's key, as its container has it
  const key = await waitFor(
    'the gateway app running',
    async () => {
      const [c] = await docker.listContainers({ filters: { label: [`io.balena.app-id=${project}`, `io.bosun.scope=${ENGINE_SCOPE}`] } });
      if (!c) return undefined;
      const env = (await docker.getContainer(c.Id).inspect()).Config.Env;
      return env.find((e) => e.startsWith('BALENA_SUPERVISOR_API_KEY='))?.split('=')[1];
    },
    120_000,
  );
  const api = async (method: string, url: string, body?: unknown) => {
    const res = await fetch(`http://127.0.0.1:${apiPort}${url}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    }).catch(() => undefined);
    if (!res) return { status: 0, buf: Buffer.alloc(0), body: undefined as Json };
    const buf = Buffer.from(await res.arrayBuffer());
    let json: Json;
    try {
      json = JSON.parse(buf.toString());
    } catch {
      json = undefined;
    }
    return { status: res.status, buf, body: json };
  };
  const onServer = (uuid: string) => cp.call('GET', `/dependent-devices/${uuid}`);

  // the release reaches the gateway: listed, and its /assets byte for byte
  await waitFor('the dependent app listed', async () => (await api('GET', '/v1/dependent-apps')).body?.[0]?.commit === commit1, 60_000);
  assert.deepEqual((await api('GET', '/v1/dependent-apps')).body, [{ id: appId, name: 'edge', commit: commit1, config: {} }]);
  const assetsOf = async (commit: string, img: DependentImage) => {
    const tar = await waitFor(
      `assets of ${commit}`,
      async () => {
        const r = await api('GET', `/v1/dependent-apps/${appId}/assets/${commit}`);
        return r.status === 200 ? r.buf : undefined;
      },
      60_000,
    );
    const files = filesOf(tar);
    for (const [name, data] of img.files) assert.ok(files.get(`assets/${name}`)?.equals(data), `assets/${name} of ${commit} byte for byte`);
  };
  await assetsOf(commit1, c1);

  // provisioned through the gateway, on the control plane at once
  const created = await api('POST', '/v1/devices', { appId });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const uuid = created.body.uuid as string;
  assert.equal((await onServer(uuid)).status, 200);
  assert.equal((await onServer(uuid)).body.id, created.body.id, "the 201 body carries the control plane's id");

  // hooked with the commit, repeated (202) until the device reports it
  const first = await hookCalls(hooks, new RegExp(`^PUT /${uuid} `), 2);
  assert.deepEqual(hookBody(first[0]!), { commit: commit1, environment: {} });
  assert.equal((await api('PUT', `/v1/devices/${uuid}`, { is_online: true, status: 'Idle', commit: commit1 })).status, 200);
  assert.equal((await api('POST', `/v1/devices/${uuid}/logs`, { message: 'detected movement', timestamp: Math.floor(Date.now() / 1000) })).status, 202);
  const shown = await waitFor('the control plane shows the device', async () => {
    const d = (await onServer(uuid)).body;
    return d.commit === commit1 && d.is_online === true ? d : undefined;
  });
  assert.equal(shown.status, 'Idle');
  await waitFor('its log line on the control plane', async () =>
    ((await cp.call('GET', `/dependent-devices/${uuid}/logs/`)).body as Json[]).some((l) => l.message === 'detected movement'),
  );

  // a new release, then the device pinned to the older commit: hooked each time (200 now)
  const commit2 = await releaseDependent(cp, appId, c2);
  await hookCalls(hooks, new RegExp(`^PUT /${uuid} .*${commit2}`), 1);
  await assetsOf(commit2, c2);
  assert.equal((await cp.call('PATCH', `/dependent-devices/${uuid}`, { target_commit: commit1 })).status, 200);
  const pinned = await hookCalls(hooks, new RegExp(`^PUT /${uuid} `), 4);
  assert.equal((hookBody(pinned.at(-1)!) as Json).commit, commit1);
  assert.equal((await api('GET', `/v1/devices/${uuid}`)).body.targetCommit, commit1);
  await assetsOf(commit1, c1); // a pinned commit's assets stay

  // deleted on the control plane: the DELETE hook, and the gateway forgets it
  assert.equal((await cp.call('DELETE', `/dependent-devices/${uuid}`)).status, 204);
  await hookCalls(hooks, new RegExp(`^DELETE /${uuid}`), 1);
  await waitFor('the gateway forgot it', async () => (await api('GET', `/v1/devices/${uuid}`)).status === 404);

  // provisioned and deleted at once (whether or not a target listed it meanwhile): the DELETE hook too
  const brief = await api('POST', '/v1/devices', { appId });
  assert.equal(brief.status, 201);
  const gone = brief.body.uuid as string;
  assert.equal((await cp.call('DELETE', `/dependent-devices/${gone}`)).status, 204);
  await hookCalls(hooks, new RegExp(`^DELETE /${gone}`), 1);
  await waitFor('the gateway forgot the brief device', async () => (await api('GET', `/v1/devices/${gone}`)).status === 404);

  // the control plane goes away: a device is provisioned on the gateway alone, hooked, reports
  await cp.stop();
  const offline = await api('POST', '/v1/devices', { appId });
  assert.equal(offline.status, 201);
  const uuid2 = offline.body.uuid as string;
  assert.equal((await api('GET', `/v1/devices/${uuid2}`)).body.deviceId, null, 'not on the control plane yet');
  assert.deepEqual(hookBody((await hookCalls(hooks, new RegExp(`^PUT /${uuid2} `), 1))[0]!), { commit: commit2, environment: {} });
  assert.equal((await api('PUT', `/v1/devices/${uuid2}`, { is_online: true, status: 'Flashing' })).status, 200);
  assert.equal((await api('POST', `/v1/devices/${uuid2}/logs`, { message: 'flashed offline' })).status, 202);

  // the agent is killed while the hook is owed; it and the control plane come back
  await kill(gateway);
  const before = (await hooks.calls()).filter((c) => c.startsWith(`PUT /${uuid2} `)).length;
  await cp.restart();
  gateway = spawnAgent(dataDir, apiPort);
  await hookCalls(hooks, new RegExp(`^PUT /${uuid2} `), Math.max(2, before + 1));
  assert.equal((await api('PUT', `/v1/devices/${uuid2}`, { is_online: true, status: 'Idle', commit: commit2 })).status, 200);
  const synced = await waitFor('the offline device on the control plane, on the commit', async () => {
    const d = (await onServer(uuid2)).body;
    return d?.commit === commit2 && d.is_online === true ? d : undefined;
  });
  assert.equal(synced.status, 'Idle');
  const listed = (await cp.call('GET', `/dependent-devices/?app=${appId}`)).body as Json[];
  assert.deepEqual(
    listed.map((d) => d.uuid),
    [uuid2],
    'registered once (the deleted device is gone)',
  );
  await waitFor('its offline log line on the control plane', async () =>
    ((await cp.call('GET', `/dependent-devices/${uuid2}/logs/`)).body as Json[]).some((l) => l.message === 'flashed offline'),
  );
});
