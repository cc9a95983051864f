// Crash safety: the agent killed with SIGKILL at any point of an update, and the engine restarted
// during a pull, must leave a device that converges on the target with nothing lost.
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import {
  ENGINE_SCOPE,
  containersOf,
  freePort,
  converge,
  docker,
  execIn,
  freshAppId,
  image,
  removeApps,
  service,
  startAgent,
  target,
  waitFor,
} from './harness.js';

const run = promisify(execFile);

interface AgentProcess {
  child: ChildProcess;
  lines: string[];
  exited: Promise<number | null>;
}

/** One API port per data dir: the port is in the apps' environment, so a restart keeps it. */
const apiPorts = new Map<string, Promise<number>>();

async function spawnAgent(dataDir: string, targetFile: string, onLine: (msg: string, p: AgentProcess) => void = () => {}): Promise<AgentProcess> {
  if (!apiPorts.has(dataDir)) apiPorts.set(dataDir, freePort());
  const port = String(await apiPorts.get(dataDir));
  const args = [
    '-d',
    dataDir,
    '-t',
    targetFile,
    '--interval',
    '500',
    '--engine-scope',
    ENGINE_SCOPE,
    '--api-port',
    port,
    '--host-sandbox',
    path.join(dataDir, 'host'),
  ];
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/agent/main.ts', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const p: AgentProcess = { child, lines: [], exited: new Promise((r) => child.once('exit', (code) => r(code))) };
  let buf = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buf += chunk.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        const msg = (JSON.parse(line) as { msg: string }).msg;
        p.lines.push(msg);
        onLine(msg, p);
      } catch {
        p.lines.push(line);
      }
    }
  });
  return p;
}

const release = (appId: number, n: 1 | 2) =>
  target({
    [appId]: {
      releaseId: n,
      services: {
        a: service({ image: image(n === 1 ? 'v1' : 'v2') }),
        b: service({ depends_on: ['a'], environment: { RELEASE: String(n) } }),
        c: service({ image: image(n === 1 ? 'v1' : 'v2'), volumes: ['data:/data'], update_strategy: n === 2 ? 'kill-then-download' : 'download-then-kill' }),
      },
      volumes: { data: {} },
    },
  });

async function convergedOn(appId: number, n: 1 | 2): Promise<boolean> {
  const cs = await containersOf(appId);
  const v = n === 1 ? 'v1' : 'v2';
  const wanted = (
    await docker
      .getImage(image(v))
      .inspect()
      .catch(() => undefined)
  )?.Id;
  return (
    cs.length === 3 &&
    cs.every((c) => c.state === 'running' && c.releaseId <= n) &&
    cs.filter((c) => c.service !== 'b').every((c) => c.imageId === wanted) &&
    cs.some((c) => c.service === 'b' && c.releaseId === n)
  );
}

const killPoints = ['Downloading image', 'Killing service a', 'Killing service c', 'Installing service', 'Starting service', 'App \\d+ runs release 2'];

for (const point of killPoints) {
  test(`kill -9 at "${point}" during an update: a restarted agent converges, nothing lost`, async (t) => {
    const appId = freshAppId();
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-crash-'));
    const targetFile = path.join(dataDir, 'target.json');
    await docker
      .getImage(image('v2'))
      .remove({ force: true })
      .catch(() => undefined);

    await fs.writeFile(targetFile, JSON.stringify(release(appId, 1)));
    const agents: AgentProcess[] = [];
    // Agents go before their app: a live agent would recreate what the cleanup removes.
    t.after(async () => {
      for (const a of agents) a.child.kill('SIGTERM');
      await Promise.all(agents.map((a) => a.exited));
      await removeApps([appId]);
    });
    const first = await spawnAgent(dataDir, targetFile);
    agents.push(first);
    await waitFor('release 1', () => convergedOn(appId, 1), 60_000);
    first.child.kill('SIGTERM');
    await first.exited;
    const c = (await containersOf(appId)).find((x) => x.service === 'c')!;
    await execIn(c.id, ['sh', '-c', 'echo precious > /data/file']);

    await fs.writeFile(targetFile, JSON.stringify(release(appId, 2)));
    const trigger = new RegExp(`^${point}`);
    let killed = false;
    const second = await spawnAgent(dataDir, targetFile, (msg, p) => {
      if (!killed && trigger.test(msg)) {
        killed = true;
        p.child.kill('SIGKILL');
      }
    });
    agents.push(second);
    await second.exited;
    assert.ok(killed, `the agent never reached "${point}": ${second.lines.join(' | ')}`);

    const third = await spawnAgent(dataDir, targetFile);
    agents.push(third);
    await waitFor('release 2 after the crash', () => convergedOn(appId, 2), 60_000).catch(async (err: Error) => {
      const cs = await containersOf(appId);
      throw new Error(`${err.message}\ncontainers: ${JSON.stringify(cs)}\nagent log:\n${third.lines.join('\n')}`);
    });
    await waitFor(
      'the release recorded',
      async () => third.lines.some((l) => /runs release 2/.test(l)) || ((await convergedOn(appId, 2)) && point.startsWith('App')),
      30_000,
    );
    const c2 = (await containersOf(appId)).find((x) => x.service === 'c')!;
    assert.equal((await execIn(c2.id, ['cat', '/data/file'])).output.trim(), 'precious');
    const locks = await fs.readdir(path.join(dataDir, 'locks', String(appId), 'a'));
    assert.deepEqual(
      locks.filter((f) => f.endsWith('.lock')),
      [],
      'no lock files left behind',
    );
  });
}

const ownEngine = await fs.access(path.join(process.env.BOSUN_ENGINE_DIR ?? '/tmp/bosun-engine', 'dockerd.started')).then(
  () => true,
  () => false,
);

test('the engine restarted during a pull: the agent recovers and converges', {
  skip: ownEngine ? false : "the engine is not the test script's own",
}, async (t) => {
  const appId = freshAppId();
  await docker
    .getImage(image('big'))
    .remove({ force: true })
    .catch(() => undefined);
  const { agent, logs } = await startAgent(t, [appId]);
  await agent.setTarget(target({ [appId]: { services: { small: service(), large: service({ image: image('big') }) } } }), 'test');
  await agent.applyNow();
  await waitFor('the pull to start', async () => logs.some((l) => l.startsWith(`Downloading image ${image('big')}`)));
  await run('bash', ['scripts/engine.sh', 'restart-engine']);
  await converge(agent, 120_000);
  const cs = await containersOf(appId);
  assert.deepEqual(
    cs.map((c) => [c.service, c.state]),
    [
      ['large', 'running'],
      ['small', 'running'],
    ],
  );
  assert.ok(
    logs.some((l) => /Failed to download image .*big|Apply failed/.test(l)),
    'the interruption was noticed and reported',
  );
});
