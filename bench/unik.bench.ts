// UniK on the device: for each provider with a `static-binary` compiler, through the agent's UniK
// API as the unik CLI calls it (test/integration/unikGoClient.ts): the time from the build request
// (a tar with a static busybox) until the instance's first line is in its logs ("build to running"),
// the part of it from the run request, and how long a stop takes (the app exits on SIGTERM).
import fs from 'node:fs';
import { type GoClientError, tarOf, UnikGoClient } from '../test/integration/unikGoClient.js';
import { log, median, REPS, round, runBench, sleep, startAgent, waitFor } from './lib.js';

const SCRIPT = "trap 'exit 0' TERM; echo ready; while true; do sleep 1 & wait $!; done";

await runBench('unik', async () => {
  const b = await startAgent({ unikPort: 0 });
  const c = new UnikGoClient(`127.0.0.1:${b.agent.unikPort()}`);
  const tar = await tarOf([{ name: 'busybox', body: fs.readFileSync('/bin/busybox'), mode: 0o755 }]);
  const compilers = await c.availableCompilers();
  const providers = (await c.availableProviders()).filter((p) => compilers.includes(`static-binary-${p}`));
  const rows = [];
  for (const provider of providers) {
    const build: number[] = [];
    const toRunning: number[] = [];
    const runToRunning: number[] = [];
    const stop: number[] = [];
    for (let i = -1; i < REPS; i++) {
      const name = `bench${process.pid}${provider}${i + 1}`;
      const t0 = performance.now();
      await c.build(name, tar, 'static', 'binary', provider, `sh -c "${SCRIPT}"`, []);
      const built = performance.now();
      const inst = await c.run(name, name, null, null);
      await waitFor(`${name} running`, async () => (await c.logs(inst.Id)).includes('ready'), 120_000, 20);
      const ready = performance.now();
      await c.stop(inst.Id);
      const stopped = performance.now();
      await c.deleteInstance(inst.Id, true);
      await c.deleteImage(name).catch((err: GoClientError) => log(`could not delete ${name}: ${err.message}`));
      if (i < 0) continue; // warm-up
      build.push(built - t0);
      toRunning.push(ready - t0);
      runToRunning.push(ready - built);
      stop.push(stopped - ready);
      await sleep(100);
    }
    const row = {
      provider,
      reps: REPS,
      buildMedianS: round(median(build) / 1000, 2),
      buildToRunningMedianS: round(median(toRunning) / 1000, 2),
      runToRunningMedianS: round(median(runToRunning) / 1000, 2),
      stopMedianS: round(median(stop) / 1000, 2),
    };
    log(
      `unik ${provider}: build ${row.buildMedianS} s, build to running ${row.buildToRunningMedianS} s ` +
        `(run to running ${row.runToRunningMedianS} s), stop ${row.stopMedianS} s (medians of ${REPS})`,
    );
    rows.push(row);
  }
  await b.stop();
  return { providers: rows };
});
