// Scenario 1, the 304 path: CONNS keep-alive connections of the fleet loop `GET /device/v1/state?wait=0`
// with the matching If-None-Match (closed loop, after a warm-up), against the Bosun server, against a
// bare fastify answering the same request from memory (the baseline), and (first backend only) for
// an unknown /device/ path through the Bosun app's hooks but not the database (404).
import { log } from '../lib.js';
import type { FleetProcess } from './fleetProcess.js';
import { CONNS, LOAD_S, WARMUP_S } from './knobs.js';
import { type LatencyStats, meter } from './measure.js';

export async function measureThroughput(fleet: FleetProcess, backendName: string, first: boolean) {
  const load = async (kind: 'device' | 'baseline' | 'bosunNoDb') => {
    const stop = meter();
    const r = await fleet.call<{
      perSecond: number;
      latency: LatencyStats;
      errors: number;
      wrongStatus: Record<string, number>;
      firstError?: string;
      fleetCpu: number;
    }>('load', { kind, conns: CONNS, warmupMs: WARMUP_S * 1000, durationMs: LOAD_S * 1000 }, (WARMUP_S + LOAD_S) * 1000 + 30_000);
    const m = stop();
    if (r.errors || Object.keys(r.wrongStatus).length)
      throw new Error(`load ${kind}: ${r.errors} errors, wrong statuses ${JSON.stringify(r.wrongStatus)}: ${r.firstError}`);
    log(
      `[${backendName}]   ${kind}: ${r.perSecond} req/s, p50 ${r.latency.p50Ms} ms, p99 ${r.latency.p99Ms} ms ` +
        `(server CPU ${m.serverCpu}, fleet CPU ${r.fleetCpu}, machine ${m.machineBusyCores} cores)`,
    );
    return { ...r, ...m };
  };
  log(`[${backendName}] 304 path: ${CONNS} keep-alive connections, ${WARMUP_S} s warm-up + ${LOAD_S} s`);
  return {
    baseline: await load('baseline'),
    device: await load('device'),
    ...(first ? { bosunNoDb: await load('bosunNoDb') } : {}),
  };
}
