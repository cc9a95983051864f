// One backend's run of the device link bench: its rig, the devices registered through the API, then
// the two scenarios (throughput.ts, notify.ts); the rig is closed after (and at cleanup on failure).
import { performance } from 'node:perf_hooks';
import { log } from '../lib.js';
import type { Backend } from '../serverBackends.js';
import { CONNS, SIZES } from './knobs.js';
import { notifyRounds } from './notify.js';
import { connectDevices, registerDevices, startRig } from './setup.js';
import { measureThroughput } from './throughput.js';

export type BackendResult = Awaited<ReturnType<typeof runBackend>>;

export async function runBackend(backend: Backend, index: number, first: boolean, budgetS: number) {
  const backendStarted = performance.now();
  const rig = await startRig(backend, index);
  const { fleet, baseline, closeServer } = rig;
  const registration = await registerDevices(rig, backend.name);
  await connectDevices(fleet, Math.min(registration.registered, Math.max(CONNS, SIZES[0] ?? 0)));

  const throughput = await measureThroughput(fleet, backend.name, first);
  const notify = await notifyRounds(rig, backend.name, registration.registered, backendStarted, budgetS);

  await fleet.stop();
  // a failure to close is reported, not allowed to lose the figures
  let closeError: string | undefined;
  await closeServer().catch((err: Error) => {
    closeError = err.message;
    log(`[${backend.name}] closing the server failed: ${err.message}`);
  });
  await baseline.close();
  return { backend: backend.name, registration, throughput, notify, ...(closeError ? { closeError } : {}) };
}
