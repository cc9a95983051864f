// Agent memory: the bundled agent (dist/agent.cjs, `npm run build`) as a child process supervising
// 10 services of the test image, under several V8 flag sets; baselines: a bare node process and
// the unbundled agent (tsx). Each variant gets its own data dir, target file and app id; we wait
// until its 10 containers run, let it idle, and sample VmRSS from /proc/<pid>/status every second
// from spawn to the end of the idle period. Reported: max RSS (whole run, deploy included),
// max during the idle period, final RSS and VmHWM (the kernel's peak, between samples too).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import {
  bosunTarget,
  countRunning,
  ensureImage,
  freshAppId,
  IMAGE,
  intEnv,
  log,
  onCleanup,
  readRss,
  type Rss,
  registry,
  removeApp,
  round,
  runBench,
  serviceName,
  sleep,
  tempDir,
} from './lib.js';

const SERVICES = 10;
const IDLE_S = intEnv('BENCH_RSS_IDLE_S', 20);
const GOAL_MB = 50;
/** BENCH_RSS_TRACE=1: log each run's samples (when the idle RSS moves, not just where it ends) */
const TRACE = !!process.env.BENCH_RSS_TRACE;
const BUNDLE = 'dist/agent.cjs';
/** whether this build of the agent has the device API (and so `--api-port`) */
const API_PORT_OPTION = fs.existsSync(BUNDLE) && execFileSync(process.execPath, [BUNDLE, '--help'], { encoding: 'utf8' }).includes('--api-port');

interface Variant {
  name: string;
  /** what runs: node (the default) or the shipped launcher */
  command?: string;
  /** node flags, then the script and its arguments (after data dir / target are known); for the launcher, the agent's arguments */
  args: (dataDir: string, target: string) => string[];
  agent: boolean;
  /** an app polls the device API (`GET /v1/healthy` every second) while the agent idles */
  apiInUse?: boolean;
  /** measured after a restart on the data dir of a first run that deployed the services (a device's every later boot) */
  restarted?: boolean;
  /** cloud mode: provisioned into a control plane in this process, which deploys the services as a release */
  cloud?: boolean;
}

// `--api-port 0`: the device API binds a free port (its listener is part of what is measured; the
// default 48484 may be taken by another agent on this machine).
const SCOPE = `bench-rss-${process.pid}`;
const agentArgs = (dataDir: string, target: string) => [
  '--data-dir',
  dataDir,
  '--target',
  target,
  '--engine-scope',
  SCOPE,
  ...(API_PORT_OPTION ? ['--api-port', '0'] : []),
];
const bundled =
  (flags: string[]): Variant['args'] =>
  (d, t) => [...flags, BUNDLE, ...agentArgs(d, t)];
const LITE = ['--lite-mode', '--max-semi-space-size=1'];
/**
 * The launcher devices run (`dist/bosun-agent`, which execs node: same pid): what ships is measured,
 * its node flags and malloc settings included. Named after what it sets, read from it.
 */
const LAUNCHER = 'dist/bosun-agent';
const launcherText = fs.existsSync(LAUNCHER) ? fs.readFileSync(LAUNCHER, 'utf8') : '';
const SHIPPED_FLAGS = launcherText.match(/^exec "\$\{BOSUN_NODE:-node\}" (.*) "\$here\/agent\.cjs"/m)?.[1] ?? '';
const SHIPPED_ENV = [...launcherText.matchAll(/^export (\w+)=\$\{\w+:-([^}]*)\}/gm)].map((m) => `${m[1]}=${m[2]}`).join(' ');
const shippedName = `shipped (${[SHIPPED_ENV, SHIPPED_FLAGS].filter(Boolean).join(' ')})`;
const shipped = (agentArgs: Variant['args']): Pick<Variant, 'command' | 'args'> => ({ command: LAUNCHER, args: agentArgs });

/** cloud mode: no target file; config.json names the control plane */
const cloudArgs: Variant['args'] = (d) => ['--data-dir', d, '--engine-scope', SCOPE, '--api-port', '0'];

