// The agent as it ships: dist/bosun-agent (the launcher) running dist/agent.cjs and its chunks, the
// bundle whose stubs, lazily loaded modules and CommonJS conversion no other test goes through.
// scripts/test.sh bundles the sources before the tests run.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { controlPlane, imageName, tag } from './controlPlane.js';
import { ENGINE_SCOPE, containersOf, docker, freePort, freshAppId, registry, removeApps, service, target, waitFor } from './harness.js';

const LAUNCHER = 'dist/bosun-agent';

interface Shipped {
  child: ChildProcess;
  output: string[];
  exited: Promise<number | null>;
}

async function runShipped(t: TestContext, args: string[], env: Record<string, string> = {}): Promise<Shipped> {
  await fs.access(LAUNCHER).catch(() => assert.fail(`${LAUNCHER} is missing: scripts/test.sh bundles the agent (node scripts/bundle-agent.mjs)`));
  const child = spawn(LAUNCHER, ['--engine-scope', ENGINE_SCOPE, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const output: string[] = [];
  for (const s of [child.stdout!, child.stderr!]) s.on('data', (b: Buffer) => output.push(...b.toString().split('\n').filter(Boolean)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return { child, output, exited };
}

const withOutput = (agent: Shipped) => (err: Error) => {
  throw new Error(
    `${err.message}\n${agent.output
      .filter((l) => !l.startsWith('MODULE '))
      .slice(-20)
      .join('\n')}`,
  );
};

// (under its launcher settings)
test('the shipped agent deploys from the authenticated registry, serves the device API, and leaves apps running when stopped', async (t) => {
  const appId = freshAppId();
  t.after(() => removeApps([appId]));
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-shipped-'));
  t.after(() => fs.rm(dataDir, { recursive: true, force: true }));
  const targetFile = path.join(dataDir, 'target.json');
  await fs.writeFile(targetFile, JSON.stringify(target({ [appId]: { services: { a: service(), b: service({ depends_on: ['a'] }) } } })));
  const port = await freePort();
  const agent = await runShipped(t, ['--data-dir', dataDir, '--target', targetFile, '--api-port', String(port), '--interval', '1000']);

  const running = await waitFor(
    'both services running',
    async () => {
      const cs = await containersOf(appId);
      return cs.length === 2 && cs.every((c) => c.state === 'running') ? cs : undefined;
    },
    90_000,
  ).catch(withOutput(agent));
  assert.ok(!agent.output.some((l) => /warning/i.test(l)), `no warnings at start:\n${agent.output.join('\n')}`);
  assert.ok(!agent.output.some((l) => /Local command API/.test(l)), `the local command API is off unless asked for:\n${agent.output.join('\n')}`);

  // the launcher execs node (same pid) with its flags and glibc settings
  const pid = agent.child.pid!;
  const cmdline = (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
  for (const flag of ['--lite-mode', '--max-semi-space-size=1', '--stress-flush-code'])
    assert.ok(cmdline.includes(flag), `node runs with ${flag}: ${cmdline.join(' ')}`);
  assert.ok(
    cmdline.some((a) => a.endsWith('/dist/agent.cjs')),
    cmdline.join(' '),
  );
  assert.ok((await fs.readFile(`/proc/${pid}/environ`, 'utf8')).split('\0').includes('MALLOC_ARENA_MAX=1'));

  // the device API (fastify from its chunk, validation without Ajv)
  const api = `http://127.0.0.1:${port}`;
  assert.equal((await fetch(`${api}/v1/healthy`)).status, 200);
  const env = (await docker.getContainer(running[0]!.id).inspect()).Config.Env;
  const key = env.find((e) => e.startsWith('BALENA_SUPERVISOR_API_KEY='))!.split('=')[1]!;
  const state = await fetch(`${api}/v2/applications/state?apikey=${key}`);
  assert.equal(state.status, 200);
  assert.deepEqual(Object.keys(((await state.json()) as Record<string, { services: object }>)[`app${appId}`]!.services).sort(), ['a', 'b']);
  const bad = await fetch(`${api}/v1/restart?apikey=${key}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"appId":"x"}' });
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { message: string }).message, /appId/);

  agent.child.kill('SIGTERM');
  assert.equal(await agent.exited, 0);

  // AutoPi's local command API, when asked for, answers from the bundle too (its fastify has no schema compilers)
  const commandPort = await freePort();
  const withCommands = await runShipped(t, [
    '--data-dir',
    dataDir,
    '--target',
    targetFile,
    '--api-port',
    String(port),
    '--command-api-port',
    String(commandPort),
  ]);
  const unit = await waitFor('the local command API', async () => (await fetch(`http://127.0.0.1:${commandPort}/`).catch(() => undefined))?.status, 30_000);
  assert.equal(unit, 200, withCommands.output.join('\n'));
  withCommands.child.kill('SIGTERM');
  assert.equal(await withCommands.exited, 0);
  const after = await containersOf(appId);
  assert.equal(after.filter((c) => c.state === 'running').length, 2, 'apps keep running when the agent stops');
});

test('the shipped agent in cloud mode registers, deploys a release and ships what its service prints', async (t) => {
  const cp = await controlPlane(t);
  const reg = await cp.call('POST', '/docker/registries/', registry);
  const project = await cp.call('POST', '/docker/projects/', { name: 'shipped', default_registry: reg.body.id });
  const key = await cp.call('POST', '/provisioning-keys/', { name: 'shipped', project: project.body.id });
  assert.equal(key.status, 201);
  const appId = project.body.id as number;
  await removeApps([appId]);
  t.after(() => removeApps([appId]));
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-shipped-cloud-'));
  t.after(() => fs.rm(dataDir, { recursive: true, force: true }));
  const configFile = path.join(dataDir, 'config.json');
  await fs.writeFile(configFile, JSON.stringify({ apiEndpoint: cp.url, apiKey: key.body.key, deviceType: 'generic-amd64', appUpdatePollInterval: 5000 }));
  // NODE_DEBUG=module: node says which file each require() loads (which chunks the bundle evaluated)
  const agent = await runShipped(t, ['--data-dir', dataDir, '--api-port', String(await freePort()), '--settle-time', '1'], { NODE_DEBUG: 'module' });

  const deviceId = await waitFor(
    'registration',
    async () => (JSON.parse(await fs.readFile(configFile, 'utf8')) as { deviceId?: string }).deviceId,
    60_000,
  ).catch(withOutput(agent));
  const release = await cp.call('POST', `/docker/projects/${appId}/releases/`, {
    version: '1.0.0',
    containers: [
      {
        name: 'hello',
        image: imageName,
        tag,
        startup_parameters: { command: ['sh', '-c', "trap 'exit 0' TERM; echo hello from the shipped agent; while true; do sleep 1; done"] },
      },
    ],
  });
  assert.equal(release.status, 201, JSON.stringify(release.body));
  await waitFor(
    'the release deployed',
    async () => (await cp.call('GET', `/docker/projects/${appId}/releases/${release.body.id}/`)).body.successful_deployments?.includes(deviceId),
    90_000,
  ).catch(withOutput(agent));
  await waitFor(
    'the line on the server',
    async () => {
      const lines = (await cp.call('GET', `/dongle/devices/${deviceId}/logs/?service=hello`)).body as { message: string }[];
      return lines.some((l) => l.message === 'hello from the shipped agent');
    },
    60_000,
  ).catch(withOutput(agent));
  // its state reports (the deployment succeeded through them) list UniK's images and instances
  // without loading a provider while there are none (BENCHMARKS.md §3)
  const loaded = agent.output.filter((l) => /^MODULE \d+: load ".*\/dist\/chunks\//.test(l));
  assert.ok(
    loaded.some((l) => /\/cloud-\w+\.cjs"/.test(l)),
    `the cloud link's chunk is among the loaded ones:\n${loaded.join('\n')}`,
  );
  assert.deepEqual(
    loaded.filter((l) => /\/(dockerProvider|qemuProvider|unikApi)-\w+\.cjs"/.test(l)),
    [],
  );
});
