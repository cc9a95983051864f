// Shared set-up for integration tests: a real engine and registry (scripts/engine.sh), an agent
// per test with its own data dir, unique app ids per test, and cleanup of what each test made.
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { TestContext } from 'node:test';
import { Agent, type AgentOptions } from '../../src/agent/agent.js';
import { createDocker } from '../../src/agent/engine/docker.js';
import { EventLog } from '../../src/agent/eventLog.js';
import type { ServiceTarget, TargetState } from '../../src/shared/targetState.js';

function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run integration tests through \`npm test\` (scripts/engine.sh)`);
  return v;
}

export const registry = {
  url: need('BOSUN_TEST_REGISTRY'),
  username: need('BOSUN_TEST_REGISTRY_USER'),
  password: need('BOSUN_TEST_REGISTRY_PASSWORD'),
};
export const image = (tag: 'v1' | 'v2' | 'base' | 'big') => `${need('BOSUN_TEST_IMAGE')}:${tag}`;
export const docker = createDocker();

/** A service on the test image; its default command idles and exits at once on SIGTERM. */
export const service = (overrides: Partial<ServiceTarget> = {}): ServiceTarget => ({ image: image('v1'), ...overrides });

export interface AppSpec {
  name?: string;
  releaseId?: number;
  commit?: string;
  services: Record<string, ServiceTarget>;
  volumes?: TargetState['apps'][string]['release']['volumes'];
  networks?: TargetState['apps'][string]['release']['networks'];
}

export function target(apps: Record<number, AppSpec>, extra: Partial<TargetState> = {}): TargetState {
  return {
    registries: { local: registry },
    ...extra,
    apps: Object.fromEntries(
      Object.entries(apps).map(([id, a]) => [
        id,
        {
          name: a.name ?? `app${id}`,
          release: {
            id: a.releaseId ?? 1,
            commit: a.commit ?? `commit${a.releaseId ?? 1}`,
            services: a.services,
            ...(a.volumes ? { volumes: a.volumes } : {}),
            ...(a.networks ? { networks: a.networks } : {}),
          },
        },
      ]),
    ),
  };
}

/** Agents of this test process own only what they created: other test runs and benches share the engine. */
export const ENGINE_SCOPE = `test-${process.pid}`;

/**
 * What test and bench runs that were killed left on the shared engine (their scope names a process
 * that is gone) is removed once per test file: a leftover container would keep images in use and
 * app ids taken for every later run.
 */
async function removeStaleScopes(): Promise<void> {
  const stale = (labels: Record<string, string> | undefined) => {
    const pid = Number(labels?.['io.bosun.scope']?.match(/^(?:test|bench)[a-z-]*-(\d+)$/)?.[1]);
    if (!pid) return false;
    try {
      process.kill(pid, 0);
      return false;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ESRCH';
    }
  };
  const filters = { label: ['io.bosun.scope'] };
  for (const c of await docker.listContainers({ all: true, filters }))
    if (stale(c.Labels))
      await docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined);
  for (const n of await docker.listNetworks({ filters }))
    if (stale(n.Labels))
      await docker
        .getNetwork(n.Id)
        .remove()
        .catch(() => undefined);
  for (const v of (await docker.listVolumes({ filters })).Volumes ?? [])
    if (stale(v.Labels))
      await docker
        .getVolume(v.Name)
        .remove()
        .catch(() => undefined);
}
await removeStaleScopes();

/** App ids unique per test file run, so tests never see each other's containers. */
let nextAppId = 1000 + (process.pid % 5000) * 10;
export const freshAppId = () => nextAppId++;

export interface TestAgent {
  agent: Agent;
  dataDir: string;
  logs: string[];
}

export function captureLog(): { log: EventLog; logs: string[] } {
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push((JSON.parse(line) as { msg: string }).msg);
      cb();
    },
  });
  return { log: new EventLog('debug', sink), logs };
}

const apiPorts = new Map<string, number>();

/** A TCP port that was free a moment ago, for agents run as child processes. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface Cleanup {
  agents: Agent[];
  appIds: Set<number>;
}
const cleanups = new WeakMap<TestContext, Cleanup>();

/**
 * An in-process agent with its own data dir. When the test ends, all its agents stop first and
 * only then are the apps removed: a live agent would recreate them.
 */
