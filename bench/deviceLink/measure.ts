// What the device link bench measures with: latency statistics, CPU shares, the server process's
// and the machine's load over a span, and a full GC before memory figures.
import fs from 'node:fs';
import os from 'node:os';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import { round } from '../lib.js';

export const hr = () => process.hrtime.bigint();
export const msBetween = (t0: bigint, t1: bigint) => Number(t1 - t0) / 1e6;

export interface LatencyStats {
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  minMs: number;
}
export function stats(xs: number[]): LatencyStats {
  // one sort for every percentile (the lib's percentile sorts a copy each time)
  const s = Float64Array.from(xs).sort();
  const at = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]! : NaN);
  const p50 = s.length ? (s.length % 2 ? s[s.length >> 1]! : (s[(s.length >> 1) - 1]! + s[s.length >> 1]!) / 2) : NaN;
  return {
    count: s.length,
    p50Ms: round(p50, 2),
    p90Ms: round(at(90), 2),
    p99Ms: round(at(99), 2),
    maxMs: round(s[s.length - 1] ?? NaN, 2),
    minMs: round(s[0] ?? NaN, 2),
  };
}

/** CPU time of the process over the wall time: 1.0 = one core busy all along */
export const cpuShare = (usage: NodeJS.CpuUsage, wallMs: number): number => round((usage.user + usage.system) / 1000 / wallMs, 2);

/** Machine-wide busy cores from /proc/stat between two snapshots. */
function cpuSnapshot(): { busy: number; total: number } {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3]! + (f[4] ?? 0);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** What the server process and the machine did between start() and stop(). */
export function meter() {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const elu0: EventLoopUtilization = performance.eventLoopUtilization();
  const m0 = cpuSnapshot();
  return () => {
    const wallMs = performance.now() - t0;
    const m1 = cpuSnapshot();
    const cpu = process.cpuUsage(cpu0);
    const elu = performance.eventLoopUtilization(elu0).utilization;
    return {
      wallS: round(wallMs / 1000, 2),
      /** the server process: CPU (1.0 = one core), event loop utilisation */
      serverCpu: cpuShare(cpu, wallMs),
      serverElu: round(elu, 2),
      /** the whole machine, in cores */
      machineBusyCores: round(((m1.busy - m0.busy) / Math.max(1, m1.total - m0.total)) * os.cpus().length, 2),
    };
  };
}

/** A full GC (for the memory figures: what the held polls retain, not garbage not yet collected). */
let gcFn: (() => void) | undefined;
export function fullGc(): void {
  if (!gcFn) {
    v8.setFlagsFromString('--expose-gc');
    gcFn = vm.runInNewContext('gc') as () => void;
  }
  gcFn();
}
export const mb = (bytes: number) => round(bytes / 2 ** 20, 1);
