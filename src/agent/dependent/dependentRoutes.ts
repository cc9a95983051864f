// balena's dependent-apps API on the device API (reference: balena-dependent-apps.md): the gateway
// app lists its dependent apps and downloads their assets, provisions and manages dependent devices
// and posts their logs. The work is in dependents.ts, loaded on the first of these calls.
import fs from 'node:fs';
import { Type } from '@sinclair/typebox';
import { MAX_LOG_MESSAGE } from '../../shared/deviceLogs.js';
import { ValidationError } from '../../shared/errors.js';
import { parseAppId, type Api } from '../api/apiRequest.js';
import type { DevicePort } from '../api/devicePort.js';

const NumericId = Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: '^[0-9]+$' })]);
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([Type.Null(), t]);
const StrMap = Type.Record(Type.String({ minLength: 1, maxLength: 200 }), Type.String({ maxLength: 10_000 }), { maxProperties: 500 });
const UuidParams = Type.Object({ uuid: Type.String({ maxLength: 100 }) });

const ProvisionBody = Type.Object({ appId: NumericId, device_type: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })) });
const UpdateBody = Type.Object({
  status: Type.Optional(Nullable(Type.String({ maxLength: 200 }))),
  is_online: Type.Optional(Type.Union([Type.Null(), Type.Boolean()])),
  commit: Type.Optional(Nullable(Type.String({ maxLength: 200 }))),
  download_progress: Type.Optional(Type.Union([Type.Null(), Type.Number({ minimum: 0, maximum: 100 })])),
  environment: Type.Optional(StrMap),
  config: Type.Optional(StrMap),
});
const LogBody = Type.Object({
  message: Type.String({ maxLength: MAX_LOG_MESSAGE }),
  /** seconds (as balena's example) or milliseconds since the epoch, or RFC 3339 */
  timestamp: Type.Optional(Type.Union([Type.Number({ minimum: 0 }), Type.String({ maxLength: 40 })])),
});

export const dependentRoutes = (device: DevicePort) => async (app: Api) => {
  app.get('/v1/dependent-apps', async (req) => (await device.dependents()).apps(req.keyScope));

  app.get(
    '/v1/dependent-apps/:appId/assets/:commit',
    { schema: { params: Type.Object({ appId: Type.String(), commit: Type.String({ maxLength: 200 }) }) } },
    async (req, reply) => {
      const file = await (await device.dependents()).assets(req.keyScope, parseAppId(req.params.appId), req.params.commit);
      // opened before answering: a tar pruned a moment later is still served whole
      const fd = await new Promise<number>((resolve, reject) => fs.open(file, 'r', (err, f) => (err ? reject(err) : resolve(f))));
      return reply.type('application/x-tar').send(fs.createReadStream('', { fd }));
    },
  );

  app.get('/v1/devices', async (req) => (await device.dependents()).devices(req.keyScope));

  app.post('/v1/devices', { schema: { body: ProvisionBody } }, async (req, reply) => {
    const created = await (await device.dependents()).provision(req.keyScope, parseAppId(req.body.appId), req.body.device_type);
    return reply.code(201).send(created);
  });

  app.get('/v1/devices/:uuid', { schema: { params: UuidParams } }, async (req) => (await device.dependents()).device(req.keyScope, req.params.uuid));

  app.put('/v1/devices/:uuid', { schema: { params: UuidParams, body: UpdateBody } }, async (req) => {
    const { status, is_online, commit, download_progress, environment, config } = req.body;
    return (await device.dependents()).update(req.keyScope, req.params.uuid, { status, is_online, commit, download_progress, environment, config });
  });

  app.post('/v1/devices/:uuid/logs', { schema: { params: UuidParams, body: LogBody } }, async (req, reply) => {
    await (await device.dependents()).log(req.keyScope, req.params.uuid, req.body.message, logTime(req.body.timestamp));
    return reply.code(202).send();
  });

  // not in balena's API: how a restart request for a dependent device (the control plane relays it
  // with the device key) reaches the gateway app, as the restart hook
  app.post('/v1/devices/:uuid/restart', { schema: { params: UuidParams } }, async (req, reply) => {
    await (await device.dependents()).restart(req.keyScope, req.params.uuid);
    return reply.code(202).send();
  });
};

function logTime(raw: number | string | undefined): Date {
  if (raw === undefined) return new Date();
  const ms = typeof raw === 'number' ? (raw < 1e12 ? raw * 1000 : raw) : Date.parse(raw);
  const at = new Date(ms);
  if (!Number.isFinite(ms) || Number.isNaN(at.getTime()))
    throw new ValidationError('/timestamp', 'expected seconds or milliseconds since the epoch, or an RFC 3339 time', 'request body');
  return at;
}
