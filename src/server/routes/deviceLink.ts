// The device link, server side, and the devices resource (provisioning and registration:
// provisioning.ts).
//
// - GET /device/v1/state (device key): the device's target state with its ETag; `If-None-Match` →
//   304; `?wait=<s>` holds the request until the target changes (on any server node: the notifier)
//   or the time is up. PATCH /device/v1/state: the device's current-state report, which also moves
//   the deployments of its releases along (downloading, applying, succeeded, failed).
// - /dongle/devices/ (user API): devices as AutoPi shows them, with `docker_releases`, online status
//   and a summary of their last report.
//
// The /device/ routes do not take user tokens (app.ts leaves them to this file): each one
// authenticates its caller with its device key in an onRequest hook, before its body is even parsed.
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import { PostgresAdapter, type Transaction } from 'kysely';
import { NotFoundError, UnauthorizedError } from '../../shared/errors.js';
import { TargetStateSchema, type TargetState } from '../../shared/targetState.js';
import { deviceKeyAuth } from '../auth/deviceKeys.js';
import { nowIso, type ServerDb, type ServerTables } from '../db/database.js';
import type { ServerApp, ServerContext } from '../app.js';
import { BatchedLoader } from '../targets/batchedLoader.js';
import { scopeReport } from '../targets/reportScope.js';
import { StatusError } from '../httpErrors.js';
import { recordDeployment } from '../deployments/recordDeployment.js';
import { SETTLE_STATES } from '../../shared/deployments.js';

/** A device is online when it was heard from within this time. */
export const ONLINE_WINDOW_MS = 2 * 60_000;
/** Devices holding a long poll are marked seen this often (they are there, just waiting). */
const HOLDING_SEEN_EVERY_MS = 60_000;
export const MAX_WAIT_S = 300;
const MAX_ERROR_TEXT = 4000;
/** Bounds of a state report (the agent sends what changed: far less) and of the state kept from them. */
const MAX_REPORT_BYTES = 512 * 1024;
const MAX_REPORT_APPS = 256;
const MAX_REPORT_SERVICES = 256;
const MAX_STATE_CHARS = 1024 * 1024;

const Nullable = <T extends TSchema>(t: T) => Type.Union([Type.Null(), t]);

// ---- schemas ------------------------------------------------------------------------------------

const UPDATE_STATUSES = ['done', 'downloading', 'downloaded', 'applying changes', 'aborted'] as const;
const ReleaseId = Nullable(Type.Integer({ minimum: 1 }));
const Text = (maxLength: number) => Nullable(Type.String({ maxLength }));
/** One service of an app, as the agent reports it (`ServiceReport` of src/agent/state/currentState.ts). */
const ServiceReport = Type.Object(
  {
    status: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    releaseId: Type.Optional(ReleaseId),
    image: Type.Optional(Type.String({ maxLength: 1000 })),
    imageId: Type.Optional(Text(200)),
    containerId: Type.Optional(Text(200)),
    createdAt: Type.Optional(Text(100)),
    downloadProgress: Type.Optional(Nullable(Type.Number({ minimum: 0, maximum: 100 }))),
    error: Type.Optional(Text(MAX_ERROR_TEXT)),
  },
  { additionalProperties: false },
);
/** One app (`AppReport`); every field optional: a report carries what changed. */
const AppReport = Type.Object(
  {
    appId: Type.Optional(Type.Integer({ minimum: 1 })),
    appUuid: Type.Optional(Type.String({ maxLength: 200 })),
    appName: Type.Optional(Type.String({ maxLength: 200 })),
    releaseId: Type.Optional(ReleaseId),
    commit: Type.Optional(Text(200)),
    targetReleaseId: Type.Optional(ReleaseId),
    targetCommit: Type.Optional(Text(200)),
    updateStatus: Type.Optional(Type.Union(UPDATE_STATUSES.map((s) => Type.Literal(s)))),
    /** of the applied release (src/shared/deployments.ts); null while none is applied */
    settle: Type.Optional(Nullable(Type.Union(SETTLE_STATES.map((s) => Type.Literal(s))))),
    /** when present, the app's whole set of services (`null` for a service: it is gone) */
    services: Type.Optional(Type.Record(Type.String({ minLength: 1, maxLength: 200 }), Nullable(ServiceReport), { maxProperties: MAX_REPORT_SERVICES })),
  },
  { additionalProperties: false },
);
const StateReport = Type.Object(
  {
    agent_version: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    /** keyed by app id (the project's id); `null` removes an app the device no longer runs */
    apps: Type.Optional(Type.Record(Type.String({ pattern: '^[1-9][0-9]{0,15}$' }), Nullable(AppReport), { additionalProperties: false, maxProperties: MAX_REPORT_APPS })),
  },
  { additionalProperties: false },
);
type StateReport = Static<typeof StateReport>;
type AppReport = Static<typeof AppReport>;
type ServiceReport = Static<typeof ServiceReport>;

