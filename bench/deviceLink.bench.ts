// The device link under load: one real Bosun server (`openServer`, in this process, on 127.0.0.1)
// and a simulated fleet in a child process (this same file, BENCH_DEVICELINK_ROLE=fleet): devices
// are raw keep-alive HTTP/1.1 sockets with a device key and an ETag, not agents. Per storage backend
// (SQLite; PostgreSQL when $BENCH_DATABASE_URL names a cluster we may create a database in, as
// scripts/bench.sh arranges with scripts/postgres.sh):
//
// 1. The 304 path: C connections (one device each) loop `GET /device/v1/state?wait=0` with the
//    matching If-None-Match for a fixed time: requests/s and latency. Baseline in the same run and
//    the same process: a bare fastify instance answering the same request with a 304 from memory.
//    Also (first backend only) a request that goes through the Bosun app's hooks but not the
//    database (an unknown /device/ path: 404).
// 2. Notify latency: N devices (1k, then 10k) hold `GET /device/v1/state?wait=60` with their ETag;
//    a release is created for the project (all of them); for every device, the time from the POST
//    until its 200 arrived (a poll that runs out first, 304, is sent again at once, as a device
//    does). R rounds per size (a new release each; devices re-arm with the new ETag); a round ends
//    after BENCH_DL_ROUND_TIMEOUT_S (50) whatever is still missing.
//
// Devices: the first 1k register through the API (`POST /device/register` with a project-scoped
// provisioning key); the other 9k are rows written directly with kysely, in the shapes the route
// writes (device key digests as it computes them; their materialised targets as DeviceTargets
// builds them: the one it builds for the first, renamed; checked against `targets.build()` on
// samples). A release is created with `POST /docker/projects/{id}/releases/` (sent by the fleet
// process, which timestamps it). During each round a probe asks the server something trivial every
// 50 ms: how long anything else waits meanwhile.
//
// Knobs: BENCH_DL_BACKENDS (sqlite,postgres), BENCH_DL_SIZES (1000,10000), BENCH_DL_ROUNDS (3),
// BENCH_DL_ROUND_TIMEOUT_S (50), BENCH_DL_CONNS (50), BENCH_DL_LOAD_S (6, after 2 s of warm-up),
// BENCH_DL_REGISTER (1000: how many devices register through the API), BENCH_DL_BUDGET_S (150,
// shared equally by the backends: a backend past its share starts no further round of a size, but
// always the first). Three rounds at 10k on both backends take about 7 minutes today:
// BENCH_DL_BUDGET_S=3000 BENCH_DL_ROUND_TIMEOUT_S=150 BENCH_TIMEOUT_S=1800 npm run bench -- deviceLink
import { fork, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { DeviceNotifier } from '../src/server/wakeups/notifier.js';
import type { Server } from '../src/server/server.js';
import { freshPostgres } from '../test/server/backends.js';
import { intEnv, log, onCleanup, percentile, round, runBench, sleep, tempDir, waitFor } from './lib.js';

const SIZES = (process.env.BENCH_DL_SIZES ?? '1000,10000')
  .split(',')
  .map(Number)
  .filter((n) => Number.isInteger(n) && n > 0)
  .sort((a, b) => a - b);
const ROUNDS = intEnv('BENCH_DL_ROUNDS', 3);
const CONNS = intEnv('BENCH_DL_CONNS', 50);
const LOAD_S = intEnv('BENCH_DL_LOAD_S', 6);
const WARMUP_S = 2;
const REGISTER = intEnv('BENCH_DL_REGISTER', 1000);
const BUDGET_S = intEnv('BENCH_DL_BUDGET_S', 150);
const WAIT_S = 60;
/** a round that has not delivered to every device by then is cut short (the polls would 304 at WAIT_S) */
const ROUND_TIMEOUT_MS = intEnv('BENCH_DL_ROUND_TIMEOUT_S', 50) * 1000;
/** how long the release POST may take (whatever the round's end) */
const POST_TIMEOUT_MS = 180_000;
const DEVICE_TYPE = 'raspberrypi4-64';
const ROLE = process.env.BENCH_DEVICELINK_ROLE;

const hr = () => process.hrtime.bigint();
const msBetween = (t0: bigint, t1: bigint) => Number(t1 - t0) / 1e6;
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

interface LatencyStats {
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  minMs: number;
}
function stats(xs: number[]): LatencyStats {
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
const cpuShare = (usage: NodeJS.CpuUsage, wallMs: number): number => round((usage.user + usage.system) / 1000 / wallMs, 2);

// =================================================================================================
// the fleet (child process): devices as raw HTTP/1.1 keep-alive sockets
// =================================================================================================

interface Resp {
  status: number;
  etag: string | undefined;
  close: boolean;
  body: Buffer;
}

const EMPTY = Buffer.alloc(0);
const HEAD_END = Buffer.from('\r\n\r\n');
const unquote = (tag: string) => tag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');

/** One keep-alive connection, one request at a time; reconnects when the server closed it. */
class Conn {
  private sock: net.Socket | undefined;
  private buf: Buffer = EMPTY;
  private pending: { resolve: (r: Resp) => void; reject: (e: Error) => void; deadline: number } | undefined;
  static readonly all = new Set<Conn>();

  constructor(
    private readonly port: number,
    private readonly localAddress: string,
  ) {
    Conn.all.add(this);
  }

  get open(): boolean {
    return this.sock !== undefined;
  }

  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port: this.port, localAddress: this.localAddress, noDelay: true });
      const timer = setTimeout(() => s.destroy(new Error('connect timed out')), 20_000);
      s.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      s.once('connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        this.sock = s;
        this.buf = EMPTY;
        s.on('data', (c: Buffer) => this.onData(c));
        s.on('error', () => {}); // 'close' follows
        s.on('close', () => {
          if (this.sock === s) this.sock = undefined;
          this.fail(new Error('connection closed'));
        });
        resolve();
      });
    });
  }

  async request(raw: Buffer, timeoutMs: number): Promise<Resp> {
    if (this.pending) throw new Error('a request is already pending on this connection');
    if (!this.sock) await this.connect();
    return new Promise<Resp>((resolve, reject) => {
      this.pending = { resolve, reject, deadline: Date.now() + timeoutMs };
      this.sock!.write(raw);
    });
  }

  /** the timeout sweeper's check */
  expired(now: number): boolean {
    return this.pending !== undefined && now > this.pending.deadline;
  }

  destroy(reason = 'closed by the bench'): void {
    this.sock?.destroy();
    this.sock = undefined;
    this.fail(new Error(reason));
  }

  forget(): void {
    this.destroy();
    Conn.all.delete(this);
  }

  private fail(err: Error): void {
    const p = this.pending;
    this.pending = undefined;
    p?.reject(err);
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      const r = this.parse();
      if (!r) return;
      const p = this.pending;
      this.pending = undefined;
      if (r.close) {
        this.sock?.destroy();
        this.sock = undefined;
      }
      p?.resolve(r);
    }
  }

  /** One whole response off the buffer, or undefined while it is incomplete. */
  private parse(): Resp | undefined {
    const buf = this.buf;
    const end = buf.indexOf(HEAD_END);
    if (end < 0) return undefined;
    const lines = buf.toString('latin1', 0, end).split('\r\n');
    const status = Number(lines[0]!.slice(9, 12));
    let length = 0;
    let chunked = false;
    let etag: string | undefined;
    let close = false;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') length = Number(value);
      else if (name === 'transfer-encoding') chunked = /chunked/i.test(value);
      else if (name === 'etag') etag = unquote(value);
      else if (name === 'connection') close = /close/i.test(value);
    }
    if (status === 304 || status === 204 || status < 200) {
      length = 0;
      chunked = false;
    }
    let pos = end + 4;
    let body: Buffer;
    if (chunked) {
      const parts: Buffer[] = [];
      for (;;) {
        const eol = buf.indexOf('\r\n', pos);
        if (eol < 0) return undefined;
        const size = parseInt(buf.toString('latin1', pos, eol), 16);
        if (size === 0) {
          if (buf.length < eol + 4) return undefined;
          pos = eol + 4;
          break;
        }
        if (buf.length < eol + 2 + size + 2) return undefined;
        parts.push(buf.subarray(eol + 2, eol + 2 + size));
        pos = eol + 2 + size + 2;
      }
      body = Buffer.concat(parts);
    } else {
      if (buf.length < pos + length) return undefined;
      body = buf.subarray(pos, pos + length);
      pos += length;
    }
    this.buf = pos >= buf.length ? EMPTY : buf.subarray(pos);
    return { status, etag, close, body };
  }
}

