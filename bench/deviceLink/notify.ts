// Scenario 2, notify latency: per size (more devices written as rows when needed), every device
// holds `GET /device/v1/state?wait=60` with its ETag; a release is created for the project through
// the API (by the fleet, which timestamps it); for every device, the time until its 200 arrived.
// ROUNDS rounds per size, a new release each; a round past this backend's share of the time budget
// is skipped (never the first of a size).
import { performance } from 'node:perf_hooks';
import type { DeviceNotifier } from '../../src/server/wakeups/notifier.js';
import { log, percentile, round, sleep, waitFor } from '../lib.js';
import { POST_TIMEOUT_MS, ROUND_TIMEOUT_MS, ROUNDS, SIZES, WAIT_S } from './knobs.js';
import { fullGc, type LatencyStats, mb, meter } from './measure.js';
import { connectDevices, insertDevices, type Rig } from './setup.js';

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

/**
 * The notify rounds of every size, from `deviceCount` devices known to the fleet; `backendStarted`
 * (performance.now()) and `budgetS` bound the rounds after the first of each size.
 */
export async function notifyRounds(rig: Rig, backendName: string, deviceCount: number, backendStarted: number, budgetS: number) {
  const { server, fleet, project, nowIso, stringify } = rig;
  const notify: Record<string, unknown>[] = [];
  let round_ = 0;
  for (const size of SIZES) {
    if (deviceCount < size) {
      // the rest as rows, in the route's shapes
      const t = performance.now();
      const added = await insertDevices(server, project, size - deviceCount, nowIso, stringify);
      await fleet.call('add', { devices: added }, 60_000);
      deviceCount = size;
      log(`[${backendName}] ${added.length} more devices written directly (${round((performance.now() - t) / 1000, 1)} s)`);
    }
    const c = await connectDevices(fleet, size);
    log(`[${backendName}] ${c.connected} devices connected (${c.seconds} s to connect the new ones and fetch their targets)`);
    const rounds: Record<string, unknown>[] = [];
    for (let r = 1; r <= ROUNDS; r++) {
      if (r > 1 && (performance.now() - backendStarted) / 1000 > budgetS) {
        log(`[${backendName}] ${size} devices, round ${r}: skipped (past this backend's ${round(budgetS, 0)} s of the time budget)`);
        rounds.push({ round: r, skipped: 'time budget' });
        continue;
      }
      round_++;
      fullGc();
      const before = process.memoryUsage();
      const armStart = performance.now();
      const armed = await fleet.call<{ armed: number; failed: number; firstError?: string }>('arm', { n: size, waitS: WAIT_S }, 180_000);
      if (armed.failed) log(`[${backendName}] ${armed.failed} devices could not reconnect: ${armed.firstError}`);
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
        `[${backendName}] notify ${size} round ${r}: ${row.notified}/${size} notified, ` +
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
  return notify;
}