const VARIANTS: Variant[] = [
  { name: 'bundled', args: bundled([]), agent: true },
  { name: 'bundled --max-semi-space-size=1', args: bundled(['--max-semi-space-size=1']), agent: true },
  {
    name: 'bundled --max-semi-space-size=1 --max-old-space-size=32',
    args: bundled(['--max-semi-space-size=1', '--max-old-space-size=32']),
    agent: true,
  },
  // the previous recommendation: no optimising compiler (the agent mostly waits), small young generation
  { name: `bundled ${LITE.join(' ')}`, args: bundled(LITE), agent: true },
  // what devices run: the launcher's flags (the above, and code flushing)
  { name: shippedName, ...shipped(agentArgs), agent: true },
  {
    // a device's every boot after its first: the database exists (no migrations), so do its keys and containers
    name: `${shippedName}, restarted`,
    ...shipped(agentArgs),
    agent: true,
    restarted: true,
  },
  {
    // a device as it runs in the field: following its control plane, shipping its services' logs
    name: `${shippedName}, cloud mode`,
    ...shipped(cloudArgs),
    agent: true,
    cloud: true,
  },
  {
    // what an app that health-checks the agent costs: the device API (fastify) is loaded on its first request
    name: `${shippedName}, device API polled`,
    ...shipped(agentArgs),
    agent: true,
    apiInUse: true,
  },
  { name: 'unbundled (node --import tsx src/agent/main.ts)', args: (d, t) => ['--import', 'tsx', 'src/agent/main.ts', ...agentArgs(d, t)], agent: true },
];
// BENCH_RSS_EXTRA="--jitless;--lite-mode --max-semi-space-size=1": more flag sets for the bundle
for (const flags of (process.env.BENCH_RSS_EXTRA ?? '')
  .split(';')
  .map((f) => f.trim())
  .filter(Boolean)) {
  VARIANTS.push({ name: `bundled ${flags}`, args: bundled(flags.split(/\s+/)), agent: true });
}
// BENCH_RSS_COMPARE=dir/bosun-agent: another build's launcher (say, the previous commit's), with a target file and in cloud mode
for (const launcher of (process.env.BENCH_RSS_COMPARE ?? '')
  .split(';')
  .map((f) => f.trim())
  .filter(Boolean)) {
  VARIANTS.push({ name: launcher, command: launcher, args: agentArgs, agent: true });
  VARIANTS.push({ name: `${launcher}, cloud mode`, command: launcher, args: cloudArgs, agent: true, cloud: true });
}
// BENCH_RSS_ONLY="shipped;lite-mode": only the variants whose name contains one of these (the bare-node baseline always runs)
const only = (process.env.BENCH_RSS_ONLY ?? '')
  .split(';')
  .map((f) => f.trim())
  .filter(Boolean);
if (only.length) VARIANTS.splice(0, VARIANTS.length, ...VARIANTS.filter((v) => only.some((o) => v.name.includes(o))));
/**
 * BENCH_RSS_CHECK_MB: the short form CI runs (`npm run bench:rss-check`): only what ships, on a
 * fresh data dir, no baseline; the bench fails when the agent's idle RSS (final) is above this.
 */
const CHECK_MB = process.env.BENCH_RSS_CHECK_MB ? Number(process.env.BENCH_RSS_CHECK_MB) : undefined;
if (CHECK_MB !== undefined) VARIANTS.splice(0, VARIANTS.length, ...VARIANTS.filter((v) => v.name === shippedName));
const BARE: Variant = { name: 'bare node (setInterval)', args: () => ['-e', 'setInterval(() => {}, 1000)'], agent: false };

interface Measured {
  variant: string;
  ok: boolean;
  error?: string;
  /** seconds from spawn until the 10 containers ran */
  convergedS?: number;
  maxMb: number;
  idleMaxMb: number;
  finalMb: number;
  hwmMb: number;
  /** at the end: the process's own memory (RssAnon) and file-backed pages (RssFile, mostly the node binary) */
  finalAnonMb: number;
  finalFileMb: number;
  samples: number;
  /** BENCH_RSS_TRACE=1: every sample, `seconds:MB` */
  trace?: string;
}

async function stopChild(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  const code = await Promise.race([exited, sleep(10_000).then(() => 'timeout' as const)]);
  if (code !== 'timeout') return code;
  child.kill('SIGKILL');
  return exited;
}

/**
 * Cloud mode: a control plane in this process (its memory is not measured) with the test registry,
 * a project and a provisioning key in the agent's config.json; `release()` deploys the services.
 */
