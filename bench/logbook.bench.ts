// The telemetry logbook under load, per storage backend (SQLite; PostgreSQL when $BENCH_DATABASE_URL
// names a cluster we may create databases in, as scripts/bench.sh arranges with scripts/postgres.sh):
//
// 1. Ingest: one real Bosun server (`openServer`, logger off, in this process on 127.0.0.1) and one
//    registered device uploading N points of one float field (one per second, 1M by default) through
//    `POST /device/v1/telemetry` over HTTP keep-alive, in batches of B points, C requests in flight.
//    The request bodies are serialised before the clock starts (the client shares the process).
//    Baseline, same run and backend: the same rows written by a batched kysely INSERT … VALUES into
//    the point table of a fresh database (B rows per transaction): what storing them costs without
//    HTTP, JSON, validation and the per-minute aggregates. (On PostgreSQL the server inserts with
//    `unnest` arrays instead of VALUES lists, so it can be faster than this baseline.)
// 2. Query: `GET /logbook/storage/read/` over HTTP for the device's 1M points, bucketed AVG at 1h
//    (the goal), 10m and 1d from the hour; 1h from a range start that is not on a minute (the
//    partial minutes at both ends come from the points); 30s (sub-minute buckets: every point is
//    read). Q runs each after one warm-up; the buckets' counts and mean are checked against the data.
//
// Knobs: BENCH_LB_BACKENDS (sqlite,postgres), BENCH_LB_POINTS (1000000), BENCH_LB_BATCH (5000),
// BENCH_LB_CONCURRENCY (4), BENCH_LB_QUERY_REPS (20).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { inChunks, openServerDb } from '../src/server/db/database.js';
import { openServer } from '../src/server/server.js';
import { intEnv, log, onCleanup, percentile, round, runBench, tempDir } from './lib.js';
import { type Backend, freshDatabaseUrl, wantedBackends } from './serverBackends.js';

const POINTS = intEnv('BENCH_LB_POINTS', 1_000_000);
const BATCH = intEnv('BENCH_LB_BATCH', 5000);
const CONCURRENCY = intEnv('BENCH_LB_CONCURRENCY', 4);
const QUERY_REPS = intEnv('BENCH_LB_QUERY_REPS', 20);
const FIELD = 'obd.bat.voltage';
/** the first point: 2020-07-09T00:00:00Z; one per second after it */
const START_MS = Date.UTC(2020, 6, 9);
const value = (i: number) => 12 + Math.round(Math.sin(i / 997) * 1000) / 1000;

/** The upload bodies, serialised up front. */
function uploadBodies(): Buffer[] {
  const bodies: Buffer[] = [];
  for (let first = 0; first < POINTS; first += BATCH) {
    const points = [];
    for (let i = first; i < Math.min(POINTS, first + BATCH); i++)
      points.push({ field: FIELD, type: 'float', value: value(i), ts: new Date(START_MS + i * 1000).toISOString() });
    bodies.push(Buffer.from(JSON.stringify({ batch: `b${first}`, points })));
  }
  return bodies;
}

function post(agent: http.Agent, port: number, key: string, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/device/v1/telemetry',
        agent,
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': body.length },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          res.statusCode === 200 ? resolve(res.statusCode) : reject(new Error(`upload: ${res.statusCode} ${Buffer.concat(chunks).toString().slice(0, 300)}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function ingest(port: number, key: string, bodies: Buffer[]): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < bodies.length) await post(agent, port, key, bodies[next++]!);
    }),
  );
  const ms = performance.now() - started;
  agent.destroy();
  return ms;
}

/** The baseline: the same rows through a batched kysely INSERT, nothing else. */
async function baselineInsert(backend: Backend): Promise<number> {
  const dataDir = await tempDir('bosun-bench-logbook-base-');
  const url = await freshDatabaseUrl(backend);
  const db = await openServerDb({ ...(url ? { url } : {}), sqliteFile: `${dataDir}/baseline.sqlite` });
  onCleanup(() => db.destroy());
  await db
    .insertInto('device')
    .values({
      id: 'd',
      unit_id: 'd',
      device_type: 't',
      name: 'd',
      device_key_hash: 'h',
      created_at: '',
      last_seen_at: null,
      agent_version: null,
      state_json: null,
    })
    .execute();
  const { id: series } = await db
    .insertInto('telemetry_series')
    .values({ device_id: 'd', field: FIELD, type: 'float' })
    .returning('id')
    .executeTakeFirstOrThrow();
  const started = performance.now();
  for (let first = 0; first < POINTS; first += BATCH) {
    const rows: { series_id: number; ts: number; num: number }[] = [];
    for (let i = first; i < Math.min(POINTS, first + BATCH); i++) rows.push({ series_id: series, ts: (START_MS + i * 1000) * 1000, num: value(i) });
    // (a float point's columns, in statements of at most 32766 / 3 rows, as the server writes them on SQLite)
    await db.transaction().execute(async (tx) => {
      for (const chunk of inChunks(rows, 10_000)) await tx.insertInto('telemetry_point').values(chunk).execute();
    });
  }
  return performance.now() - started;
}

