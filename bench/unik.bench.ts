// UniK providers qemu and docker (static-binary-*): build-to-running (build the image, make its
// volume, run an instance, first HTTP answer: qemu through its forwarded port, docker on the
// container's address) and stop times, and the RSS of a qemu instance. The app is the static busybox
// running `httpd`. Baselines of the same run: `docker run --init` of that binary in a FROM-scratch
// image (what the docker provider's static-binary-docker amounts to), and qemu booting the bare
// kernel (an init that powers off at once) — the floor under any qemu instance.
import { spawn } from 'node:child_process';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { EventLog } from '../src/agent/eventLog.js';
import type { UnikCompiler, UnikProvider } from '../src/agent/unik/provider.js';
import { guestAssets } from '../src/agent/unik/qemu/assets.js';
import { cpioNewc, S_IFDIR, S_IFREG } from '../src/agent/unik/qemu/cpio.js';
import { createQemuProvider } from '../src/agent/unik/qemu/qemuProvider.js';
import { docker, log, median, onCleanup, REPS, round, run, runBench, sleep, tempDir } from './lib.js';
import { freePort } from '../test/integration/harness.js';

const BUSYBOX = '/bin/busybox';
const cacheDir = process.env.BOSUN_UNIK_CACHE ?? '/tmp/bosun-unik-cache';
const quiet = () => new EventLog('silent');

/** Seconds until http://address/ answers 200. */
async function untilHttp(address: string, t0: number, timeoutMs = 120_000): Promise<number> {
  for (const end = Date.now() + timeoutMs; Date.now() < end; await sleep(20)) {
    const ok = await fetch(`http://${address}/`, { signal: AbortSignal.timeout(2000) }).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return (performance.now() - t0) / 1000;
  }
  throw new Error(`no HTTP answer on ${address} in ${timeoutMs / 1000} s`);
}

/** RSS (MiB) of the qemu process of instance `id`, found by its -name. */
async function qemuRssMb(id: string): Promise<number> {
  for (const pid of await fsp.readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.split('\0').includes(`bosun-unik-${id}`)) continue;
    const status = await fsp.readFile(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
  }
  throw new Error(`no qemu process for instance ${id}`);
}

interface Rep {
  buildS: number;
  runToHttpS: number;
  buildToRunningS: number;
  stopS: number;
  rssMb?: number;
}

async function measureProvider(p: UnikProvider, compiler: UnikCompiler, src: string, www: string, rep: number): Promise<Rep> {
  const name = `bench-${process.pid}-${rep}`;
  const port = await freePort();
  const t0 = performance.now();
  const image = await p.buildImage({
    name,
    compiler,
    sourceDir: src,
    args: ['httpd', '-f', '-p', '8080', '-h', '/www'],
    mounts: ['/www'],
    signal: new AbortController().signal,
  });
  const undoImage = onCleanup(() => p.deleteImage(image, true));
  const buildS = (performance.now() - t0) / 1000;
  const volume = await p.createVolume({ name, sizeMb: 0, dataDir: www });
  const undoVolume = onCleanup(() => p.deleteVolume(volume, true));
  const t1 = performance.now();
  const inst = await p.runInstance({ name, image, mounts: new Map([['/www', volume]]), env: { BOSUN_PORTS: `${port}:8080` }, memoryMb: 0, debugMode: false });
  // qemu forwards 127.0.0.1:port (BOSUN_PORTS); a docker instance answers on its bridge address
  const runToHttpS = await untilHttp(p.name === 'qemu' ? `127.0.0.1:${port}` : `${inst.IpAddress}:8080`, t1);
  const buildToRunningS = (performance.now() - t0) / 1000;
  await sleep(2000); // settled, serving
  const rssMb = p.name === 'qemu' ? await qemuRssMb(inst.Id) : undefined;
  const t2 = performance.now();
  await p.stopInstance(inst);
  const stopS = (performance.now() - t2) / 1000;
  await p.deleteImage(image, true);
  await p.deleteVolume(volume, true);
  undoImage();
  undoVolume();
  return { buildS, runToHttpS, buildToRunningS, stopS, rssMb };
}

/** The docker provider, on the engine the benches use, scoped so that it sees only its own objects. */
async function dockerProvider(): Promise<UnikProvider> {
  const { createDockerProvider } = await import('../src/agent/unik/docker/dockerProvider.js');
  return createDockerProvider({ docker, scope: `bosun-bench-unik-${process.pid}`, log: quiet() });
}