async function controlPlane(dir: string, dataDir: string) {
  const { openServer } = await import('../src/server/server.js');
  const server = await openServer({ dataDir: path.join(dir, 'server') });
  const url = await server.app.listen({ port: 0, host: '127.0.0.1' });
  const call = async (u: string, body: unknown) => {
    const res = await server.app.inject({ method: 'POST', url: u, headers: { authorization: `APIToken ${server.firstAdminToken}` }, payload: body as object });
    if (res.statusCode >= 300) throw new Error(`POST ${u}: ${res.statusCode} ${res.body}`);
    return JSON.parse(res.body) as { id: number; key: string };
  };
  const reg = await call('/docker/registries/', registry);
  const project = await call('/docker/projects/', { name: 'rss', default_registry: reg.id });
  const key = await call('/provisioning-keys/', { name: 'rss', project: project.id });
  await fsp.writeFile(path.join(dataDir, 'config.json'), JSON.stringify({ apiEndpoint: url, apiKey: key.key, deviceType: 'generic-amd64' }));
  const [image, tag] = IMAGE.slice(registry.url.length + 1).split(':');
  const containers = Array.from({ length: SERVICES }, (_, i) => ({ name: serviceName(i + 1), image, tag }));
  return {
    appId: project.id,
    release: () => call(`/docker/projects/${project.id}/releases/`, { version: '1', containers }),
    close: () => server.close(),
  };
}

async function measure(v: Variant, root: string): Promise<Measured> {
  const dir = path.join(root, v.name.replace(/[^a-z0-9]+/gi, '-'));
  const dataDir = path.join(dir, 'data');
  const targetFile = path.join(dir, 'target.json');
  await fsp.mkdir(dataDir, { recursive: true });
  const cloud = v.cloud ? await controlPlane(dir, dataDir) : undefined;
  const undoCloud = cloud ? onCleanup(cloud.close) : undefined;
  const appId = cloud?.appId ?? (v.agent ? freshAppId() : 0);
  if (v.agent && !cloud) await fsp.writeFile(targetFile, JSON.stringify(bosunTarget(appId, SERVICES), null, 2));
  // app ids of a control plane repeat (project 1): the engine scope tells this run's containers apart
  const label = [`io.balena.app-id=${appId}`, `io.bosun.scope=${SCOPE}`];
  const spawnAgent = () => {
    const out = fs.openSync(path.join(dir, 'agent.log'), 'w');
    const child = spawn(v.command ?? process.execPath, v.args(dataDir, targetFile), {
      stdio: ['ignore', out, out],
      env: { ...process.env, BOSUN_LOG_LEVEL: 'info' },
    });
    fs.closeSync(out);
    return child;
  };
  if (v.restarted) {
    const first = spawnAgent();
    const deadline = Date.now() + 90_000;
    while ((await countRunning(label)) < SERVICES) {
      if (Date.now() > deadline || first.exitCode !== null) throw new Error('the first run did not deploy the services');
      await sleep(200);
    }
    await stopChild(first);
  }
  const child = spawnAgent();
  const undo = onCleanup(async () => {
    await stopChild(child);
    if (v.agent) await removeApp(appId, SCOPE);
  });
  await cloud?.release();
  const samples: { t: number; mb: number; idle: boolean }[] = [];
  let last: Rss | undefined;
  let idle = !v.agent;
  let convergedS: number | undefined;
  const t0 = performance.now();
  const sample = () => {
    const r = child.pid ? readRss(child.pid) : undefined;
    if (!r) return;
    samples.push({ t: (performance.now() - t0) / 1000, mb: r.rssMb, idle });
    last = r;
  };
  const sampler = setInterval(sample, 1000);
  try {
    sample();
    if (v.agent) {
      const deadline = Date.now() + 90_000;
      while ((await countRunning(label)) < SERVICES) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`agent exited (${child.exitCode ?? child.signalCode}) before converging`);
        if (Date.now() > deadline) throw new Error('the 10 containers did not run within 90 s');
        await sleep(200);
      }
      convergedS = round((performance.now() - t0) / 1000, 2);
      idle = true;
    }
    // the agent says where its API listens (it was given any free port)
    const apiPort = v.apiInUse ? (await fsp.readFile(path.join(dir, 'agent.log'), 'utf8')).match(/Device API listening on [^"]*:(\d+)/)?.[1] : undefined;
    if (v.apiInUse && !apiPort) throw new Error('the agent did not say where its device API listens');
    for (let s = 0; s < IDLE_S; s++) {
      await sleep(1000);
      if (apiPort) {
        const res = await fetch(`http://127.0.0.1:${apiPort}/v1/healthy`);
        if (res.status !== 200) throw new Error(`GET /v1/healthy answered ${res.status}`);
      }
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`process exited (${child.exitCode ?? child.signalCode}) while idle`);
    }
    sample();
    const idleSamples = samples.filter((s) => s.idle);
    return {
      variant: v.name,
      ok: true,
      ...(convergedS !== undefined ? { convergedS } : {}),
      maxMb: Math.max(...samples.map((s) => s.mb)),
      idleMaxMb: Math.max(...idleSamples.map((s) => s.mb)),
      finalMb: last!.rssMb,
      hwmMb: last!.hwmMb,
      finalAnonMb: last!.anonMb,
      finalFileMb: last!.fileMb,
      samples: samples.length,
      ...(TRACE ? { trace: samples.map((s) => `${Math.round(s.t)}:${s.mb}`).join(' ') } : {}),
    };
  } catch (err) {
    const tail = (await fsp.readFile(path.join(dir, 'agent.log'), 'utf8').catch(() => '')).split('\n').slice(-5).join('\n');
    return {
      variant: v.name,
      ok: false,
      error: `${(err as Error).message}\n${tail}`,
      maxMb: Math.max(0, ...samples.map((s) => s.mb)),
      idleMaxMb: NaN,
      finalMb: last?.rssMb ?? NaN,
      hwmMb: last?.hwmMb ?? NaN,
      finalAnonMb: last?.anonMb ?? NaN,
      finalFileMb: last?.fileMb ?? NaN,
      samples: samples.length,
    };
  } finally {
    clearInterval(sampler);
    await stopChild(child);
    if (v.agent) await removeApp(appId, SCOPE);
    undo();
    await cloud?.close();
    undoCloud?.();
  }
}

