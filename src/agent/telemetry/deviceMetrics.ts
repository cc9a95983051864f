// The device's own metrics, sampled every interval as telemetry points (float, percent or °C):
//   device.cpu.usage     busy share of all cores since the previous sample
//   device.memory.usage  memory in use (total minus available)
//   device.disk.usage    of the file system holding the agent's data dir (as df counts it)
//   device.temperature   the hottest of /sys/class/thermal/thermal_zone*/temp, where the host has any
import fs from '../../shared/fsAsync.js';
import os from 'node:os';
import path from 'node:path';
import type { Point } from '../../shared/telemetry.js';

export interface DeviceMetricsOptions {
  intervalMs: number;
  dataDir: string;
  record(points: Point[]): Promise<void>;
  onError(err: Error): void;
  /** default /sys/class/thermal */
  thermalRoot?: string;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

function cpuTimes(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const { times } of os.cpus()) {
    const all = times.user + times.nice + times.sys + times.idle + times.irq;
    total += all;
    busy += all - times.idle;
  }
  return { busy, total };
}

export class DeviceMetrics {
  private timer: NodeJS.Timeout | undefined;
  private cpu = cpuTimes();

  constructor(private readonly opts: DeviceMetricsOptions) {}

  start(): void {
    this.timer = setInterval(
      () =>
        void this.sample()
          .then((points) => this.opts.record(points))
          .catch(this.opts.onError),
      this.opts.intervalMs,
    );
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One sample of every metric the host has. */
  async sample(now = Date.now()): Promise<Point[]> {
    const ts = now * 1000;
    const point = (field: string, value: number): Point => ({ field, type: 'float', value: round2(value), ts });
    const points: Point[] = [];
    const cpu = cpuTimes();
    if (cpu.total > this.cpu.total) points.push(point('device.cpu.usage', (100 * (cpu.busy - this.cpu.busy)) / (cpu.total - this.cpu.total)));
    this.cpu = cpu;
    points.push(point('device.memory.usage', (100 * (os.totalmem() - os.freemem())) / os.totalmem()));
    const disk = await fs.statfs(this.opts.dataDir);
    const used = disk.blocks - disk.bfree;
    if (used + disk.bavail > 0) points.push(point('device.disk.usage', (100 * used) / (used + disk.bavail)));
    const temperature = await hottestZone(this.opts.thermalRoot ?? '/sys/class/thermal');
    if (temperature !== undefined) points.push(point('device.temperature', temperature));
    return points;
  }
}

/** °C of the hottest thermal zone, or undefined when there is none (containers, most VMs). */
async function hottestZone(root: string): Promise<number | undefined> {
  const zones = (await fs.readdir(root).catch(() => [])).filter((z) => /^thermal_zone\d+$/.test(z));
  const readings = await Promise.all(zones.map((z) => fs.readFile(path.join(root, z, 'temp'), 'utf8').then(Number, () => NaN)));
  const valid = readings.filter((t) => Number.isFinite(t));
  return valid.length ? Math.max(...valid) / 1000 : undefined;
}
