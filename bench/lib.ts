// Shared helpers for the benchmarks (run through scripts/bench.sh, which brings up the engine and
// the registry with scripts/engine.sh): env, the engine client, the test image, an in-process
// agent with a quiet log, statistics, bounded waits, cleanup on exit, and the result files.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Agent, type AgentOptions } from '../src/agent/agent.js';
import { createDocker } from '../src/agent/engine/docker.js';
import { EventLog } from '../src/agent/eventLog.js';
import type { ServiceTarget, TargetState } from '../src/shared/targetState.js';

export function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run benchmarks through \`npm run bench\` (scripts/bench.sh)`);
  return v;
}

export const registry = {
  url: need('BOSUN_TEST_REGISTRY'),
  username: need('BOSUN_TEST_REGISTRY_USER'),
  password: need('BOSUN_TEST_REGISTRY_PASSWORD'),
};
export const IMAGE = `${need('BOSUN_TEST_IMAGE')}:v1`;
export const docker = createDocker();

export const REPS = intEnv('BENCH_REPS', 5);

export function intEnv(name: string, fallback: number): number {
  const n = Number(process.env[name]);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// statistics

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  // nearest-rank on the sorted sample; p=50 on an even count averages the two middle values
  if (p === 50) {
    const m = s.length >> 1;
    return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
  }
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
export const median = (xs: number[]) => percentile(xs, 50);
export const round = (x: number, digits = 3) => Number(x.toFixed(digits));

// ---------------------------------------------------------------------------------------------
// cleanup: whatever a bench starts registers how to undo it; run on normal exit and on signals

const cleanups: (() => Promise<unknown> | unknown)[] = [];
export function onCleanup(fn: () => Promise<unknown> | unknown): () => void {
  cleanups.push(fn);
  return () => {
    const i = cleanups.indexOf(fn);
    if (i >= 0) cleanups.splice(i, 1);
  };
}

// one run at a time: a signal can arrive while the bench's own failure is being cleaned up, and
// the exit that follows must wait for all of it
let cleaning: Promise<void> | undefined;
function runCleanups(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length) {
      const fn = cleanups.pop()!;
      try {
        await fn();
      } catch (err) {
        console.error(`cleanup failed: ${(err as Error).message}`);
      }
    }
  })().finally(() => (cleaning = undefined));
  return cleaning;
}

/** Runs a bench: its result goes to $BENCH_OUT/<name>.json; cleanups run whatever happens. */
export async function runBench(name: string, fn: () => Promise<Record<string, unknown>>): Promise<void> {
  let stopping = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    console.error(`[${name}] ${sig}: cleaning up`);
    void runCleanups().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const started = performance.now();
  const loadStart = round(os.loadavg()[0]!, 2);
  let code = 0;
  try {
    const result = await fn();
    // other work on the machine skews every figure: the 1-minute load average says how much there was
    const load1 = { start: loadStart, end: round(os.loadavg()[0]!, 2) };
    const out = { bench: name, ok: true, durationS: round((performance.now() - started) / 1000, 1), load1, ...result };
    await writeResult(name, out);
  } catch (err) {
    code = 1;
    console.error(`[${name}] FAILED: ${(err as Error).stack ?? err}`);
    await writeResult(name, { bench: name, ok: false, error: (err as Error).message });
  } finally {
    await runCleanups();
  }
  // dockerode keeps sockets alive; do not wait for them
  process.exit(code);
}

async function writeResult(name: string, data: unknown): Promise<void> {
  const dir = process.env.BENCH_OUT;
  if (!dir) return;
  await fsp.writeFile(path.join(dir, `${name}.json`), JSON.stringify(data, null, 2) + '\n');
}

export function log(msg: string): void {
  console.log(msg);
}

export async function tempDir(prefix: string): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  onCleanup(() => fsp.rm(dir, { recursive: true, force: true }));
  return dir;
}

// ---------------------------------------------------------------------------------------------
// engine

/** Pulls the test image once with the registry credentials, so no timed run pulls. */
export async function ensureImage(ref = IMAGE): Promise<string> {
  const present = await docker
    .getImage(ref)
    .inspect()
    .catch(() => undefined);
  if (present) return present.Id;
  const stream = await docker.pull(ref, {
    authconfig: { username: registry.username, password: registry.password, serveraddress: registry.url },
  });
  await new Promise<void>((resolve, reject) => docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve())));
  return (await docker.getImage(ref).inspect()).Id;
}