/** What `device.state_json` holds: the merged reports. */
interface StoredState {
  reported_at: string;
  apps: Record<string, StoredApp>;
}
type StoredApp = Omit<AppReport, 'services'> & { services?: Record<string, ServiceReport> };

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

// ---- the routes ---------------------------------------------------------------------------------

export const deviceLinkRoutes = (ctx: ServerContext) => async (app: ServerApp) => {
  const { db } = ctx;
  const presence = new Presence(db, (err) => app.log.error(err));
  const targetRows = new BatchedLoader(async (ids: string[]) => {
    const rows = await db.selectFrom('device_target').select(['device_id', 'etag', 'target_json']).where('device_id', 'in', ids).execute();
    return new Map(rows.map((r) => [r.device_id, r]));
  });
  /** the device's stored target; a device deleted meanwhile has none (its key is gone: 401) */
  const storedTarget = async (deviceId: string): Promise<StoredTarget> => {
    const row = await targetRows.load(deviceId);
    if (!row) throw new UnauthorizedError('unknown device key');
    return row;
  };
  const polls = new Set<LongPoll>();
  let closing = false;
  app.addHook('preClose', async () => {
    // held polls answer now (304: the device asks again, of another node or after the restart),
    // before the server stops listening and waits for its connections to go idle
    closing = true;
    presence.stop();
    for (const p of polls) p.stop.abort();
    await Promise.all([...polls].map((p) => p.answered));
  });

  // the caller of a /device/ route, set by its onRequest hook
  const { onRequest: deviceAuth, deviceOf } = deviceKeyAuth(db);

  // -- the device link (device keys) --
  const linkTags = ['device link'];
  app.get(
    '/device/v1/state',
    {
      onRequest: deviceAuth,
      schema: {
        tags: linkTags,
        description:
          'The device\'s target state (`Authorization: Bearer <device key>`) with its ETag. With `If-None-Match` equal to it: 304, or with `wait`, ' +
          'held until the target changes (200) or `wait` seconds pass (304).',
        security: [],
        querystring: Type.Object({ wait: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_WAIT_S })) }),
        headers: Type.Object({ 'if-none-match': Type.Optional(Type.String()) }),
        // (the stored JSON is sent as it is: a string body is never re-serialised)
        response: { 200: TargetStateSchema, 304: Type.Null({ description: 'the target is the one the device has' }) },
      },
    },
    async (req, reply) => {
      const device = deviceOf(req);
      const known = etagsOf(req.headers['if-none-match']);
      let etag = device.etag ?? (await ensureTarget(ctx, device.id));
      if (!matches(known, etag)) return sendTarget(reply, ctx, await storedTarget(device.id));
      const waitS = req.query.wait ?? 0;
      if (waitS === 0 || closing) return notModified(reply, etag);

      let settle!: () => void;
      const poll: LongPoll = { stop: new AbortController(), answered: new Promise<void>((resolve) => (settle = resolve)) };
      reply.raw.once('close', settle);
      const onClose = () => {
        if (!reply.raw.writableFinished) poll.stop.abort();
      };
      reply.raw.once('close', onClose);
      if (reply.raw.destroyed || req.raw.socket?.destroyed) {
        // hung up already (while being authenticated): its 'close' came and went
        poll.stop.abort();
        settle();
      }
      polls.add(poll);
      presence.hold(device.id);
      const deadline = Date.now() + waitS * 1000;
      let changed: StoredTarget | undefined;
      try {
        for (;;) {
          const left = deadline - Date.now();
          if (left <= 0 || poll.stop.signal.aborted) break;
          // listen first, then look: a change between the two is not missed
          const cancel = new AbortController();
          const relay = () => cancel.abort();
          poll.stop.signal.addEventListener('abort', relay, { once: true });
          const woken = ctx.notifier.waitForChange(device.id, left, cancel.signal);
          try {
            const now = await storedTarget(device.id);
            if (!matches(known, now.etag)) {
              changed = now;
              break;
            }
            if (!(await woken)) break; // the time is up, or the poll was stopped
          } finally {
            cancel.abort();
            poll.stop.signal.removeEventListener('abort', relay);
          }
        }
      } finally {
        presence.release(device.id);
        reply.raw.off('close', onClose);
        // tracked until the answer is out (its 'close'), so that closing the server waits for it
        void poll.answered.then(() => polls.delete(poll));
      }
      if (poll.stop.signal.aborted && !closing) {
        // the device hung up: nobody to answer
        reply.hijack();
        reply.raw.destroy();
        return reply;
      }
      if (changed) return sendTarget(reply, ctx, changed);
      return notModified(reply, etag);
    },
  );

  app.patch(
    '/device/v1/state',
    {
      onRequest: deviceAuth,
      schema: {
        tags: linkTags,
        description:
          'The device reports its current state (`Authorization: Bearer <device key>`): apps keyed by app id (the project), each with the release ' +
          'applied, the target release, the update status and the services (status, download progress, error). A report carries what changed: ' +
          'apps not named keep their last report; `null` removes an app. Only the apps of the device\'s target count, with its own releases ' +
          '(listed for it, deployed on it, or given by its target): others are dropped.',
        security: [],
        body: StateReport,
      },
      bodyLimit: MAX_REPORT_BYTES,
    },
    async (req, reply) => {
      await applyReport(ctx, deviceOf(req).id, req.body);
      return reply.code(204).send();
    },
  );

  // -- the devices resource (user API) --
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