await runBench('agentRss', async () => {
  if (!fs.existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run \`npm run build\` first`);
  if (!SHIPPED_FLAGS) throw new Error(`could not read the node flags from ${LAUNCHER}`);
  if (CHECK_MB !== undefined && !(CHECK_MB > 0)) throw new Error(`BENCH_RSS_CHECK_MB=${process.env.BENCH_RSS_CHECK_MB} is not a number of MB`);
  await ensureImage();
  const root = await tempDir('bosun-bench-rss-');
  log(`agent RSS: ${SERVICES} services, ${IDLE_S} s idle after converging, VmRSS sampled every second`);
  const results: Measured[] = [];
  for (const [i, v] of VARIANTS.entries()) {
    // the bare-node baseline needs no engine: it is measured beside the first variant
    const [m, bare] = await Promise.all([measure(v, root), i === 0 && CHECK_MB === undefined ? measure(BARE, root) : undefined]);
    for (const r of [bare, m]) {
      if (!r) continue;
      results.push(r);
      log(
        r.ok
          ? `  ${r.variant}: max ${r.maxMb} MB, idle max ${r.idleMaxMb} MB, final ${r.finalMb} MB ` +
              `(anon ${r.finalAnonMb} + file ${r.finalFileMb}), VmHWM ${r.hwmMb} MB` +
              (r.convergedS !== undefined ? ` (10 containers running after ${r.convergedS} s)` : '') +
              (r.trace ? `\n    samples: ${r.trace}` : '')
          : `  ${r.variant}: FAILED: ${r.error}`,
      );
    }
  }
  const bareFinal = results.find((r) => r.variant === BARE.name)?.finalMb ?? NaN;
  const table = results.map((r) => ({
    ...r,
    ratioToBareNode: round(r.finalMb / bareFinal, 2),
    // the goal is the RSS while supervising: the idle agent's (final), not the first seconds' peak
    meetsGoal: r.ok && r.finalMb <= GOAL_MB,
  }));
  if (CHECK_MB !== undefined) {
    const r = results[0];
    if (!r?.ok) throw new Error(`the shipped agent could not be measured: ${r?.error ?? 'no result'}`);
    if (!(r.finalMb <= CHECK_MB)) throw new Error(`the shipped agent idles at ${r.finalMb} MB RSS after ${IDLE_S} s, above the ${CHECK_MB} MB limit`);
    log(`  within the limit: ${r.finalMb} MB <= ${CHECK_MB} MB`);
  }
  return { services: SERVICES, idleS: IDLE_S, goalMb: GOAL_MB, baselineBareNodeMb: bareFinal, checkMb: CHECK_MB, results: table };
});
