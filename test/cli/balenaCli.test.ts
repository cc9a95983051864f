// The proof for local-mode development with the real balena CLI (issue 7): `balena push <device>`
// builds a 2-service compose project on the device's engine and hands the agent a local target;
// `balena device logs <device>` streams what the services print; a changed project recreates only
// the changed service; livepush (no --nolive) syncs a changed file into the running container.
//
// Needs the engine and registry of scripts/engine.sh (run it through `bash scripts/test.sh
// test/cli/balenaCli.test.ts`) and the npm registry on the first run: the CLI is installed by
// scripts/balena-cli.sh into a cache folder outside the repository (about 80 s once, then instant).
// The CLI always talks to ports 48484 (agent) and 2375 (engine) of the device: both must be free.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createDocker } from '../../src/agent/engine/docker.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const project = path.join(repo, 'test/fixtures/balena-cli/project');
const docker = createDocker();
const SCOPE = `test-cli-${process.pid}`;
const DEVICE = '127.0.0.1';
const API = `http://${DEVICE}:48484`;
const BASE_IMAGE = `${process.env.BOSUN_TEST_IMAGE ?? '127.0.0.1:5123/bosun-test/app'}:base`;
const registry = {
  url: process.env.BOSUN_TEST_REGISTRY ?? '127.0.0.1:5123',
  username: process.env.BOSUN_TEST_REGISTRY_USER ?? 'bosun',
  password: process.env.BOSUN_TEST_REGISTRY_PASSWORD ?? 'bosun-test-password',
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI colour codes start with ESC
const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs: number, describe?: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}${describe ? `\n${describe()}` : ''}`);
    }
    await sleep(500);
  }
}

const portInUse = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect({ host: DEVICE, port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });

/** The environment the CLI must run with (never BALENARC_OFFLINE_MODE: push refuses to run with it). */
function cliEnv(dataDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    BALENARC_NO_ANALYTICS: '1',
    BALENARC_NO_SENTRY: '1',
    BALENARC_UNSUPPORTED: '1',
    NO_UPDATE_NOTIFIER: '1',
    BALENARC_DATA_DIRECTORY: dataDir,
  };
  delete env.BALENARC_OFFLINE_MODE;
  delete env.DEBUG;
  return env;
}

/** Runs a command to its end; its output (stdout then stderr, or with `stdoutOnly` stdout alone). */
function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs: number; stdoutOnly?: boolean }): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: repo, env: opts.env ?? process.env, timeout: opts.timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(cmd)} ${args.join(' ')} failed: ${err.message}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`));
      else resolve(opts.stdoutOnly ? stdout : stdout + stderr);
    });
  });
}