function getRequest(path: string, headers: Record<string, string>): Buffer {
  let head = `GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  return Buffer.from(`${head}\r\n`, 'latin1');
}
function postRequest(path: string, headers: Record<string, string>, body: unknown): Buffer {
  const payload = Buffer.from(JSON.stringify(body));
  let head = `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${payload.length}\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  return Buffer.concat([Buffer.from(`${head}\r\n`, 'latin1'), payload]);
}

/** Runs `fn` over items with at most `limit` at a time. */
async function pool<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
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

interface Device {
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

interface FleetSetup {
  port: number;
  baselinePort: number;
  /** local source addresses the devices' sockets are spread over */
  addrs: string[];
  adminToken: string;
}

class Fleet {
  private cfg!: FleetSetup;
  private devices: Device[] = [];
  private armed: Device[] = [];
  /** while set, a poll that runs out (304) is sent again */
  private roundOpen = false;
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

  private newConn(port = this.cfg.port): Conn {
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

  /**
   * The first n devices each send a long poll with their ETag; returns once they are all sent.
   * Sockets dropped since (a round that timed out) are reconnected first, 200 at a time.
   */
  async arm({ n, waitS }: { n: number; waitS: number }) {
    this.armed = this.devices.slice(0, n);
    this.roundOpen = true;
    let failed = 0;
    let firstError: string | undefined;
    await pool(
      this.armed.filter((d) => !d.conn?.open),
      200,
      async (d) => {
        d.conn ??= this.newConn();
        await d.conn.connect().catch((err: Error) => {
          failed++;
          firstError ??= err.message;
        });
      },
    );
    for (const d of this.armed) {
      if (!d.etag) throw new Error(`device ${d.id} has no ETag`);
      d.arrivedAt = undefined;
      d.pollStatus = undefined;
      d.repolls = 0;
      if (!d.conn?.open) {
        d.pollStatus = 'could not connect';
        d.poll = Promise.resolve();
        continue;
      }
      const req = getRequest(`/device/v1/state?wait=${waitS}`, { authorization: `Bearer ${d.key}`, 'if-none-match': `"${d.etag}"` });
      const once = (): Promise<void> =>
        d.conn!.request(req, (waitS + 15) * 1000).then(
          (r) => {
            // its wait ran out before the change reached it: a device asks again at once
            if (r.status === 304 && this.roundOpen) {
              d.repolls!++;
              return once();
            }
            d.arrivedAt = hr();
            d.pollStatus = r.status;
            if (r.status === 200 && r.etag) d.etag = r.etag;
          },
          (err: Error) => {
            d.arrivedAt = hr();
            d.pollStatus = err.message;
          },
        );
      d.poll = once();
    }
    return { armed: n - failed, failed, firstError };
  }

  /** Creates the release through the API (timestamped here), then collects the polls' answers. */
  async release({ path, body, timeoutMs }: { path: string; body: unknown; timeoutMs: number }) {
    const conn = this.newConn();
    const req = postRequest(path, { authorization: `APIToken ${this.cfg.adminToken}` }, body);
    await conn.connect();
    await this.startProbe();
    const t0 = hr();
    let post: { status: number; ms: number; error?: string };
    try {
      // the POST is waited for even past the round's end: the next round must not overlap its work
      const r = await conn.request(req, POST_TIMEOUT_MS);
      post = { status: r.status, ms: round(msBetween(t0, hr()), 1), ...(r.status !== 201 ? { error: r.body.toString().slice(0, 300) } : {}) };
    } catch (err) {
      post = { status: 0, ms: round(msBetween(t0, hr()), 1), error: (err as Error).message };
    } finally {
      conn.forget();
    }
    // refused: nothing changed, the polls are still held (the bench fails)
    if (post.status !== 201) {
      await this.stopProbe();
      return { post };
    }
    return { post, ...(await this.collect({ t0: String(t0), timeoutMs })) };
  }

  /** How many armed polls have had their answer (the bench waits for the rest to be held). */
  answered() {
    return { answered: this.armed.filter((d) => d.pollStatus !== undefined).length };
  }

  /**
   * Waits until every armed poll was answered or the round's end (t0 + timeoutMs) passed;
   * latencies from t0 (hrtime, ns). Answers after the end count as not notified (`late`).
   */
  async collect({ t0, timeoutMs }: { t0: string; timeoutMs: number }) {
    await this.startProbe();
    const start = BigInt(t0);
    const end = start + BigInt(timeoutMs) * 1_000_000n;
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    const all = Promise.all(this.armed.map((d) => d.poll));
    let timer: NodeJS.Timeout | undefined;
    const left = Math.max(0, Number(end - hr()) / 1e6);
    const timedOut = await Promise.race([all.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), left)))]);
    clearTimeout(timer);
    this.roundOpen = false;
    const latencies: number[] = [];
    const other: Record<string, number> = {};
    let pending = 0;
    for (const d of this.armed) {
      if (d.pollStatus === undefined) {
        pending++;
        d.conn?.destroy('round timed out'); // its poll is dropped; it reconnects at the next arm
        continue;
      }
      const key = d.pollStatus !== 200 ? String(d.pollStatus) : d.arrivedAt! < start ? 'before the release' : d.arrivedAt! > end ? 'late' : undefined;
      if (key === undefined) latencies.push(msBetween(start, d.arrivedAt!));
      else other[key] = (other[key] ?? 0) + 1;
    }
    const s = stats(latencies);
    const repolls = this.armed.reduce((a, d) => a + (d.repolls ?? 0), 0);
    const probe = await this.stopProbe();
    return {
      devices: this.armed.length,
      notified: s.count,
      notAnswered: pending,
      otherAnswers: other,
      repolls,
      timedOut,
      latency: s,
      probe,
      fleetCpu: cpuShare(process.cpuUsage(cpu0), performance.now() - wall0),
    };
  }

  /**
   * While a round runs, one more connection asks the server something that needs neither the
   * database nor a device (an unknown /device/ path: 404) every 50 ms: how long the server takes
   * to answer anything at all meanwhile.
   */
  private probe: { stop: boolean; times: number[]; inflightSince: number | undefined; done: Promise<void>; conn: Conn } | undefined;
  private async startProbe(): Promise<void> {
    if (this.probe) return;
    const conn = this.newConn();
    await conn.connect();
    const req = getRequest('/device/v1/no-such-route', {});
    const probe: NonNullable<Fleet['probe']> = { stop: false, times: [], inflightSince: undefined, done: Promise.resolve(), conn };
    probe.done = (async () => {
      for (let i = 0; i < 100_000 && !probe.stop; i++) {
        probe.inflightSince = performance.now();
        await conn.request(req, 300_000).catch(() => undefined);
        probe.times.push(performance.now() - probe.inflightSince);
        probe.inflightSince = undefined;
        await sleep(50);
      }
    })();
    this.probe = probe;
  }
  private async stopProbe(): Promise<LatencyStats | undefined> {
    const probe = this.probe;
    this.probe = undefined;
    if (!probe) return undefined;
    probe.stop = true;
    // a probe still waiting for its answer counts with the time it has waited so far
    await Promise.race([probe.done, sleep(2000)]);
    const times = [...probe.times, ...(probe.inflightSince !== undefined ? [performance.now() - probe.inflightSince] : [])];
    probe.conn.forget();
    return stats(times);
  }

  close() {
    clearInterval(this.sweeper);
    for (const c of [...Conn.all]) c.forget();
    return { closed: true };
  }
}

