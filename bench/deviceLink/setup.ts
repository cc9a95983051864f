// One backend's rig for the device link bench: a Bosun server on a fresh database (in this process,
// on 127.0.0.1), the bare fastify baseline, the fleet process set up against both, a project and its
// provisioning key; then the devices: registered through the API by the fleet, or written as rows.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Server } from '../../src/server/server.js';
import { log, onCleanup, sleep, tempDir } from '../lib.js';
import { type Backend, freshDatabaseUrl } from '../serverBackends.js';
import type { FleetSetup } from './fleetDevices.js';
import { FleetProcess } from './fleetProcess.js';
import { CONNS, DEVICE_TYPE, REGISTER, SIZES } from './knobs.js';
import type { LatencyStats } from './measure.js';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

export type Rig = Awaited<ReturnType<typeof startRig>>;

export async function startRig(backend: Backend, index: number) {
  const { openServer } = await import('../../src/server/server.js');
  const { nowIso } = await import('../../src/server/db/database.js');
  const { default: stringify } = await import('safe-stable-stringify');
  const { default: Fastify } = await import('fastify');

  const dataDir = await tempDir('bosun-bench-server-');
  const databaseUrl = await freshDatabaseUrl(backend);
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
  return { server, baseline, closeServer, fleet, project, provisioningKey, nowIso, stringify };
}

/** Registers devices through the API (as many as the knobs say), from the fleet; returns its figures. */
export async function registerDevices({ fleet, provisioningKey }: Rig, backendName: string) {
  const maxSize = SIZES[SIZES.length - 1] ?? 0;
  const registerN = Math.min(REGISTER, Math.max(maxSize, CONNS));

  log(`[${backendName}] registering ${registerN} devices through the API`);
  const registration = await fleet.call<{ registered: number; failed: number; firstError?: string; perSecond: number; latency: LatencyStats }>(
    'register',
    { provisioningKey, n: registerN, concurrency: 16 },
    180_000,
  );
  if (registration.failed) throw new Error(`${registration.failed} registrations failed: ${registration.firstError}`);
  log(
    `[${backendName}]   ${registration.registered} registered, ${registration.perSecond}/s, ` +
      `p50 ${registration.latency.p50Ms} ms, p99 ${registration.latency.p99Ms} ms`,
  );
  return registration;
}

/** Has the fleet open a socket for each of the first n devices and fetch its target once. */
export async function connectDevices(fleet: FleetProcess, n: number) {
  const c = await fleet.call<{ connected: number; failed: number; firstError?: string; seconds: number }>('connect', { n }, 180_000);
  if (c.failed) throw new Error(`${c.failed} devices could not connect: ${c.firstError}`);
  return c;
}

/** n more devices as rows, as `POST /device/register` writes them, with their materialised targets. */
export async function insertDevices(server: Server, project: number, n: number, nowIso: () => string, stringify: (v: unknown) => string | undefined) {
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