/** Runs `balena device logs` until `want` all match its output (or the timeout), then kills it. */
async function deviceLogs(balena: string, env: NodeJS.ProcessEnv, want: RegExp[], timeoutMs: number): Promise<string> {
  // balena-cli 22.5.5 ignores SIGINT/SIGTERM in `device logs` (it only stops displaying): SIGKILL its group.
  const child = spawn(balena, ['device', 'logs', DEVICE], { cwd: repo, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  try {
    await waitFor(
      `balena device logs to show ${want.map(String).join(' and ')}`,
      async () => child.exitCode === null && want.every((re) => re.test(stripAnsi(out))),
      timeoutMs,
      () => `--- balena device logs output (exit ${child.exitCode}):\n${stripAnsi(out).slice(-4000)}`,
    );
    return stripAnsi(out);
  } finally {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
    await exited;
  }
}

interface ServiceContainer {
  id: string;
  state: string;
  env: string[];
}

async function scopedServices(): Promise<Record<string, ServiceContainer>> {
  const list = await docker.listContainers({ all: true, filters: { label: [`io.bosun.scope=${SCOPE}`] } });
  const out: Record<string, ServiceContainer> = {};
  for (const c of list) {
    const name = c.Labels['io.balena.service-name'];
    if (!name) continue;
    assert.equal(out[name], undefined, `two containers for service ${name}`);
    const info = await docker.getContainer(c.Id).inspect();
    out[name] = { id: c.Id, state: c.State, env: info.Config.Env ?? [] };
  }
  return out;
}

async function pullBase(): Promise<void> {
  const stream = await docker.pull(BASE_IMAGE, { authconfig: { username: registry.username, password: registry.password, serveraddress: registry.url } });
  await new Promise<void>((resolve, reject) => docker.modem.followProgress(stream, (err) => (err ? reject(err) : resolve())));
}

async function cleanupEngine(): Promise<void> {
  const filters = { label: [`io.bosun.scope=${SCOPE}`] };
  for (const c of await docker.listContainers({ all: true, filters }))
    await docker
      .getContainer(c.Id)
      .remove({ force: true, v: true })
      .catch(() => {});
  for (const n of await docker.listNetworks({ filters }))
    await docker
      .getNetwork(n.Id)
      .remove()
      .catch(() => {});
  const vols = await docker.listVolumes({ filters }).catch(() => ({ Volumes: [] }));
  for (const v of vols.Volumes ?? [])
    await docker
      .getVolume(v.Name)
      .remove()
      .catch(() => {});
  // The CLI's images have fixed names (local_<service>); leave them if another run still uses them.
  for (const img of ['local_first', 'local_second'])
    await docker
      .getImage(img)
      .remove()
      .catch(() => {});
}

function startAgent(defer: (fn: () => Promise<unknown>) => void, dataDir: string): { child: ChildProcess; output: () => string } {
  const args = [
    '--import',
    'tsx',
    'src/agent/main.ts',
    '--data-dir',
    dataDir,
    '--local-mode',
    '--api-port',
    '48484',
    '--engine-tcp',
    '127.0.0.1:2375',
    '--engine-scope',
    SCOPE,
  ];
  const child = spawn(process.execPath, args, {
    cwd: repo,
    env: { ...process.env, BOSUN_LOG_LEVEL: process.env.BOSUN_LOG_LEVEL ?? 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const keep = (c: Buffer) => {
    lines.push(...c.toString().split('\n').filter(Boolean));
    if (lines.length > 400) lines.splice(0, lines.length - 400);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  defer(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(killer);
    }
  });
  return { child, output: () => lines.slice(-150).join('\n') };
}

test('balena push to a Bosun device in local mode: builds, runs, logs, recreates only what changed, and livepushes a file change', {
  timeout: 20 * 60_000,
}, async (t) => {
  // Clean-ups run last-registered first (the agent stops before its containers and files go).
  const cleanups: (() => Promise<unknown>)[] = [];
  const defer = (fn: () => Promise<unknown>) => cleanups.unshift(fn);
  t.after(async () => {
    for (const fn of cleanups) await fn().catch((err: unknown) => t.diagnostic(`cleanup: ${String(err)}`));
  });

  // 1. The real CLI, installed once into the cache.
  // the script prints the CLI's path on stdout (its progress, on a first install, goes to stderr)
  const balena = (await run('bash', ['scripts/balena-cli.sh'], { timeoutMs: 15 * 60_000, stdoutOnly: true })).trim();
  await fs.access(balena);
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-cli-'));
  defer(() => fs.rm(tmp, { recursive: true, force: true }));
  const env = cliEnv(path.join(tmp, 'balenarc'));
  assert.match(await run(balena, ['version'], { env, timeoutMs: 60_000 }), /^22\.5\.5\b/m);

  for (const port of [48484, 2375]) {
    assert.equal(await portInUse(port), false, `port ${port} is in use: the balena CLI always talks to the device on 48484 and 2375; stop what listens there`);
  }

  // The Dockerfiles build FROM the test base image: have it on the engine (builds run with
  // pull=false), and give the CLI the registry credentials in case it has to be pulled again.
  await pullBase();
  const secrets = path.join(tmp, 'registry-secrets.yml');
  await fs.writeFile(secrets, `'${registry.url}':\n  username: ${registry.username}\n  password: ${registry.password}\n`);

  defer(cleanupEngine);

  // 2. The agent, in local mode, with the engine exposed on 2375 for the CLI.
  const dataDir = path.join(tmp, 'data');
  await fs.mkdir(dataDir);
  const agent = startAgent(defer, dataDir);
  const agentLog = () => `--- agent output (last lines):\n${agent.output()}`;
  await waitFor(
    'the agent to answer GET /ping',
    async () => {
      if (agent.child.exitCode !== null) throw new Error(`agent exited with ${agent.child.exitCode}\n${agentLog()}`);
      const res = await fetch(`${API}/ping`);
      return res.status === 200 && (await res.text()) === 'OK';
    },
    90_000,
    agentLog,
  );
  await waitFor('the engine on 127.0.0.1:2375', async () => (await fetch(`http://${DEVICE}:2375/_ping`)).ok, 30_000, agentLog);

  // 3. balena push --nolive --detached: builds on the engine, POSTs the local target, exits.
  const push = async (source: string) => {
    try {
      return await run(balena, ['push', DEVICE, '--source', source, '--nolive', '--detached', '--registry-secrets', secrets], { env, timeoutMs: 10 * 60_000 });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${agentLog()}`);
    }
  };
  const firstPush = stripAnsi(await push(project));
  assert.match(firstPush, /Successfully tagged local_first:latest/);
  assert.match(firstPush, /Successfully tagged local_second:latest/);

  const running = (pred: (s: Record<string, ServiceContainer>) => boolean) => async () => {
    const s = await scopedServices();
    return s.first?.state === 'running' && s.second?.state === 'running' && pred(s) ? s : undefined;
  };
  const before = await waitFor(
    'both services running',
    running(() => true),
    180_000,
    agentLog,
  );
  assert.deepEqual(Object.keys(before).sort(), ['first', 'second']);
  assert.ok(before.first!.env.includes('GREETING=hello from first'), before.first!.env.join('\n'));
  assert.ok(before.second!.env.includes('FIRST_URL=http://first:80/'), before.second!.env.join('\n'));
  assert.ok(before.second!.env.includes('SECOND_MESSAGE=second says hi'), before.second!.env.join('\n'));

  // 4. balena device logs: lines of both services; second reached first by name.
  const logs = await deviceLogs(
    balena,
    env,
    [/\[first\] first: GREETING=hello from first tick=\d+/, /\[second\] second: SECOND_MESSAGE=second says hi got from first: hello from first/],
    120_000,
  );
  assert.match(logs, /Streaming logs/);

  // 5. A changed project (second's environment): push again; only `second` is recreated.
  const changed = path.join(tmp, 'project');
  await fs.cp(project, changed, { recursive: true });
  const compose = path.join(changed, 'docker-compose.yml');
  const original = await fs.readFile(compose, 'utf8');
  const edited = original.replace('SECOND_MESSAGE: second says hi', 'SECOND_MESSAGE: second says bye');
  assert.notEqual(edited, original);
  await fs.writeFile(compose, edited);
  await push(changed);

  const after = await waitFor(
    'second recreated with the new environment',
    running((s) => s.second!.id !== before.second!.id && s.second!.env.includes('SECOND_MESSAGE=second says bye')),
    180_000,
    agentLog,
  );
  await deviceLogs(balena, env, [/\[second\] second: SECOND_MESSAGE=second says bye got from first: hello from first/], 120_000);
  // Settled: first was never touched, second is the new container, nothing else is there.
  const settled = await scopedServices();
  assert.deepEqual(Object.keys(settled).sort(), ['first', 'second']);
  assert.equal(settled.first!.id, before.first!.id, 'first must not be recreated');
  assert.equal(settled.first!.state, 'running');
  assert.equal(settled.second!.id, after.second!.id);
  assert.ok(settled.first!.env.includes('GREETING=hello from first'));

  // 6. Livepush (no --nolive, not detached: in detached mode the CLI ends once livepush is set up):
  // it waits for /v2/state/status to settle, then syncs a changed source file into the running
  // container over the engine port and restarts it, while it streams the device's logs.
  const live = spawn(balena, ['push', DEVICE, '--source', changed, '--registry-secrets', secrets], {
    cwd: repo,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let liveOut = '';
  live.stdout.on('data', (c: Buffer) => (liveOut += c.toString()));
  live.stderr.on('data', (c: Buffer) => (liveOut += c.toString()));
  const liveExited = new Promise<void>((resolve) => live.on('close', () => resolve()));
  defer(async () => {
    try {
      process.kill(-live.pid!, 'SIGKILL'); // live mode never exits by itself
    } catch {
      /* already gone */
    }
    await liveExited;
  });
  const liveLog = () => `--- balena push (live) output:\n${stripAnsi(liveOut).slice(-4000)}\n${agentLog()}`;
  await waitFor('livepush to see the device settled', async () => /Device state settled/.test(stripAnsi(liveOut)), 300_000, liveLog);
  const script = path.join(changed, 'first', 'start.sh');
  await fs.writeFile(script, (await fs.readFile(script, 'utf8')).replace('echo "first: ', 'echo "first-live: '));
  await waitFor('livepush to restart first with the new script', async () => /\[first\] Restarting service/.test(stripAnsi(liveOut)), 120_000, liveLog);
  await waitFor('the new script to run', async () => /\[first\] first-live: GREETING=hello from first tick=\d+/.test(stripAnsi(liveOut)), 60_000, liveLog);
  assert.equal((await scopedServices()).first!.id, before.first!.id, 'livepush updates the running container in place');
});
