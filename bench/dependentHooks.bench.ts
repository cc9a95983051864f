// A dependent device's change, from the operator to the gateway app's hook: a real Bosun server (in
// this process, SQLite) and a real agent in cloud mode (in this process, on the engine) whose
// gateway app's release sets BALENA_DEPENDENT_DEVICES_HOOK_ADDRESS to a hook server of this process
// (answering 200). A dependent app's release (the test image: pulled, never run) and one dependent
// device provisioned through the gateway. Then CHANGES times: `PATCH /dependent-devices/{uuid}` a new
// environment; per change, three instants: the PATCH sent, the target carrying it handed to the
// agent by its long poll (Agent.setTarget, wrapped), and the hook's arrival at the hook server.
// Figures: the long-poll wake (PATCH → target received: the control plane's side, the baseline of
// the same run) and target received → hook received (the gateway's side), median and max.
//
// Knobs: BENCH_DH_CHANGES (20).
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { openServer } from '../src/server/server.js';
import { ensureImage, IMAGE, intEnv, log, onCleanup, percentile, registry, removeApp, round, runBench, startAgent, waitFor } from './lib.js';

const CHANGES = intEnv('BENCH_DH_CHANGES', 20);
const WARMUP = 2;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const stats = (xs: number[]) => ({ n: xs.length, medianMs: round(percentile(xs, 50), 1), maxMs: round(Math.max(...xs), 1) });

async function hookServer() {
  const arrivals = new Map<string, number>();
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      const at = performance.now();
      const n = (JSON.parse(body || '{}') as { environment?: { N?: string } }).environment?.N;
      if (n !== undefined && !arrivals.has(n)) arrivals.set(n, at);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(() => new Promise((r) => server.close(r)));
  return { arrivals, address: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/devices/` };
}

async function controlPlane() {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-bench-cp-'));
  const server = await openServer({ dataDir });
  const url = await server.app.listen({ port: 0, host: '127.0.0.1' });
  onCleanup(async () => {
    await server.close();
    await fs.rm(dataDir, { recursive: true, force: true });
  });
  const call = async (method: string, u: string, body?: unknown): Promise<{ status: number; body: Json }> => {
    const res = await fetch(`${url}${u}`, {
      method,
      headers: { authorization: `APIToken ${server.firstAdminToken!}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${u}: ${res.status} ${text}`);
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  return { url, call };
}

await runBench('dependentHooks', async () => {
  await ensureImage();
  const hooks = await hookServer();
  const cp = await controlPlane();
  const [repo, tag] = [IMAGE.slice(registry.url.length + 1, IMAGE.lastIndexOf(':')), IMAGE.slice(IMAGE.lastIndexOf(':') + 1)];
  const reg = (await cp.call('POST', '/docker/registries/', { url: registry.url, username: registry.username, password: registry.password })).body;
  const project = (await cp.call('POST', '/docker/projects/', { name: 'gateway', default_registry: reg.id })).body.id as number;
  const key = (await cp.call('POST', '/provisioning-keys/', { name: 'gw', project })).body.key as string;
  const env = { BALENA_DEPENDENT_DEVICES_HOOK_ADDRESS: hooks.address };
  await cp.call('POST', `/docker/projects/${project}/releases/`, {
    version: '1.0.0',
    containers: [{ name: 'hooks', image: repo, tag, startup_parameters: { environment: env } }],
  });
  const appId = (await cp.call('POST', `/docker/projects/${project}/dependent-apps/`, { name: 'edge', device_type: 'esp32' })).body.id as number;
  await cp.call('POST', `/docker/dependent-apps/${appId}/releases/`, { image: repo, tag });

  const configPath = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-bench-config-')), 'config.json');
  onCleanup(() => fs.rm(path.dirname(configPath), { recursive: true, force: true }));
  await fs.writeFile(configPath, JSON.stringify({ apiEndpoint: cp.url, apiKey: key, deviceType: 'generic-amd64' }));
  const gw = await startAgent({ configPath });
  onCleanup(() => removeApp(project, `bench-${process.pid}`));
  // the instant each target reaches the agent from its long poll
  const received: { at: number; input: unknown }[] = [];
  const setTarget = gw.agent.setTarget.bind(gw.agent);
  gw.agent.setTarget = (input, source, force) => {
    if (source === 'cloud') received.push({ at: performance.now(), input });
    return setTarget(input, source, force);
  };
  await waitFor('the dependent app in the target', async () => gw.agent.getTarget()?.dependent?.apps[String(appId)], 120_000);
  const { uuid } = await (await gw.agent.dependents()).provision({ kind: 'device' }, appId, undefined);
  await waitFor('the device in the target', async () => gw.agent.getTarget()?.dependent?.devices[uuid], 60_000);

  const wake: number[] = [];
  const hook: number[] = [];
  const total: number[] = [];
  for (let i = 0; i < WARMUP + CHANGES; i++) {
    const n = String(i);
    const sent = performance.now();
    await cp.call('PATCH', `/dependent-devices/${uuid}`, { environment: { N: n } });
    const hooked = await waitFor(`the hook of change ${i}`, async () => hooks.arrivals.get(n), 30_000, 5);
    const got = received.find((r) => r.at >= sent && (r.input as Json)?.dependent?.devices?.[uuid]?.environment?.N === n);
    if (!got) throw new Error(`change ${i}: no target carrying it was seen`);
    if (i < WARMUP) continue;
    wake.push(got.at - sent);
    hook.push(hooked - got.at);
    total.push(hooked - sent);
    log(`change ${i}: wake ${round(got.at - sent, 1)} ms, hook ${round(hooked - got.at, 1)} ms`);
  }
  return {
    changes: CHANGES,
    longPollWake: stats(wake),
    targetToHook: stats(hook),
    patchToHook: stats(total),
  };
});
