// The simulated fleet (child process), its devices: registration through the API, a keep-alive
// socket per device with its target's ETag, and the closed-loop load of the 304 path. The notify
// rounds' long polls build on this (fleet.ts).
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { round, sleep } from '../lib.js';
import { DEVICE_TYPE } from './knobs.js';
import { cpuShare, stats } from './measure.js';
import { Conn, getRequest, postRequest } from './rawHttp.js';

/** Runs `fn` over items with at most `limit` at a time. */
export async function pool<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

export interface Device {
  id: string;
  key: string;
  etag?: string;
  conn?: Conn;
  /** the poll held now: when its answer came (absolute hrtime), its status */
  poll?: Promise<void>;
  arrivedAt?: bigint;
  pollStatus?: number | string;
  /** how many times its poll ran out (304) and was sent again within the round */
  repolls?: number;
}

export interface FleetSetup {
  port: number;
  baselinePort: number;
  /** local source addresses the devices' sockets are spread over */
  addrs: string[];
  adminToken: string;
}

export class FleetDevices {
  protected cfg!: FleetSetup;
  protected devices: Device[] = [];
  private sweeper: NodeJS.Timeout | undefined;
  private addrNext = 0;

  setup(cfg: FleetSetup) {
    this.cfg = cfg;
    // every request has a deadline: the sweeper fails those past it (their socket is dropped)
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const c of Conn.all) if (c.expired(now)) c.destroy('request timed out');
    }, 500);
    return { pid: process.pid };
  }

  protected newConn(port = this.cfg.port): Conn {
    return new Conn(port, this.cfg.addrs[this.addrNext++ % this.cfg.addrs.length]!);
  }

  /** Registers n devices through the API, `concurrency` at a time. */
  async register({ provisioningKey, n, concurrency }: { provisioningKey: string; n: number; concurrency: number }) {
    const conns = Array.from({ length: concurrency }, () => this.newConn());
    const latencies: number[] = [];
    let failed = 0;
    let firstError: string | undefined;
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    let next = 0;
    await Promise.all(
      conns.map(async (c) => {
        while (next < n) {
          next++;
          const uuid = randomBytes(16).toString('hex');
          const req = postRequest('/device/register', { authorization: `Bearer ${provisioningKey}` }, { uuid, device_type: DEVICE_TYPE });
          const t = performance.now();
          try {
            const r = await c.request(req, 30_000);
            if (r.status !== 201) throw new Error(`register: ${r.status} ${r.body.toString()}`);
            const { id, device_key } = JSON.parse(r.body.toString()) as { id: string; device_key: string };
            this.devices.push({ id, key: device_key });
            latencies.push(performance.now() - t);
          } catch (err) {
            failed++;
            firstError ??= (err as Error).message;
          }
        }
      }),
    );
    const wallMs = performance.now() - t0;
    for (const c of conns) c.forget();
    return {
      registered: latencies.length,
      failed,
      firstError,
      seconds: round(wallMs / 1000, 2),
      perSecond: round(latencies.length / (wallMs / 1000), 0),
      latency: stats(latencies),
      fleetCpu: cpuShare(process.cpuUsage(cpu0), wallMs),
    };
  }

  /** Devices written directly into the database by the server process. */
  add({ devices }: { devices: { id: string; key: string }[] }) {
    for (const d of devices) this.devices.push({ ...d });
    return { devices: this.devices.length };
  }

  /** Opens a keep-alive socket per device (up to n) and fetches its target once (200 + ETag). */
  async connect({ n }: { n: number }) {
    const todo = this.devices.slice(0, n).filter((d) => !d.conn?.open || !d.etag);
    let failed = 0;
    let firstError: string | undefined;
    const t0 = performance.now();
    // a bounded number of connects in flight: the listen backlog (and SYN queue) stay short
    await pool(todo, 200, async (d) => {
      d.conn ??= this.newConn();
      try {
        const r = await d.conn.request(getRequest('/device/v1/state', { authorization: `Bearer ${d.key}` }), 30_000);
        if (r.status !== 200 || !r.etag) throw new Error(`first GET: ${r.status} ${r.body.toString().slice(0, 200)}`);
        d.etag = r.etag;
      } catch (err) {
        failed++;
        firstError ??= (err as Error).message;
      }
    });
    const open = this.devices.slice(0, n).filter((d) => d.conn?.open).length;
    return { connected: open, failed, firstError, seconds: round((performance.now() - t0) / 1000, 2) };
  }

  /**
   * Closed-loop load: `conns` connections each send the next request as soon as the previous one
   * is answered, for warmupMs + durationMs; only requests sent after the warm-up and answered
   * before the end count.
   */
  async load({ kind, conns, warmupMs, durationMs }: { kind: 'device' | 'baseline' | 'bosunNoDb'; conns: number; warmupMs: number; durationMs: number }) {
    const devices = this.devices.slice(0, conns);
    if (devices.length < conns || devices.some((d) => !d.etag)) throw new Error(`load: ${conns} connected devices needed, ${devices.length} known`);
    const expected = kind === 'bosunNoDb' ? 404 : 304;
    const lanes = devices.map((d) => {
      const headers = { authorization: `Bearer ${d.key}`, 'if-none-match': `"${d.etag!}"` };
      if (kind === 'device') return { conn: d.conn!, req: getRequest('/device/v1/state?wait=0', headers), own: false };
      if (kind === 'baseline') return { conn: this.newConn(this.cfg.baselinePort), req: getRequest('/device/v1/state?wait=0', headers), own: true };
      return { conn: this.newConn(), req: getRequest('/device/v1/no-such-route?wait=0', headers), own: true };
    });
    const latencies: number[] = [];
    const statuses: Record<string, number> = {};
    let errors = 0;
    let firstError: string | undefined;
    const start = performance.now();
    const measureFrom = start + warmupMs;
    const end = measureFrom + durationMs;
    const cpu0 = process.cpuUsage();
    let cpuMeasured: NodeJS.CpuUsage | undefined;
    const cpuTimer = setTimeout(() => (cpuMeasured = process.cpuUsage()), warmupMs);
    await Promise.all(
      lanes.map(async ({ conn, req }) => {
        for (let i = 0; i < 10_000_000; i++) {
          const t = performance.now();
          if (t >= end) break;
          try {
            const r = await conn.request(req, 10_000);
            const done = performance.now();
            if (r.status !== expected) {
              statuses[r.status] = (statuses[r.status] ?? 0) + 1;
              firstError ??= `${r.status} ${r.body.toString().slice(0, 200)}`;
            } else if (t >= measureFrom && done <= end) latencies.push(done - t);
          } catch (err) {
            errors++;
            firstError ??= (err as Error).message;
            await sleep(10);
          }
        }
      }),
    );
    clearTimeout(cpuTimer);
    const fleetCpu = cpuShare(process.cpuUsage(cpuMeasured ?? cpu0), durationMs);
    for (const l of lanes) if (l.own) l.conn.forget();
    const s = stats(latencies);
    return {
      kind,
      conns,
      durationS: durationMs / 1000,
      requests: s.count,
      perSecond: round(s.count / (durationMs / 1000), 0),
      latency: s,
      wrongStatus: statuses,
      errors,
      firstError,
      fleetCpu,
    };
  }

  close() {
    clearInterval(this.sweeper);
    for (const c of [...Conn.all]) c.forget();
    return { closed: true };
  }
}
