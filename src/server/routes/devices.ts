// The devices resource of the operator API: /dongle/devices/, devices as AutoPi shows them, with
// `docker_releases`, online status and a summary of their last state report (devices/stateReports.ts).
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { UnikReportSchema } from '../../shared/deviceLink.js';
import type { StoredState } from '../devices/stateReports.js';
import type { DeviceListing } from '../services/devices.js';
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
  /** its UniK images and instances (the agent's UniK API), as last reported; null before any report of them */
  unik: Nullable(UnikReportSchema),
});
type DeviceOut = Static<typeof Device>;
const DevicePatch = Type.Object({ name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) }, { additionalProperties: false });
const DeviceParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });

export const deviceRoutes = (ctx: ServerContext) => async (app: ServerApp) => {
  const { devices } = ctx;
  const tags = ['dongle'];
  app.get('/dongle/devices/', { schema: { tags, response: { 200: Type.Array(Device) } } }, async () => (await devices.list()).map(deviceOut));
  app.get('/dongle/devices/:id/', { schema: { tags, params: DeviceParams, response: { 200: Device } } }, async (req) =>
    deviceOut(await devices.get(req.params.id)),
  );
  app.patch('/dongle/devices/:id/', { schema: { tags, params: DeviceParams, body: DevicePatch, response: { 200: Device } } }, async (req) => {
    if (req.body.name !== undefined) await devices.rename(req.params.id, req.body.name);
    return deviceOut(await devices.get(req.params.id));
  });
  app.delete('/dongle/devices/:id/', { schema: { tags, params: DeviceParams } }, async (req, reply) => {
    await devices.remove(req.params.id);
    return reply.code(204).send();
  });
};

function deviceOut({ row: r, releases, projects }: DeviceListing): DeviceOut {
  const stored = r.state_json ? (JSON.parse(r.state_json) as StoredState) : undefined;
  return {
    id: r.id,
    unit_id: r.unit_id,
    name: r.name,
    device_type: r.device_type,
    online: r.last_seen_at !== null && Date.now() - Date.parse(r.last_seen_at) < ONLINE_WINDOW_MS,
    last_seen: r.last_seen_at,
    agent_version: r.agent_version,
    docker_releases: releases,
    projects,
    state: stored ? summary(stored) : null,
    target_error: r.target_error,
    unik: stored?.unik ?? null,
  };
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
