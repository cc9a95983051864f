// The device link bench's summary lines, like the other benches' (BENCHMARKS.md §4 quotes them).
import { round } from '../lib.js';
import type { BackendResult } from './backend.js';
import { CONNS, ROUND_TIMEOUT_MS, ROUNDS } from './knobs.js';

/** A heading line, then per backend its 304 path and each size's notify rounds. */
export function summaryLines(results: BackendResult[]): string[] {
  const lines: string[] = ['', `device link (${CONNS} connections for the 304 path; notify rounds: ${ROUNDS} per size)`];
  for (const r of results) {
    const t = r.throughput;
    lines.push(
      `  ${r.backend}: 304 path ${t.device.perSecond} req/s (p50 ${t.device.latency.p50Ms} ms, p99 ${t.device.latency.p99Ms} ms); ` +
        `baseline bare fastify ${t.baseline.perSecond} req/s (p50 ${t.baseline.latency.p50Ms} ms, p99 ${t.baseline.latency.p99Ms} ms); ` +
        `ratio ${round(t.device.perSecond / t.baseline.perSecond, 2)}` +
        ('bosunNoDb' in t && t.bosunNoDb ? `; Bosun app without the database ${t.bosunNoDb.perSecond} req/s` : ''),
    );
    for (const n of r.notify) {
      const m = n.medianOfRounds as
        | { rounds: number; p50Ms?: number; p99Ms?: number; maxMs?: number; firstMs?: number; createMs: number; notifiedMin: number; probeMaxMs: number }
        | undefined;
      lines.push(
        m
          ? `  ${r.backend}: notify ${n.devices} devices (release POSTed; median of ${m.rounds} round(s)): ` +
              (m.p50Ms === undefined ? 'nobody notified; ' : `p50 ${m.p50Ms} ms, p99 ${m.p99Ms} ms, max ${m.maxMs} ms, first ${m.firstMs} ms; `) +
              `POST answered in ${m.createMs} ms; ` +
              `notified ≥ ${m.notifiedMin}/${n.devices} within ${ROUND_TIMEOUT_MS / 1000} s; a trivial request took up to ${m.probeMaxMs} ms meanwhile`
          : `  ${r.backend}: notify ${n.devices}: no round ran`,
      );
    }
  }
  return lines;
}