/** A target with `n` services s01… of the test image, default network, no ports. */
export function bosunTarget(appId: number, n: number, name = `bench${appId}`): TargetState {
  const services: Record<string, ServiceTarget> = {};
  for (let i = 1; i <= n; i++) services[serviceName(i)] = { image: IMAGE };
  return {
    registries: { local: registry },
    apps: { [appId]: { name, release: { id: 1, commit: `bench${appId}`, services } } },
  };
}

export const serviceName = (i: number) => `s${String(i).padStart(2, '0')}`;

/** Running containers with all of these labels. */
export async function countRunning(labels: string | string[]): Promise<number> {
  const list = await docker.listContainers({ filters: { label: [labels].flat(), status: ['running'] } });
  return list.length;
}

export async function countAll(label: string): Promise<{ containers: number; networks: number }> {
  const [cs, ns] = await Promise.all([docker.listContainers({ all: true, filters: { label: [label] } }), docker.listNetworks({ filters: { label: [label] } })]);
  return { containers: cs.length, networks: ns.length };
}

/** Removes the containers, networks and volumes the agent made for an app (by label only; of one engine scope if given). */
export async function removeApp(appId: number, scope?: string): Promise<void> {
  const filters = { label: [`io.balena.app-id=${appId}`, ...(scope ? [`io.bosun.scope=${scope}`] : [])] };
  const cs = await docker.listContainers({ all: true, filters });
  await Promise.all(
    cs.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true, v: true })
        .catch(() => undefined),
    ),
  );
  for (const n of await docker.listNetworks({ filters }))
    await docker
      .getNetwork(n.Id)
      .remove()
      .catch(() => undefined);
  for (const v of (await docker.listVolumes({ filters })).Volumes ?? []) {
    await docker
      .getVolume(v.Name)
      .remove()
      .catch(() => undefined);
  }
}

/** Polls until fn() is truthy; throws after timeoutMs (every wait in the benches is bounded). */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

// ---------------------------------------------------------------------------------------------
// the in-process agent (the Agent class from src/agent/agent.ts), its log kept in memory

export interface BenchAgent {
  agent: Agent;
  dataDir: string;
  /** the last log lines, for failure messages */
  logs: string[];
  stop(): Promise<void>;
}

export async function startAgent(opts: Partial<AgentOptions> = {}): Promise<BenchAgent> {
  const dataDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'bosun-bench-agent-'));
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) {
        if (!line) continue;
        logs.push(line);
        if (logs.length > 200) logs.shift();
      }
      cb();
    },
  });
  // the device API on any free port: 48484 may be another agent's on this machine
  const agent = new Agent({ dataDir, log: new EventLog('info', sink), engineScope: `bench-${process.pid}`, apiPort: 0, ...opts });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    unregister();
    await agent.stop().catch(() => undefined);
    await fsp.rm(dataDir, { recursive: true, force: true });
  };
  const unregister = onCleanup(stop);
  await agent.start();
  return { agent, dataDir, logs, stop };
}

/** applyNow until 'converged' (bounded by time and by iterations). */
export async function converge(b: BenchAgent, timeoutMs = 120_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 1; i <= 1000; i++) {
    if ((await b.agent.applyNow()) === 'converged') return i;
    if (Date.now() > deadline) break;
    await sleep(20);
  }
  throw new Error(`agent did not converge: ${b.agent.reconciler.status.waitReasons.join('; ')}\n${b.logs.slice(-20).join('\n')}`);
}

// ---------------------------------------------------------------------------------------------
// child processes

export function run(cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: opts.cwd, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

export interface Rss {
  /** VmRSS: resident memory, MB */
  rssMb: number;
  /** VmHWM: the peak of VmRSS over the process's life, MB */
  hwmMb: number;
  /** RssAnon: the process's own memory (heap, stacks, native allocations), MB */
  anonMb: number;
  /** RssFile: resident file-backed pages (the node binary, shared libraries, addons), MB */
  fileMb: number;
}

/** Memory of a process from /proc/<pid>/status, or undefined once it is gone. */
export function readRss(pid: number): Rss | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const mb = (key: string) => round(Number(text.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'))?.[1] ?? NaN) / 1024, 1);
  return { rssMb: mb('VmRSS'), hwmMb: mb('VmHWM'), anonMb: mb('RssAnon'), fileMb: mb('RssFile') };
}

/** Unique app ids for this run, far from the tests' (1000 + pid % 5000 * 10). */
let nextAppId = 900_000 + (process.pid % 5000) * 20;
export const freshAppId = () => nextAppId++;