export async function startAgent(t: TestContext, appIds: number[], opts: Partial<AgentOptions> = {}): Promise<TestAgent> {
  let cleanup = cleanups.get(t);
  if (!cleanup) {
    const c: Cleanup = { agents: [], appIds: new Set() };
    cleanups.set(t, c);
    t.after(async () => {
      await Promise.all(c.agents.map((a) => a.stop()));
      await removeApps([...c.appIds]);
      await Promise.all(c.agents.map((a) => fs.rm(a.opts.dataDir, { recursive: true, force: true })));
    });
    cleanup = c;
  }
  for (const id of appIds) cleanup.appIds.add(id);
  const dataDir = opts.dataDir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-agent-')));
  const { log, logs } = captureLog();
  // The device API on a free port, all interfaces (containers reach it at their network's gateway);
  // an agent restarted on the same data dir keeps its port, as a device does (the port is in the apps' env).
  // (a release counts as deployed once its services ran 1 s without a restart: tests need not wait 30 s)
  const agent = new Agent({ dataDir, intervalMs: 500, log, engineScope: ENGINE_SCOPE, apiPort: apiPorts.get(dataDir) ?? 0, settleMs: 1000, ...opts });
  cleanup.agents.push(agent);
  await agent.start();
  const port = agent.apiPort();
  if (port) apiPorts.set(dataDir, port);
  return { agent, dataDir, logs };
}

/** Applies until the engine matches the target; fails with the agent's view if it does not. */
export async function converge(agent: Agent, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await agent.applyNow()) === 'converged') return;
    await sleep(200);
  }
  throw new Error(`did not converge: ${agent.reconciler.status.waitReasons.join('; ')} ${JSON.stringify(await agent.currentState())}`);
}

export interface TestContainer {
  id: string;
  service: string;
  state: string;
  imageId: string;
  releaseId: number;
  created: number;
}

/** This process's engine objects of an app (app ids of separate control planes repeat across test runs). */
const ofApp = (appId: number) => ({ label: [`io.balena.app-id=${appId}`, `io.bosun.scope=${ENGINE_SCOPE}`] });

export async function containersOf(appId: number): Promise<TestContainer[]> {
  const list = await docker.listContainers({ all: true, filters: ofApp(appId) });
  return list
    .map((c) => ({
      id: c.Id,
      service: c.Labels['io.balena.service-name']!,
      state: c.State,
      imageId: c.ImageID,
      releaseId: Number(c.Labels['io.bosun.release-id']),
      created: c.Created,
    }))
    .sort((a, b) => a.service.localeCompare(b.service));
}

export async function execIn(containerId: string, cmd: string[]): Promise<{ exitCode: number; output: string }> {
  const exec = await docker.getContainer(containerId).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  const info = await exec.inspect();
  return { exitCode: info.ExitCode ?? -1, output: demux(Buffer.concat(chunks)) };
}

/** The engine multiplexes stdout/stderr with 8-byte frame headers. */
function demux(buf: Buffer): string {
  let out = '';
  for (let i = 0; i + 8 <= buf.length; ) {
    const size = buf.readUInt32BE(i + 4);
    out += buf.subarray(i + 8, i + 8 + size).toString();
    i += 8 + size;
  }
  return out;
}

/** Puts a test image on the engine (for containers tests create themselves, outside any agent). */
export async function pullTestImage(ref: string): Promise<void> {
  if (await imagePresent(ref)) return;
  const stream = await docker.pull(ref, { authconfig: { username: registry.username, password: registry.password, serveraddress: registry.url } });
  await new Promise((resolve, reject) => docker.modem.followProgress(stream, (err) => (err ? reject(err) : resolve(undefined))));
}

/** Drops the engine's copy of a test image so the agent has to pull it. */
export const forgetImage = (ref: string) =>
  docker
    .getImage(ref)
    .remove({ force: true })
    .then(
      () => undefined,
      () => undefined,
    );
export const imagePresent = (ref: string) =>
  docker
    .getImage(ref)
    .inspect()
    .then(
      () => true,
      () => false,
    );

export async function removeApps(appIds: number[]): Promise<void> {
  for (const appId of appIds) {
    const filters = ofApp(appId);
    for (const c of await docker.listContainers({ all: true, filters })) {
      await docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined);
    }
    for (const n of await docker.listNetworks({ filters }))
      await docker
        .getNetwork(n.Id)
        .remove()
        .catch(() => undefined);
    for (const v of (await docker.listVolumes({ filters })).Volumes ?? [])
      await docker
        .getVolume(v.Name)
        .remove()
        .catch(() => undefined);
  }
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