async function fleetMain(): Promise<void> {
  const fleet = new Fleet();
  const commands = fleet as unknown as Record<string, (args: unknown) => unknown>;
  process.on('message', (m: { id: number; cmd: string; args: unknown }) => {
    void (async () => {
      try {
        const result = await commands[m.cmd]!.call(fleet, m.args);
        process.send!({ id: m.id, result });
      } catch (err) {
        process.send!({ id: m.id, error: (err as Error).stack ?? String(err) });
      }
    })();
  });
  // the bench process is gone (or dropped us): stop
  process.on('disconnect', () => process.exit(0));
}

// =================================================================================================
// the bench (server side)
// =================================================================================================

class FleetProcess {
  private nextId = 1;
  private readonly calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private constructor(readonly child: ChildProcess) {
    child.on('message', (m: { id: number; result?: unknown; error?: string }) => {
      const c = this.calls.get(m.id);
      if (!c) return;
      this.calls.delete(m.id);
      if (m.error) c.reject(new Error(`fleet: ${m.error}`));
      else c.resolve(m.result);
    });
    child.on('exit', (code, signal) => {
      for (const c of this.calls.values()) c.reject(new Error(`the fleet process exited (${signal ?? code})`));
      this.calls.clear();
    });
  }

  static start(): FleetProcess {
    const child = fork(fileURLToPath(import.meta.url), [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, BENCH_DEVICELINK_ROLE: 'fleet' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return new FleetProcess(child);
  }

  call<T>(cmd: string, args: unknown, timeoutMs = 120_000): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.calls.delete(id);
        reject(new Error(`fleet: ${cmd} took more than ${timeoutMs} ms`));
      }, timeoutMs);
      this.calls.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ id, cmd, args });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    await this.call('close', {}, 10_000).catch(() => undefined);
    this.child.disconnect?.();
    await Promise.race([exited, sleep(3000)]);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** Long polls waiting on this node, as the notifier counts them (`waiting()`), else from its map. */