// ---- target state -------------------------------------------------------------------------------

interface LongPoll {
  /** aborted when the device hangs up or the server closes */
  stop: AbortController;
  /** settles when the answer has gone out (or the connection closed) */
  answered: Promise<unknown>;
}

/** The tags of `If-None-Match` (quotes and weak markers dropped). */
export function etagsOf(header: string | undefined): string[] {
  if (!header) return [];
  return header
    .split(',')
    .map((t) => t.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1'))
    .filter(Boolean);
}

const matches = (known: string[], etag: string) => known.includes(etag) || known.includes('*');

const notModified = (reply: FastifyReply, etag: string) => reply.code(304).header('etag', `"${etag}"`).header('cache-control', 'no-cache').send();

/**
 * A device without a materialised target (none was built yet) gets one now; one whose target cannot
 * be built (deviceTargets.ts: a registry row stored unchecked) is told to come back (503).
 */
async function ensureTarget(ctx: ServerContext, deviceId: string): Promise<string> {
  await ctx.targets.refresh([deviceId]);
  const etag = await ctx.targets.etag(deviceId);
  if (etag !== undefined) return etag;
  const device = await ctx.db.selectFrom('device').select('target_error').where('id', '=', deviceId).executeTakeFirst();
  if (!device) throw new UnauthorizedError('unknown device key'); // deleted meanwhile
  throw new StatusError(503, `the target of this device cannot be built now: ${device.target_error ?? 'it changed meanwhile'}`);
}

type StoredTarget = { etag: string; target_json: string };

/** The stored target with its registry passwords opened: the body is exactly the TargetState JSON; the ETag, the stored form's. */
const sendTarget = (reply: FastifyReply, ctx: ServerContext, row: StoredTarget) =>
  reply.code(200).header('etag', `"${row.etag}"`).header('cache-control', 'no-cache').type('application/json; charset=utf-8').send(ctx.targets.served(row.target_json));

// ---- presence -----------------------------------------------------------------------------------

/**
 * `last_seen_at` of the devices holding a long poll on this node, which are there all along: written
 * every HOLDING_SEEN_EVERY_MS (a call marks its device seen as it is authenticated: deviceKeys.ts).
 */
class Presence {
  private readonly holding = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: ServerDb,
    private readonly onError: (err: Error) => void,
  ) {}

  hold(id: string): void {
    this.holding.set(id, (this.holding.get(id) ?? 0) + 1);
    if (!this.timer) {
      this.timer = setInterval(() => void this.refresh().catch(this.onError), HOLDING_SEEN_EVERY_MS);
      this.timer.unref();
    }
  }

  release(id: string): void {
    const n = (this.holding.get(id) ?? 1) - 1;
    if (n > 0) this.holding.set(id, n);
    else this.holding.delete(id);
    if (!this.holding.size) this.stop();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async refresh(): Promise<void> {
    const ids = [...this.holding.keys()];
    const now = nowIso();
    for (let i = 0; i < ids.length; i += 500) {
      await this.db.updateTable('device').set({ last_seen_at: now }).where('id', 'in', ids.slice(i, i + 500)).execute();
    }
  }
}

// ---- reports and deployments --------------------------------------------------------------------

type Tx = Transaction<ServerTables>;

async function applyReport(ctx: ServerContext, deviceId: string, report: StateReport): Promise<void> {
  const postgres = ctx.db.getExecutor().adapter instanceof PostgresAdapter;
  await ctx.db.transaction().execute(async (tx) => {
    // one report at a time per device (on PostgreSQL the row lock orders reports from two nodes)
    const query = tx.selectFrom('device').select('state_json').where('id', '=', deviceId);
    const row = await (postgres ? query.forUpdate() : query).executeTakeFirst();
    if (!row) throw new UnauthorizedError('unknown device key');
    const stored = row.state_json ? (JSON.parse(row.state_json) as StoredState) : undefined;
    const target = await serverTarget(tx, deviceId);
    // only the apps of its own target, with its own releases (reportScope.ts): what it no longer runs leaves its state
    const state: StoredState = { reported_at: nowIso(), apps: Object.fromEntries(Object.entries(stored?.apps ?? {}).filter(([appId]) => target?.apps[appId])) };
    const touched: string[] = [];
    for (const [appId, app] of Object.entries(await scopeReport(tx, deviceId, report.apps ?? {}, target))) {
      if (app === null) {
        delete state.apps[appId];
        continue;
      }
      // fields merge into the app's last report; `services`, when sent, is the whole set
      const { services, ...fields } = app;
      const merged: StoredApp = { ...state.apps[appId], ...fields };
      if (services) merged.services = Object.fromEntries(Object.entries(services).filter((e): e is [string, ServiceReport] => e[1] !== null));
      state.apps[appId] = merged;
      touched.push(appId);
    }
    const json = JSON.stringify(state);
    if (json.length > MAX_STATE_CHARS) throw new StatusError(413, `the device's state would take more than ${MAX_STATE_CHARS} characters: report fewer services or shorter errors`);
    await tx
      .updateTable('device')
      .set({ state_json: json, ...(report.agent_version !== undefined ? { agent_version: report.agent_version } : {}) })
      .where('id', '=', deviceId)
      .execute();
    if (!touched.length) return;
    for (const appId of touched) await recordDeployment(tx, deviceId, Number(appId), state.apps[appId]!, target);
  });
}

async function serverTarget(tx: Tx, deviceId: string): Promise<TargetState | undefined> {
  const row = await tx.selectFrom('device_target').select('target_json').where('device_id', '=', deviceId).executeTakeFirst();
  return row ? (JSON.parse(row.target_json) as TargetState) : undefined;
}

// ---- the devices resource -----------------------------------------------------------------------

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
