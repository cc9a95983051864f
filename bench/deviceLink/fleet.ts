// The simulated fleet (child process): its devices (fleetDevices.ts) plus the notify rounds' side:
// every device holds a long poll, the release is created through the API and timestamped here, the
// answers are collected, and a probe measures how long the server takes to answer anything meanwhile.
import { performance } from 'node:perf_hooks';
import { round, sleep } from '../lib.js';
import { POST_TIMEOUT_MS } from './knobs.js';
import { cpuShare, hr, type LatencyStats, msBetween, stats } from './measure.js';
import { type Device, FleetDevices, pool } from './fleetDevices.js';
import { type Conn, getRequest, postRequest } from './rawHttp.js';

export class Fleet extends FleetDevices {
  private armed: Device[] = [];
  /** while set, a poll that runs out (304) is sent again */
  private roundOpen = false;

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
}

export async function fleetMain(): Promise<void> {
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
