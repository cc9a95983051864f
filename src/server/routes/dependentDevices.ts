// Dependent devices (services/dependentDevices.ts), as operators see and manage them:
// /dependent-devices/, /dependent-devices/{uuid}, and their logs (their gateway's log lines for
// them: the device log store, read and tailed as device logs are).
import { Type, type TSchema } from '@sinclair/typebox';
import { DEPENDENT_UUID_PATTERN } from '../../shared/dependents.js';
import { LogTails } from '../logs/logTail.js';
import type { ServerApp, ServerContext } from '../app.js';
import { Line, MAX_READ_LINES } from './deviceLogs.js';

const Nullable = <T extends TSchema>(t: T) => Type.Union([Type.Null(), t]);
const StrMap = Type.Record(Type.String({ minLength: 1, maxLength: 200 }), Type.String({ maxLength: 10_000 }), { maxProperties: 500 });

const DependentDevice = Type.Object({
  id: Type.Integer(),
  uuid: Type.String(),
  name: Type.String(),
  note: Nullable(Type.String()),
  device_type: Type.String(),
  app: Type.Integer({ description: 'its dependent app' }),
  gateway: Type.String({ description: 'the id of the gateway device that provisioned it' }),
  commit: Nullable(Type.String({ description: 'what its gateway last reported it runs' })),
  target_commit: Nullable(Type.String({ description: "what it should run: the commit it is pinned to, else its app's newest" })),
  pinned: Type.Boolean(),
  status: Nullable(Type.String()),
  is_online: Nullable(Type.Boolean()),
  last_seen: Nullable(Type.String({ description: 'when its gateway last reported it' })),
  download_progress: Nullable(Type.Number()),
  environment: Nullable(Type.Record(Type.String(), Type.String(), { description: 'as its gateway reported it' })),
  target_environment: Type.Record(Type.String(), Type.String()),
  config: Nullable(Type.Record(Type.String(), Type.String(), { description: 'as its gateway reported it' })),
  target_config: Type.Record(Type.String(), Type.String()),
  created_at: Type.String(),
});
const DevicePatch = Type.Object(
  {
    target_commit: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 200, description: 'pin to a commit of its app; null unpins' }))),
    environment: Type.Optional(StrMap),
    config: Type.Optional(StrMap),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    note: Type.Optional(Nullable(Type.String({ maxLength: 10_000 }))),
  },
  { additionalProperties: false },
);
const UuidParams = Type.Object({ uuid: Type.String({ pattern: DEPENDENT_UUID_PATTERN }) });
const Since = Type.Optional(Type.String({ format: 'date-time', description: 'only lines printed at or after this time (RFC 3339)' }));

export const dependentDeviceRoutes = (ctx: ServerContext) => async (app: ServerApp) => {
  const { dependentDevices: devices, deviceLogs } = ctx;
  const tails = new LogTails({ logs: deviceLogs, notifier: ctx.notifier, exists: (t) => devices.exists(t.dependent!), onError: (err) => app.log.error(err) });
  app.addHook('preClose', () => tails.close());
  const tags = ['dependent devices'];

  app.get(
    '/dependent-devices/',
    {
      schema: {
        tags,
        summary: 'List dependent devices',
        description: 'Devices behind gateways, oldest first: by dependent app, by gateway device, online (as their gateway reported) or not.',
        querystring: Type.Object({
          app: Type.Optional(Type.Integer({ minimum: 1 })),
          gateway: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
          online: Type.Optional(Type.Boolean()),
        }),
        response: { 200: Type.Array(DependentDevice) },
      },
    },
    async (req) => devices.list(req.query),
  );
  app.get(
    '/dependent-devices/:uuid',
    {
      schema: {
        tags,
        summary: 'Get a dependent device',
        description: 'Its gateway, what it runs against what it should run, and what its gateway last reported.',
        params: UuidParams,
        response: { 200: DependentDevice },
      },
    },
    async (req) => devices.get(req.params.uuid),
  );
  app.patch(
    '/dependent-devices/:uuid',
    {
      schema: {
        tags,
        summary: 'Change a dependent device',
        description:
          'Pin it to a commit of its app (`target_commit`; null follows the newest again: 400 for a commit none of its releases has), set its ' +
          'environment and config (what it should have), its name or note. Its gateway gets the change at once.',
        params: UuidParams,
        body: DevicePatch,
        response: { 200: DependentDevice },
      },
    },
    async (req) => devices.patch(req.params.uuid, req.body),
  );
  app.delete(
    '/dependent-devices/:uuid',
    {
      schema: {
        tags,
        summary: 'Delete a dependent device',
        description: 'It leaves its gateway’s target (the gateway app is told) and its logs go.',
        params: UuidParams,
      },
    },
    async (req, reply) => {
      const gateway = await devices.remove(req.params.uuid);
      await deviceLogs.forget(gateway, req.params.uuid);
      return reply.code(204).send();
    },
  );
  app.get(
    '/dependent-devices/:uuid/logs/',
    {
      schema: {
        tags,
        summary: "Read a dependent device's logs",
        description: 'The newest lines its gateway sent for it (since a time), oldest first.',
        params: UuidParams,
        querystring: Type.Object({ since: Since, limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_READ_LINES, default: 100 })) }),
        response: { 200: Type.Array(Line) },
      },
    },
    async (req) => {
      const { uuid } = req.params;
      const { limit = 100, ...filter } = req.query;
      return deviceLogs.read(await devices.gatewayOf(uuid), { ...filter, dependent: uuid, limit });
    },
  );
  app.get(
    '/dependent-devices/:uuid/logs/tail/',
    {
      schema: {
        tags,
        summary: "Follow a dependent device's logs",
        description:
          'Server-Sent Events: the newest `limit` lines, then each new one as it arrives. Each event’s `id` is the line’s; with `Last-Event-ID`, the lines after that one.',
        params: UuidParams,
        querystring: Type.Object({ since: Since, limit: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_READ_LINES, default: 100 })) }),
        headers: Type.Object({ 'last-event-id': Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })) }),
      },
    },
    async (req, reply) => {
      const { uuid } = req.params;
      const gateway = await devices.gatewayOf(uuid);
      const { limit = 100, ...filter } = req.query;
      const after = req.headers['last-event-id'];
      await tails.serve(reply, { deviceId: gateway, dependent: uuid, ...filter, backlog: limit, ...(after !== undefined ? { afterId: Number(after) } : {}) });
      return reply;
    },
  );
};