function pendingWaits(n: DeviceNotifier): number | undefined {
  const waiting = (n as unknown as { waiting?: unknown }).waiting;
  if (typeof waiting === 'function') return Number((waiting as () => unknown).call(n));
  if (typeof waiting === 'number') return waiting;
  const waiters = (n as unknown as { waiters?: unknown }).waiters;
  if (!(waiters instanceof Map)) return undefined;
  let count = 0;
  for (const set of waiters.values()) count += (set as Set<unknown>).size;
  return count;
}

/** Machine-wide busy cores from /proc/stat between two snapshots. */
function cpuSnapshot(): { busy: number; total: number } {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3]! + (f[4] ?? 0);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** What the server process and the machine did between start() and stop(). */
function meter() {
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

function fdLimit(): number {
  const m = fs.readFileSync('/proc/self/limits', 'utf8').match(/^Max open files\s+(\d+|unlimited)/m);
  return !m || m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

const sysctl = (name: string) => {
  try {
    return fs
      .readFileSync(`/proc/sys/${name.replace(/\./g, '/')}`, 'utf8')
      .trim()
      .replace(/\s+/g, ' ');
  } catch {
    return 'unknown';
  }
};

interface Backend {
  name: 'sqlite' | 'postgres';
  adminUrl?: string;
}

/** A full GC (for the memory figures: what the held polls retain, not garbage not yet collected). */
let gcFn: (() => void) | undefined;
function fullGc(): void {
  if (!gcFn) {
    v8.setFlagsFromString('--expose-gc');
    gcFn = vm.runInNewContext('gc') as () => void;
  }
  gcFn();
}
const mb = (bytes: number) => round(bytes / 2 ** 20, 1);

async function runBackend(backend: Backend, index: number, first: boolean, budgetS: number) {
  const backendStarted = performance.now();
  const { openServer } = await import('../src/server/server.js');
  const { nowIso } = await import('../src/server/db/database.js');
  const { default: stringify } = await import('safe-stable-stringify');
  const { default: Fastify } = await import('fastify');

  const dataDir = await tempDir('bosun-bench-server-');
  const database = backend.adminUrl ? await freshPostgres(backend.adminUrl) : undefined;
  if (database) onCleanup(() => database.drop());
  const databaseUrl = database?.url;
  const server: Server = await openServer({ dataDir, ...(databaseUrl ? { databaseUrl } : {}), logger: false });
  let closed = false;
  const closeServer = async () => {
    if (closed) return;
    closed = true;
    // closing answers the polls still held; bounded in case connections linger
    await Promise.race([server.close(), sleep(20_000)]);
  };
  onCleanup(closeServer);
  const address = await server.app.listen({ host: '127.0.0.1', port: 0 });
  const port = Number(new URL(address).port);

  // the baseline: the same request answered with a 304 from memory by a bare fastify, same process
  const baseline = Fastify({ logger: false });
  const BASELINE_ETAG = 'e'.repeat(32);
  baseline.get('/device/v1/state', async (_req, reply) => reply.code(304).header('etag', `"${BASELINE_ETAG}"`).header('cache-control', 'no-cache').send());
  const baselineAddress = await baseline.listen({ host: '127.0.0.1', port: 0 });
  onCleanup(() => baseline.close());

  const fleet = FleetProcess.start();
  onCleanup(() => fleet.stop());
  // each backend its own source addresses: the previous one's closed sockets (TIME_WAIT) are not in the way
  const addrs = [1, 2, 3, 4].map((i) => `127.0.${10 + index}.${i}`);
  await fleet.call(
    'setup',
    { port, baselinePort: Number(new URL(baselineAddress).port), addrs, adminToken: server.firstAdminToken! } satisfies FleetSetup,
    30_000,
  );

  const admin = async (method: 'POST' | 'GET', url: string, payload?: object) => {
    const r = await server.app.inject({ method, url, headers: { authorization: `APIToken ${server.firstAdminToken!}` }, ...(payload ? { payload } : {}) });
    if (r.statusCode >= 300) throw new Error(`${method} ${url}: ${r.statusCode} ${r.body}`);
    return JSON.parse(r.body) as Record<string, unknown>;
  };
  const project = Number((await admin('POST', '/docker/projects/', { name: 'bench-fleet' })).id);
  const provisioningKey = String((await admin('POST', '/provisioning-keys/', { name: 'bench', project })).key);
  const maxSize = SIZES[SIZES.length - 1] ?? 0;
  const registerN = Math.min(REGISTER, Math.max(maxSize, CONNS));

  log(`[${backend.name}] registering ${registerN} devices through the API`);
  const registration = await fleet.call<{ registered: number; failed: number; firstError?: string; perSecond: number; latency: LatencyStats }>(
    'register',
    { provisioningKey, n: registerN, concurrency: 16 },
    180_000,
  );
  if (registration.failed) throw new Error(`${registration.failed} registrations failed: ${registration.firstError}`);
  log(
    `[${backend.name}]   ${registration.registered} registered, ${registration.perSecond}/s, ` +
      `p50 ${registration.latency.p50Ms} ms, p99 ${registration.latency.p99Ms} ms`,
  );
  let deviceCount = registration.registered;

  const connect = async (n: number) => {
    const c = await fleet.call<{ connected: number; failed: number; firstError?: string; seconds: number }>('connect', { n }, 180_000);
    if (c.failed) throw new Error(`${c.failed} devices could not connect: ${c.firstError}`);
    return c;
  };
  await connect(Math.min(deviceCount, Math.max(CONNS, SIZES[0] ?? 0)));

  // ---- 1. the 304 path ----
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
      `[${backend.name}]   ${kind}: ${r.perSecond} req/s, p50 ${r.latency.p50Ms} ms, p99 ${r.latency.p99Ms} ms ` +
        `(server CPU ${m.serverCpu}, fleet CPU ${r.fleetCpu}, machine ${m.machineBusyCores} cores)`,
    );
    return { ...r, ...m };
  };
  log(`[${backend.name}] 304 path: ${CONNS} keep-alive connections, ${WARMUP_S} s warm-up + ${LOAD_S} s`);
  const throughput = {
    baseline: await load('baseline'),
    device: await load('device'),
    ...(first ? { bosunNoDb: await load('bosunNoDb') } : {}),
  };

  // ---- 2. notify latency ----
  const notify: Record<string, unknown>[] = [];
  let round_ = 0;
  for (const size of SIZES) {
    if (deviceCount < size) {
      // the rest as rows, in the route's shapes
      const t = performance.now();
      const added = await insertDevices(server, project, size - deviceCount, nowIso, stringify);
      await fleet.call('add', { devices: added }, 60_000);
      deviceCount = size;
      log(`[${backend.name}] ${added.length} more devices written directly (${round((performance.now() - t) / 1000, 1)} s)`);
    }
    const c = await connect(size);
    log(`[${backend.name}] ${c.connected} devices connected (${c.seconds} s to connect the new ones and fetch their targets)`);
    const rounds: Record<string, unknown>[] = [];
    for (let r = 1; r <= ROUNDS; r++) {
      if (r > 1 && (performance.now() - backendStarted) / 1000 > budgetS) {
        log(`[${backend.name}] ${size} devices, round ${r}: skipped (past this backend's ${round(budgetS, 0)} s of the time budget)`);
        rounds.push({ round: r, skipped: 'time budget' });
        continue;
      }
      round_++;
      fullGc();
      const before = process.memoryUsage();
      const armStart = performance.now();
      const armed = await fleet.call<{ armed: number; failed: number; firstError?: string }>('arm', { n: size, waitS: WAIT_S }, 180_000);
      if (armed.failed) log(`[${backend.name}] ${armed.failed} devices could not reconnect: ${armed.firstError}`);
      const known = pendingWaits(server.notifier);
      if (known === undefined) await sleep(2000 + size / 2);
      else {
        // held, or already answered (a device whose target changed meanwhile gets its 200 at once)
        const settled = async () =>
          (pendingWaits(server.notifier) ?? 0) + (await fleet.call<{ answered: number }>('answered', {}, 10_000)).answered >= armed.armed;
        await waitFor(`${armed.armed} long polls held by the server`, settled, 120_000, 50);
      }
      const armS = round((performance.now() - armStart) / 1000, 2);
      fullGc();
      const held = process.memoryUsage();
      await sleep(300);
      const body = { version: `bench-${size}-${r}`, containers: [{ name: 'web', image: 'example/web', tag: `v${round_}` }] };
      const stop = meter();
      type Collected = {
        devices: number;
        notified: number;
        notAnswered: number;
        otherAnswers: Record<string, number>;
        repolls: number;
        latency: LatencyStats;
        probe?: LatencyStats;
        fleetCpu: number;
      };
      const a = await fleet.call<Partial<Collected> & { post: { status: number; ms: number; error?: string } }>(
        'release',
        { path: `/docker/projects/${project}/releases/`, body, timeoutMs: ROUND_TIMEOUT_MS },
        POST_TIMEOUT_MS + ROUND_TIMEOUT_MS + 30_000,
      );
      if (a.post.status !== 201) throw new Error(`${size} devices: POST …/releases/ → ${a.post.status} ${a.post.error ?? ''}`.trim());
      const res = a as Collected & { post: { status: number; ms: number } };
      const m = stop();
      const row = {
        round: r,
        devices: size,
        notified: res.notified,
        notAnswered: res.notAnswered,
        otherAnswers: res.otherAnswers,
        repolls: res.repolls,
        ...res.latency,
        // the server's answer time to a request needing neither the database nor a device, every 50 ms during the round
        probeP50Ms: res.probe?.p50Ms,
        probeMaxMs: res.probe?.maxMs,
        postMs: res.post.ms,
        armS,
        // the server process with the polls held, after a full GC, and what holding them added
        serverRssHeldMb: mb(held.rss),
        serverHeapHeldMb: mb(held.heapUsed),
        heapPerPollKb: round((held.heapUsed - before.heapUsed) / 1024 / size, 2),
        fleetCpu: res.fleetCpu,
        ...m,
      };
      rounds.push(row);
      log(
        `[${backend.name}] notify ${size} round ${r}: ${row.notified}/${size} notified, ` +
          `p50 ${row.p50Ms} ms, p99 ${row.p99Ms} ms, max ${row.maxMs} ms, first ${row.minMs} ms` +
          `; POST answered in ${res.post.ms} ms${res.repolls ? `; ${res.repolls} polls ran out and were sent again` : ''} ` +
          `(server CPU ${m.serverCpu}, ELU ${m.serverElu}; ` +
          `meanwhile the server answered a trivial request in ${res.probe?.p50Ms} ms median, ${res.probe?.maxMs} ms at worst)`,
      );
    }
    const done = rounds.filter((x): x is typeof x & LatencyStats & { notified: number } => !('skipped' in x));
    // latencies of the rounds that notified anyone (the others have none)
    const heard = done.filter((x) => x.notified > 0);
    const med = (f: (x: (typeof heard)[number]) => number) => (heard.length ? round(percentile(heard.map(f), 50), 1) : undefined);
    notify.push({
      devices: size,
      rounds,
      medianOfRounds: done.length
        ? {
            rounds: done.length,
            p50Ms: med((x) => x.p50Ms),
            p99Ms: med((x) => x.p99Ms),
            maxMs: med((x) => x.maxMs),
            firstMs: med((x) => x.minMs),
            /** the release POST's answer */
            createMs: round(
              percentile(
                done.map((x) => Number((x as Record<string, unknown>).postMs)),
                50,
              ),
              1,
            ),
            notifiedMin: Math.min(...done.map((x) => x.notified)),
            /** the slowest answer to the trivial probe request in any round */
            probeMaxMs: Math.max(...done.map((x) => Number((x as Record<string, unknown>).probeMaxMs ?? NaN))),
          }
        : undefined,
    });
  }

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

/** n more devices as rows, as `POST /device/register` writes them, with their materialised targets. */
async function insertDevices(server: Server, project: number, n: number, nowIso: () => string, stringify: (v: unknown) => string | undefined) {
  const now = nowIso();
  const devices: { id: string; key: string; unit_id: string }[] = [];
  for (let i = 0; i < n; i++) devices.push({ id: randomUUID(), key: `bsd_${randomBytes(32).toString('base64url')}`, unit_id: randomBytes(16).toString('hex') });
  const name = (unit: string) => unit.slice(0, 7);
  for (let i = 0; i < n; i += 500) {
    const chunk = devices.slice(i, i + 500);
    await server.db.transaction().execute(async (tx) => {
      await tx
        .insertInto('device')
        .values(
          chunk.map((d) => ({
            id: d.id,
            unit_id: d.unit_id,
            device_type: DEVICE_TYPE,
            name: name(d.unit_id),
            device_key_hash: sha256(d.key),
            created_at: now,
            last_seen_at: now,
            agent_version: null,
            state_json: null,
          })),
        )
        .execute();
      await tx
        .insertInto('project_device')
        .values(chunk.map((d) => ({ project_id: project, device_id: d.id })))
        .execute();
    });
  }
  // Their targets: the devices differ only by name (same project, same releases), so the target
  // the server builds for one, renamed, is every other's; checked against build() on samples, and
  // refresh() must find nothing to change (same JSON, same ETag).
  const template = await server.targets.build(devices[0]!.id);
  if (!template) throw new Error('no target for a device just written');
  const targetOf = (d: { unit_id: string }) => {
    const json = stringify({ ...template, name: name(d.unit_id) })!;
    return { json, etag: sha256(json).slice(0, 32) };
  };
  for (let i = 0; i < n; i += 500) {
    const rows = devices.slice(i, i + 500).map((d) => ({ device_id: d.id, ...targetOf(d) }));
    await server.db
      .insertInto('device_target')
      .values(rows.map((r) => ({ device_id: r.device_id, etag: r.etag, target_json: r.json, updated_at: now })))
      .execute();
  }
  for (const d of [devices[0]!, devices[n >> 1]!, devices[n - 1]!]) {
    const built = stringify(await server.targets.build(d.id));
    if (built !== targetOf(d).json) throw new Error(`the target written for a direct device differs from the server's: ${built} vs ${targetOf(d).json}`);
  }
  if ((await server.targets.refresh([devices[0]!.id, devices[n - 1]!.id])).length)
    throw new Error('refresh changed a directly written target: its ETag differs');
  return devices.map(({ id, key }) => ({ id, key }));
}

async function main(): Promise<Record<string, unknown>> {
  const backends: Backend[] = [];
  const wanted = (process.env.BENCH_DL_BACKENDS ?? 'sqlite,postgres').split(',');
  if (wanted.includes('sqlite')) backends.push({ name: 'sqlite' });
  const pgUrl = process.env.BENCH_DATABASE_URL;
  if (wanted.includes('postgres')) {
    if (pgUrl && /^postgres(ql)?:\/\//.test(pgUrl)) backends.push({ name: 'postgres', adminUrl: pgUrl });
    else log('deviceLink: no PostgreSQL ($BENCH_DATABASE_URL unset): SQLite only');
  }
  const maxSize = SIZES[SIZES.length - 1] ?? 0;
  const limit = fdLimit();
  const env = {
    openFilesLimit: limit,
    somaxconn: sysctl('net.core.somaxconn'),
    tcpMaxSynBacklog: sysctl('net.ipv4.tcp_max_syn_backlog'),
    ephemeralPorts: sysctl('net.ipv4.ip_local_port_range'),
  };
  log(
    `deviceLink: open files limit ${limit}, somaxconn ${env.somaxconn}, ephemeral ports ${env.ephemeralPorts}; ` +
      'source addresses 127.0.1x.1-4 (devices spread over 4)',
  );
  // this process holds the server side of every device's socket, the fleet process the client side
  if (limit < maxSize + 1000)
    throw new Error(`the open files limit (${limit}) is too low for ${maxSize} devices: raise it (ulimit -n ${maxSize * 2 + 2000}; scripts/bench.sh does)`);
  const [lo, hi] = env.ephemeralPorts.split(' ').map(Number);
  if (hi! - lo! < maxSize / 4 + 1000) log(`deviceLink: only ${hi! - lo!} ephemeral ports per source address`);

  const results = [];
  for (const [i, b] of backends.entries()) {
    log(`== deviceLink on ${b.name}`);
    results.push(await runBackend(b, i, i === 0, BUDGET_S / backends.length));
  }

  // the summary, like the other benches'
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
  log(lines.join('\n'));
  return {
    sizes: SIZES,
    rounds: ROUNDS,
    conns: CONNS,
    loadS: LOAD_S,
    waitS: WAIT_S,
    registeredThroughApi: Math.min(REGISTER, Math.max(maxSize, CONNS)),
    env,
    results,
    summary: lines.slice(1),
  };
}

if (ROLE === 'fleet') await fleetMain();
else await runBench('deviceLink', main);
