// Fresh deploy of N services (N = 5, 20) from the local registry: Bosun vs `docker-compose up -d`
// on the same image and engine. The image is pulled once beforehand (with the registry
// credentials), so neither side pulls. Each repetition starts from nothing of its project and is
// checked (all N containers running) and torn down before the next; Bosun and compose alternate.
//   Bosun:   agent.setTarget(...) → applyNow() until 'converged' (in-process Agent, fresh data dir)
//   compose: `docker-compose -p <proj> up -d` until it exits
import fsp from 'node:fs/promises';
import path from 'node:path';
import {
  IMAGE,
  REPS,
  bosunTarget,
  converge,
  countAll,
  countRunning,
  ensureImage,
  freshAppId,
  log,
  median,
  onCleanup,
  removeApp,
  round,
  run,
  runBench,
  serviceName,
  startAgent,
  tempDir,
} from './lib.js';

const SIZES = (process.env.BENCH_DEPLOY_SIZES ?? '5,20').split(',').map(Number);
const WARMUPS = 1;

async function bosunDeploy(n: number): Promise<number> {
  const appId = freshAppId();
  const label = `io.balena.app-id=${appId}`;
  const b = await startAgent();
  const undo = onCleanup(() => removeApp(appId));
  let elapsed: number;
  try {
    const before = await countAll(label);
    if (before.containers || before.networks) throw new Error(`app ${appId} is not empty before the run`);
    const target = bosunTarget(appId, n);
    const t0 = performance.now();
    await b.agent.setTarget(target, 'bench');
    await converge(b);
    const seconds = (performance.now() - t0) / 1000;
    const running = await countRunning(label);
    if (running !== n) throw new Error(`bosun: ${running}/${n} containers running after converge`);
    elapsed = seconds;
  } finally {
    // the agent first, so it does not react to the removals
    await b.stop();
    await removeApp(appId);
    undo();
  }
  // after the finally block, so that a failed run reports its own error
  const after = await countAll(label);
  if (after.containers || after.networks) throw new Error(`bosun teardown left ${JSON.stringify(after)}`);
  return elapsed;
}

async function composeDeploy(dir: string, n: number, rep: string): Promise<number> {
  const project = `bosunbench${process.pid}n${n}r${rep}`;
  const label = `com.docker.compose.project=${project}`;
  const file = path.join(dir, `n${n}.yml`);
  const down = () => run('docker-compose', ['-p', project, '-f', file, 'down', '-t', '1'], { cwd: dir, timeoutMs: 120_000 });
  const undo = onCleanup(down);
  let elapsed: number;
  try {
    const before = await countAll(label);
    if (before.containers || before.networks) throw new Error(`compose project ${project} is not empty before the run`);
    const t0 = performance.now();
    await run('docker-compose', ['-p', project, '-f', file, 'up', '-d'], { cwd: dir, timeoutMs: 120_000 });
    const seconds = (performance.now() - t0) / 1000;
    const running = await countRunning(label);
    if (running !== n) throw new Error(`compose: ${running}/${n} containers running after up -d`);
    elapsed = seconds;
  } finally {
    await down();
    undo();
  }
  // after the finally block, so that a failed run reports its own error
  const after = await countAll(label);
  if (after.containers || after.networks) throw new Error(`compose teardown left ${JSON.stringify(after)}`);
  return elapsed;
}

function composeFile(n: number): string {
  let yml = 'version: "2.4"\nservices:\n';
  for (let i = 1; i <= n; i++) yml += `  ${serviceName(i)}:\n    image: ${JSON.stringify(IMAGE)}\n`;
  return yml;
}

await runBench('deploy', async () => {
  await ensureImage();
  const dir = await tempDir('bosun-bench-compose-');
  const composeVersion = (await run('docker-compose', ['version', '--short'])).stdout.trim();
  const results: Record<string, unknown>[] = [];
  log(`deploy: ${REPS} reps per side (+${WARMUPS} warm-up), image ${IMAGE} present locally, docker-compose ${composeVersion}`);
  for (const n of SIZES) {
    await fsp.writeFile(path.join(dir, `n${n}.yml`), composeFile(n));
    const bosun: number[] = [];
    const compose: number[] = [];
    for (let rep = -WARMUPS; rep < REPS; rep++) {
      // alternate which side goes first, so a drift in the engine favours neither
      const order = rep % 2 === 0 ? (['bosun', 'compose'] as const) : (['compose', 'bosun'] as const);
      for (const side of order) {
        const s = side === 'bosun' ? await bosunDeploy(n) : await composeDeploy(dir, n, rep < 0 ? `w${-rep}` : String(rep));
        if (rep >= 0) (side === 'bosun' ? bosun : compose).push(s);
      }
      if (rep >= 0) log(`  n=${n} rep ${rep + 1}/${REPS}: bosun ${bosun.at(-1)!.toFixed(3)} s, compose ${compose.at(-1)!.toFixed(3)} s`);
    }
    const r = {
      services: n,
      bosunMedianS: round(median(bosun)),
      composeMedianS: round(median(compose)),
      ratio: round(median(bosun) / median(compose), 2),
      goalRatio: 1.1,
      bosunS: bosun.map((x) => round(x)),
      composeS: compose.map((x) => round(x)),
    };
    log(`deploy n=${n}: bosun ${r.bosunMedianS} s, compose ${r.composeMedianS} s (median of ${REPS}), ratio ${r.ratio} (goal ≤ 1.1)`);
    results.push(r);
  }
  return { reps: REPS, composeVersion, results };
});
