// The devices resource of the operator API: /dongle/devices/, devices as AutoPi shows them, with
// `docker_releases`, online status and a summary of their last state report (devices/stateReports.ts).
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { NotFoundError } from '../../shared/errors.js';
import type { ServerDb, ServerTables } from '../db/database.js';
import type { StoredState } from '../devices/stateReports.js';
import type { ServerApp, ServerContext } from '../app.js';

/** A device is online when it was heard from within this time. */
export const ONLINE_WINDOW_MS = 2 * 60_000;

const Nullable = <T extends TSchema>(t: T) => Type.Union([Type.Null(), t]);

const StateSummary = Type.Object({
  reported_at: Type.String(),
  /** `idle` (every app done), `updating`, or `error` (an app aborted or a service reports an error) */
  status: Type.Union([Type.Literal('idle'), Type.Literal('updating'), Type.Literal('error')]),
  apps: Type.Record(
    Type.String(),
    Type.Object({
      release: Nullable(Type.Integer()),
      target_release: Nullable(Type.Integer()),
      update_status: Nullable(Type.String()),
      services: Type.Record(
        Type.String(),
        Type.Object({ status: Nullable(Type.String()), download_progress: Nullable(Type.Number()), error: Nullable(Type.String()) }),
      ),
    }),
  ),
});
type StateSummary = Static<typeof StateSummary>;

const Device = Type.Object({
  id: Type.String(),
  unit_id: Type.String(),
  name: Type.String(),
  device_type: Type.String(),
  online: Type.Boolean(),
  last_seen: Nullable(Type.String()),
  agent_version: Nullable(Type.String()),
  /** ids of the releases deployed successfully on it */
  docker_releases: Type.Array(Type.Integer()),
  projects: Type.Array(Type.Integer()),
  state: Nullable(StateSummary),
  /** why the server could not build its latest target (it keeps the last one it had) */
  target_error: Nullable(Type.String()),
});
type DeviceOut = Static<typeof Device>;
const DevicePatch = Type.Object({ name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) }, { additionalProperties: false });
const DeviceParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });

export const deviceRoutes = (ctx: ServerContext) => async (app: ServerApp) => {
  const { db } = ctx;
  const tags = ['dongle'];
  app.get('/dongle/devices/', { schema: { tags, response: { 200: Type.Array(Device) } } }, async () => listDevices(db));
  app.get('/dongle/devices/:id/', { schema: { tags, params: DeviceParams, response: { 200: Device } } }, async (req) => findDevice(db, req.params.id));
  app.patch('/dongle/devices/:id/', { schema: { tags, params: DeviceParams, body: DevicePatch, response: { 200: Device } } }, async (req) => {
    await findDevice(db, req.params.id);
    if (req.body.name !== undefined) {
      await db.updateTable('device').set({ name: req.body.name }).where('id', '=', req.params.id).execute();
      await ctx.targets.refresh([req.params.id]); // the name is part of its target
    }
    return findDevice(db, req.params.id);
  });
  app.delete('/dongle/devices/:id/', { schema: { tags, params: DeviceParams } }, async (req, reply) => {
    const { numDeletedRows } = await db.deleteFrom('device').where('id', '=', req.params.id).executeTakeFirst();
    if (!numDeletedRows) throw new NotFoundError(`no device ${req.params.id}`);
    await ctx.notifier.notify([req.params.id]); // a poll it holds ends (401: its key is gone)
    return reply.code(204).send();
  });
};

type DeviceRow = Pick<ServerTables['device'], 'id' | 'unit_id' | 'name' | 'device_type' | 'last_seen_at' | 'agent_version' | 'state_json' | 'target_error'>;
const deviceColumns = ['id', 'unit_id', 'name', 'device_type', 'last_seen_at', 'agent_version', 'state_json', 'target_error'] as const;

async function findDevice(db: ServerDb, id: string): Promise<DeviceOut> {
  const row = await db.selectFrom('device').select(deviceColumns).where('id', '=', id).executeTakeFirst();
  if (!row) throw new NotFoundError(`no device ${id}`);
  return (await devicesOut(db, [row]))[0]!;
}

async function listDevices(db: ServerDb): Promise<DeviceOut[]> {
  const rows = await db.selectFrom('device').select(deviceColumns).orderBy('created_at').orderBy('id').execute();
  return devicesOut(db, rows);
}

async function devicesOut(db: ServerDb, rows: DeviceRow[]): Promise<DeviceOut[]> {
  if (!rows.length) return [];
  const releases = new Map<string, number[]>();
  const projects = new Map<string, number[]>();
  for (let i = 0; i < rows.length; i += 500) {
    const ids = rows.slice(i, i + 500).map((r) => r.id);
    const deployed = await db
      .selectFrom('deployment')
      .select(['device_id', 'release_id'])
      .where('state', '=', 'succeeded')
      .where('device_id', 'in', ids)
      .orderBy('release_id')
      .execute();
    for (const d of deployed) releases.set(d.device_id, [...(releases.get(d.device_id) ?? []), d.release_id]);
    const member = await db.selectFrom('project_device').select(['device_id', 'project_id']).where('device_id', 'in', ids).orderBy('project_id').execute();
    for (const m of member) projects.set(m.device_id, [...(projects.get(m.device_id) ?? []), m.project_id]);
  }
  const now = Date.now();
  return rows.map((r) => ({
    id: r.id,
    unit_id: r.unit_id,
    name: r.name,
    device_type: r.device_type,
    online: r.last_seen_at !== null && now - Date.parse(r.last_seen_at) < ONLINE_WINDOW_MS,
    last_seen: r.last_seen_at,
    agent_version: r.agent_version,
    docker_releases: releases.get(r.id) ?? [],
    projects: projects.get(r.id) ?? [],
    state: r.state_json ? summary(JSON.parse(r.state_json) as StoredState) : null,
    target_error: r.target_error,
  }));
}

/** The last report, summed up. */
export function summary(state: StoredState): StateSummary {
  const apps: StateSummary['apps'] = {};
  let status: StateSummary['status'] = 'idle';
  for (const [appId, a] of Object.entries(state.apps)) {
    const services: StateSummary['apps'][string]['services'] = {};
    for (const [name, s] of Object.entries(a.services ?? {})) {
      services[name] = { status: s.status ?? null, download_progress: s.downloadProgress ?? null, error: s.error ?? null };
      if (s.error) status = 'error';
    }
    apps[appId] = { release: a.releaseId ?? null, target_release: a.targetReleaseId ?? null, update_status: a.updateStatus ?? null, services };
    if (a.updateStatus === 'aborted') status = 'error';
    else if (status === 'idle' && ((a.updateStatus && a.updateStatus !== 'done') || a.settle === 'settling')) status = 'updating';
  }
  return { reported_at: state.reported_at, status, apps };
}