/** `docker run --init` of the same busybox in a FROM-scratch image: to HTTP, then `docker stop`. */
async function dockerRunBaseline(dir: string, rep: number): Promise<Rep> {
  const tag = 'bosun-bench/unik-busybox:latest';
  const name = `bosun-bench-unik-${process.pid}-${rep}`;
  const port = await freePort();
  const t0 = performance.now();
  await run('docker', ['build', '-q', '-t', tag, dir], { timeoutMs: 120_000 });
  const buildS = (performance.now() - t0) / 1000;
  const undo = onCleanup(() => run('docker', ['rm', '-f', name]));
  const t1 = performance.now();
  await run('docker', ['run', '-d', '--init', '--name', name, '-p', `127.0.0.1:${port}:8080`, tag, 'httpd', '-f', '-p', '8080', '-h', '/www']);
  const runToHttpS = await untilHttp(`127.0.0.1:${port}`, t1);
  const buildToRunningS = (performance.now() - t0) / 1000;
  const t2 = performance.now();
  await run('docker', ['stop', name], { timeoutMs: 60_000 });
  const stopS = (performance.now() - t2) / 1000;
  await run('docker', ['rm', '-f', name]);
  undo();
  return { buildS, runToHttpS, buildToRunningS, stopS };
}

/** qemu with the same kernel and an init that powers off at once: spawn to exit. */
async function bareKernelBoot(dir: string): Promise<number> {
  const assets = await guestAssets(cacheDir);
  const initrd = path.join(dir, 'bare.cpio');
  const init = '#!/bin/busybox sh\n/bin/busybox echo up\n/bin/busybox poweroff -f\n';
  await fsp.writeFile(
    initrd,
    cpioNewc([
      { name: 'bin', mode: S_IFDIR | 0o755 },
      { name: 'bin/busybox', mode: S_IFREG | 0o755, data: await fsp.readFile(assets.busybox) },
      { name: 'init', mode: S_IFREG | 0o755, data: Buffer.from(init) },
    ]),
  );
  const args = ['-accel', 'tcg', '-M', 'pc', '-m', '128', '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot'];
  args.push('-kernel', assets.kernel, '-initrd', initrd, '-append', 'console=ttyS0 panic=-1 quiet', '-serial', `file:${path.join(dir, 'bare.log')}`);
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn('qemu-system-x86_64', args, { stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('exit', (code) => (clearTimeout(timer), code === 0 ? resolve() : reject(new Error(`bare boot: qemu exited ${code}`))));
  });
  const s = (performance.now() - t0) / 1000;
  if (!(await fsp.readFile(path.join(dir, 'bare.log'), 'utf8')).includes('up')) throw new Error('bare boot: the init did not run');
  return s;
}

const summarize = (reps: Rep[]) => {
  const m = (k: keyof Rep) => {
    const xs = reps.map((r) => r[k]).filter((x): x is number => x !== undefined);
    return xs.length ? round(median(xs), k === 'rssMb' ? 1 : 3) : undefined;
  };
  return { buildS: m('buildS'), runToHttpS: m('runToHttpS'), buildToRunningS: m('buildToRunningS'), stopS: m('stopS'), rssMb: m('rssMb'), reps };
};

await runBench('unik', async () => {
  const dir = await tempDir('bosun-bench-unik-');
  const src = path.join(dir, 'src');
  const www = path.join(dir, 'www');
  await fsp.mkdir(src);
  await fsp.mkdir(www);
  await fsp.copyFile(BUSYBOX, path.join(src, 'busybox'));
  await fsp.writeFile(path.join(www, 'index.html'), 'hello\n');
  await fsp.writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\nCOPY src/busybox /busybox\nCOPY www /www\nENTRYPOINT ["/busybox"]\n');
  await guestAssets(cacheDir); // the kernel download is a one-time cost, not a build's

  const results: Record<string, unknown> = {};
  const subjects: Array<[string, UnikProvider | undefined, UnikCompiler]> = [
    ['qemu', await createQemuProvider({ dataDir: path.join(dir, 'qemu'), cacheDir, log: quiet() }), { base: 'static', lang: 'binary', description: '' }],
    ['docker', await dockerProvider(), { base: 'static', lang: 'binary', description: '' }],
  ];
  for (const [name, provider, compiler] of subjects) {
    if (!provider) {
      log(`unik: no ${name} provider here`);
      continue;
    }
    const reps: Rep[] = [];
    // one warm-up (qemu: the first start tries KVM and records whether it works)
    for (let rep = -1; rep < REPS; rep++) {
      const r = await measureProvider(provider, compiler, src, www, rep + 1);
      if (rep >= 0) reps.push(r);
      log(`  ${name} ${rep < 0 ? 'warm-up' : `rep ${rep + 1}/${REPS}`}: ${JSON.stringify(r)}`);
    }
    results[name] = summarize(reps);
    log(`unik ${name}: ${JSON.stringify({ ...summarize(reps), reps: undefined })}`);
  }
  const docker: Rep[] = [];
  for (let rep = 0; rep < REPS; rep++) docker.push(await dockerRunBaseline(dir, rep));
  results.dockerRunBaseline = summarize(docker);
  log(`baseline docker run --init: ${JSON.stringify({ ...summarize(docker), reps: undefined })}`);
  const bare: number[] = [];
  for (let rep = 0; rep < REPS; rep++) bare.push(await bareKernelBoot(dir));
  results.bareKernelBootS = { median: round(median(bare)), reps: bare.map((x) => round(x)) };
  log(`baseline qemu bare kernel boot to poweroff (TCG): ${round(median(bare))} s`);
  return { reps: REPS, results };
});
