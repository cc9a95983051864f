// No-op reconcile: with 10 services converged, how long one `agent.applyNow()` takes when the plan
// finds nothing to do. Baseline, measured interleaved in the same run: the engine reads alone, the
// same 4 list calls (containers, images, supervised networks and volumes) every plan starts with,
// made directly with dockerode: the floor any agent that asks the engine pays. The ratio says how
// much the agent adds on top (store reads, plan, bookkeeping).
import {
  bosunTarget,
  converge,
  countRunning,
  docker,
  ensureImage,
  freshAppId,
  intEnv,
  log,
  median,
  onCleanup,
  percentile,
  removeApp,
  round,
  runBench,
  startAgent,
} from './lib.js';

const SERVICES = 10;
const ITERATIONS = intEnv('BENCH_NOOP_ITERATIONS', 200);
const WARMUP = 20;
const SUPERVISED = { label: ['io.balena.supervised=true'] };

const engineReads = () =>
  Promise.all([
    docker.listContainers({ all: true }),
    docker.listImages(),
    docker.listNetworks({ filters: SUPERVISED }),
    docker.listVolumes({ filters: SUPERVISED }),
  ]);

await runBench('noopReconcile', async () => {
  await ensureImage();
  const appId = freshAppId();
  const label = `io.balena.app-id=${appId}`;
  onCleanup(() => removeApp(appId));
  const b = await startAgent();
  await b.agent.setTarget(bosunTarget(appId, SERVICES), 'bench');
  await converge(b);
  const running = await countRunning(label);
  if (running !== SERVICES) throw new Error(`${running}/${SERVICES} containers running after converge`);
  const ids = async () =>
    (await docker.listContainers({ all: true, filters: { label: [label] } }))
      .map((c) => c.Id)
      .sort()
      .join();
  const idsBefore = await ids();

  const apply: number[] = [];
  const read: number[] = [];
  const engineContainers = (await docker.listContainers({ all: true })).length;
  for (let i = -WARMUP; i < ITERATIONS; i++) {
    let t0 = performance.now();
    const outcome = await b.agent.applyNow();
    const a = performance.now() - t0;
    if (outcome !== 'converged') throw new Error(`applyNow returned ${outcome} on a converged engine: ${b.agent.reconciler.status.waitReasons.join('; ')}`);
    t0 = performance.now();
    await engineReads();
    const r = performance.now() - t0;
    if (i >= 0) {
      apply.push(a);
      read.push(r);
    }
  }
  // nothing may have changed: a no-op apply that did something is not a no-op
  const after = await countRunning(label);
  if (after !== SERVICES || (await ids()) !== idsBefore) throw new Error('the no-op applies changed the containers');

  const r = {
    services: SERVICES,
    iterations: ITERATIONS,
    engineContainers,
    applyMedianMs: round(median(apply), 2),
    applyP95Ms: round(percentile(apply, 95), 2),
    applyMaxMs: round(Math.max(...apply), 2),
    engineReadsMedianMs: round(median(read), 2),
    engineReadsP95Ms: round(percentile(read, 95), 2),
    ratio: round(median(apply) / median(read), 2),
    goalMs: 20,
  };
  log(
    `noop reconcile (${SERVICES} services, ${ITERATIONS} applies): median ${r.applyMedianMs} ms, p95 ${r.applyP95Ms} ms (goal < 20 ms); ` +
      `engine reads alone: median ${r.engineReadsMedianMs} ms, p95 ${r.engineReadsP95Ms} ms; ratio ${r.ratio}`,
  );
  await b.stop();
  return r;
});
