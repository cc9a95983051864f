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
//
// The modules, under bench/deviceLink/: knobs.ts (these knobs), the fleet process (fleet.ts,
// fleetDevices.ts, rawHttp.ts; driven over IPC through fleetProcess.ts), the server side (setup.ts,
// throughput.ts and notify.ts for the two scenarios, backend.ts per backend), measure.ts, summary.ts.
import fs from 'node:fs';
import { runBackend } from './deviceLink/backend.js';
import { fleetMain } from './deviceLink/fleet.js';
import { BUDGET_S, CONNS, LOAD_S, REGISTER, ROLE, ROUNDS, SIZES, WAIT_S } from './deviceLink/knobs.js';
import { summaryLines } from './deviceLink/summary.js';
import { log, runBench } from './lib.js';
import { wantedBackends } from './serverBackends.js';

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

async function main(): Promise<Record<string, unknown>> {
  const backends = wantedBackends('BENCH_DL_BACKENDS', 'deviceLink');
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

  const lines = summaryLines(results);
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
