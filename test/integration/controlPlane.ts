// A control plane (in-process, SQLite) for end-to-end tests, and devices provisioned on it: each
// test gets its own server, registry entry, project and a real agent in cloud mode on the test engine.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import type { AgentOptions } from '../../src/agent/agent.js';
import { openServer, type Server } from '../../src/server/server.js';
import { registry, removeApps, startAgent, waitFor, type TestAgent } from './harness.js';

export interface ControlPlane {
  server: Server;
  url: string;
  dataDir: string;
  call: (method: string, url: string, body?: unknown) => Promise<{ status: number; body: any }>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** A release's deployment on one device, as the operator API lists it. */
export interface Deployment {
  device: string;
  state: string;
  error: string | null;
  finished_at: string | null;
}

export async function deploymentOf(cp: ControlPlane, projectId: number, releaseId: number, deviceId: string): Promise<Deployment | undefined> {
  const deployments = (await cp.call('GET', `/docker/projects/${projectId}/releases/${releaseId}/deployments/`)).body as Deployment[];
  return deployments.find((d) => d.device === deviceId);
}

/** Waits until the release's deployment on the device has failed; that deployment (its `error` says why). */
export function deploymentFailed(cp: ControlPlane, projectId: number, releaseId: number, deviceId: string): Promise<Deployment> {
  return waitFor(
    `release ${releaseId} failed`,
    async () => {
      const d = await deploymentOf(cp, projectId, releaseId, deviceId);
      return d?.state === 'failed' ? d : undefined;
    },
    90_000,
  );
}

/** The control plane on SQLite, on its own port; `restart` brings it back on the same port and data. */
export async function controlPlane(t: TestContext): Promise<ControlPlane & { stop(): Promise<void>; restart(): Promise<void> }> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-cp-'));
  let server = await openServer({ dataDir });
  const token = server.firstAdminToken!;
  const url = await server.app.listen({ port: 0, host: '127.0.0.1' });
  let running = true;
  const stop = async () => {
    if (running) await server.close();
    running = false;
  };
  t.after(async () => {
    await stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  });
  const call = async (method: string, u: string, body?: unknown) => {
    const res = await fetch(`${url}${u}`, {
      method,
      headers: { authorization: `APIToken ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
  };
  const restart = async () => {
    server = await openServer({ dataDir });
    await server.app.listen({ port: Number(new URL(url).port), host: '127.0.0.1' });
    running = true;
  };
  return {
    get server() {
      return server;
    },
    url,
    dataDir,
    call,
    stop,
    restart,
  };
}

/** A registry, a project and a provisioning key on the control plane; a new device's agent provisioned with it. */
export async function provisionedDevice(
  t: TestContext,
  cp: ControlPlane,
  name: string,
  config: Record<string, unknown> = {},
  agentOptions: Partial<AgentOptions> = {},
): Promise<TestAgent & { appId: number; dataDir: string; deviceId: () => Promise<string> }> {
  const { call } = cp;
  const reg = await call('POST', '/docker/registries/', { url: registry.url, username: registry.username, password: registry.password });
  assert.equal(reg.status, 201);
  const project = await call('POST', '/docker/projects/', { name, default_registry: reg.body.id });
  const key = await call('POST', '/provisioning-keys/', { name, project: project.body.id });
  assert.equal(key.status, 201);
  // A new device: config.json with the endpoint and the provisioning key, as a balena image has.
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-agent-'));
  await fs.writeFile(path.join(dataDir, 'config.json'), JSON.stringify({ apiEndpoint: cp.url, apiKey: key.body.key, deviceType: 'generic-amd64', ...config }));
  const appId = project.body.id as number;
  // app ids are the server's project ids (small numbers): clear what an interrupted earlier run left
  await removeApps([appId]);
  t.after(() => removeApps([appId]));
  const started = await startAgent(t, [], { ...agentOptions, dataDir });
  const deviceId = async () =>
    (
      await waitFor('registration', async () => {
        const c = JSON.parse(await fs.readFile(path.join(dataDir, 'config.json'), 'utf8')) as { deviceApiKey?: string; deviceId?: string; apiKey?: string };
        return c.deviceApiKey ? c : undefined;
      })
    ).deviceId!;
  return { ...started, appId, dataDir, deviceId };
}

/** The test image as a release names it: repository (without the registry host) and tag. */
export const [repository, tag] = ((ref: string) => [ref.slice(0, ref.lastIndexOf(':')), ref.slice(ref.lastIndexOf(':') + 1)])(
  `${process.env.BOSUN_TEST_IMAGE ?? ''}:v1`,
);
/** the test image's repository without the registry host: the release names the registry */
export const imageName = repository!.slice(repository!.indexOf('/') + 1);