async function timeQueries(base: string, token: string, deviceId: string) {
  const get = async (params: Record<string, string>) => {
    const started = performance.now();
    const res = await fetch(`${base}/logbook/storage/read/?${new URLSearchParams({ device_id: deviceId, field: FIELD, field_type: 'float', ...params })}`, {
      headers: { authorization: `APIToken ${token}` },
    });
    const body = (await res.json()) as { value: number }[];
    if (res.status !== 200) throw new Error(`read: ${res.status} ${JSON.stringify(body)}`);
    return { ms: performance.now() - started, body };
  };
  const endIso = new Date(START_MS + POINTS * 1000).toISOString();
  const all = { from_utc: new Date(START_MS).toISOString(), to_utc: endIso };
  // the data's own figures: every point counted once, and their mean
  const counts = (await get({ ...all, aggregation: 'count', interval: '1d' })).body.reduce((s, b) => s + b.value, 0);
  if (counts !== POINTS) throw new Error(`count over the range: ${counts}, expected ${POINTS}`);
  let sum = 0;
  for (let i = 0; i < POINTS; i++) sum += value(i);
  const sums = (await get({ ...all, aggregation: 'sum', interval: '1h' })).body.reduce((s, b) => s + b.value, 0);
  if (Math.abs(sums / POINTS - sum / POINTS) > 1e-6) throw new Error(`mean over the range: ${sums / POINTS}, expected ${sum / POINTS}`);

  const cases: [string, Record<string, string>][] = [
    ['avg 1h', { ...all, aggregation: 'avg', interval: '1h' }],
    ['avg 10m', { ...all, aggregation: 'avg', interval: '10m' }],
    ['avg 1d', { ...all, aggregation: 'avg', interval: '1d' }],
    ['avg 1h, range start not on a minute', { from_utc: new Date(START_MS + 30_500).toISOString(), to_utc: endIso, aggregation: 'avg', interval: '1h' }],
    ['avg 30s (sub-minute: every point read)', { ...all, aggregation: 'avg', interval: '30s' }],
  ];
  const out = [];
  for (const [name, params] of cases) {
    const { body } = await get(params); // warm-up
    const times: number[] = [];
    for (let r = 0; r < QUERY_REPS; r++) times.push((await get(params)).ms);
    out.push({
      query: name,
      buckets: body.length,
      medianMs: round(percentile(times, 50), 1),
      p95Ms: round(percentile(times, 95), 1),
      minMs: round(Math.min(...times), 1),
    });
    log(`  ${name}: ${body.length} buckets, median ${round(percentile(times, 50), 1)} ms, p95 ${round(percentile(times, 95), 1)} ms`);
  }
  return out;
}

async function runBackend(backend: Backend) {
  log(`== logbook on ${backend.name}: ${POINTS} points, batches of ${BATCH}, ${CONCURRENCY} in flight`);
  const baselineMs = await baselineInsert(backend);
  const baselineRate = Math.round(POINTS / (baselineMs / 1000));
  log(`  baseline (batched kysely INSERT): ${round(baselineMs / 1000, 2)} s, ${baselineRate} points/s`);

  const dataDir = await tempDir('bosun-bench-logbook-');
  const url = await freshDatabaseUrl(backend);
  const server = await openServer({ dataDir, ...(url ? { databaseUrl: url } : {}), logger: false });
  onCleanup(() => server.close());
  await server.app.listen({ host: '127.0.0.1', port: 0 });
  const port = (server.app.server.address() as AddressInfo).port;
  const token = server.firstAdminToken!;
  const admin = async (urlPath: string, payload: object) => {
    const r = await server.app.inject({ method: 'POST', url: urlPath, headers: { authorization: `APIToken ${token}` }, payload });
    if (r.statusCode >= 300) throw new Error(`${urlPath}: ${r.statusCode} ${r.body}`);
    return JSON.parse(r.body) as Record<string, string>;
  };
  const provisioning = (await admin('/provisioning-keys/', { name: 'bench' })).key!;
  const reg = await server.app.inject({
    method: 'POST',
    url: '/device/register',
    headers: { authorization: `Bearer ${provisioning}` },
    payload: { uuid: 'b'.repeat(32), device_type: 'bench' },
  });
  const device = JSON.parse(reg.body) as { id: string; device_key: string };

  const bodies = uploadBodies();
  const ingestMs = await ingest(port, device.device_key, bodies);
  const ingestRate = Math.round(POINTS / (ingestMs / 1000));
  log(
    `  ingest through POST /device/v1/telemetry: ${round(ingestMs / 1000, 2)} s, ` +
      `${ingestRate} points/s (${round(ingestRate / baselineRate, 2)} of the baseline)`,
  );
  const queries = await timeQueries(`http://127.0.0.1:${port}`, token, device.id);
  return {
    backend: backend.name,
    ingest: { points: POINTS, batch: BATCH, concurrency: CONCURRENCY, seconds: round(ingestMs / 1000, 2), pointsPerSecond: ingestRate },
    baseline: { seconds: round(baselineMs / 1000, 2), pointsPerSecond: baselineRate },
    ratio: round(ingestRate / baselineRate, 2),
    queries,
  };
}

async function main(): Promise<Record<string, unknown>> {
  const backends = wantedBackends('BENCH_LB_BACKENDS', 'logbook');
  const results = [];
  for (const b of backends) results.push(await runBackend(b));
  const summary = results.map(
    (r) =>
      `${r.backend}: ingest ${r.ingest.pointsPerSecond} points/s (goal ≥ 100000; baseline ${r.baseline.pointsPerSecond}, ratio ${r.ratio}); ` +
      `avg 1h over ${POINTS} points: median ${r.queries[0]!.medianMs} ms (goal < 100 ms)`,
  );
  log(['', ...summary].join('\n'));
  return { points: POINTS, batch: BATCH, concurrency: CONCURRENCY, queryReps: QUERY_REPS, results, summary };
}

await runBench('logbook', main);
