// /ping and the v1 endpoints of the balena Supervisor API, with the documented status codes and
// bodies (text where balena answers text).
import { Type } from '@sinclair/typebox';
import { NotFoundError, UpdatesLockedError, ValidationError } from '../../shared/errors.js';
import type { PowerAction } from '../host/host.js';
import { parseHostConfigPatch } from '../host/hostConfig.js';
import { legacyDeviceState } from '../state/deviceReports.js';
import { assertAppAccess, parseAppId, type Api } from './apiRequest.js';
import type { DevicePort } from './devicePort.js';
import { coversApp, forceFor } from './keyScope.js';

const NumericId = Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: '^[0-9]+$' })]);
const ForceBody = Type.Object({ force: Type.Optional(Type.Boolean()) });
const AppBody = Type.Object({ appId: Type.Optional(NumericId), force: Type.Optional(Type.Boolean()) });
const AppParams = Type.Object({ appId: Type.String() });

/** env vars that carry secrets are not shown (as balena's privateAppEnvVars) */
const PRIVATE_ENV = /^(BALENA|RESIN|BOSUN)_(SUPERVISOR_API_KEY|API_KEY)$/;

export const v1Routes = (device: DevicePort) => async (app: Api) => {
  const { actions } = device;

  app.get('/ping', async (_req, reply) => reply.type('text/plain').send('OK'));

  app.get('/v1/healthy', async (_req, reply) => {
    const problems = await device.healthProblems();
    if (!problems.length) return reply.code(200).send();
    device.log.logger.warn({ problems }, 'health check failed');
    return reply
      .code(500)
      .type('text/plain')
      .send(`Unhealthy: ${problems.join('; ')}`);
  });

  app.post('/v1/blink', async (_req, reply) => {
    device.host.blink();
    return reply.code(200).send();
  });

  app.post('/v1/update', { schema: { body: ForceBody } }, async (req, reply) => {
    device.requestUpdate(req.body.force === true, req.keyScope);
    return reply.code(204).send();
  });

  for (const action of ['reboot', 'shutdown'] as PowerAction[]) {
    app.post(`/v1/${action}`, { schema: { body: ForceBody } }, async (req, reply) => {
      try {
        // an app's force overrides its own lock only: another app holding its lock still refuses
        await actions.power(action, forceFor(req.keyScope, req.body.force === true));
      } catch (err) {
        if (err instanceof UpdatesLockedError) return reply.code(423).send({ Data: '', Error: err.message });
        throw err;
      }
      return reply.code(202).send({ Data: 'OK', Error: '' });
    });
  }

  app.post('/v1/purge', { schema: { body: AppBody } }, async (req, reply) => {
    const appId = parseAppId(req.body.appId);
    assertAppAccess(req, appId);
    await actions.purgeApp(appId, req.body.force === true);
    return reply.code(200).send({ Data: 'OK', Error: '' });
  });

  app.post('/v1/restart', { schema: { body: AppBody } }, async (req, reply) => {
    const appId = parseAppId(req.body.appId);
    assertAppAccess(req, appId);
    await actions.restartApp(appId, req.body.force === true);
    return reply.type('text/plain').send('OK');
  });

  app.post('/v1/regenerate-api-key', async (req, reply) => {
    const key = await device.regenerateApiKey(req.keyScope);
    return reply.type('text/plain').send(key);
  });

  app.get('/v1/device', async (req) => {
    const apps = Object.values(await device.currentState()).filter((a) => coversApp(req.keyScope, a.appId));
    return legacyDeviceState(apps, device.deviceFacts());
  });

  app.post('/v1/apps/:appId/stop', { schema: { params: AppParams, body: ForceBody } }, async (req) => {
    const { appId, service } = await singleService(device, req.params.appId, req);
    return { containerId: await actions.stopService(appId, service, req.body.force === true) };
  });

  app.post('/v1/apps/:appId/start', { schema: { params: AppParams } }, async (req) => {
    const { appId, service } = await singleService(device, req.params.appId, req);
    return { containerId: await actions.startService(appId, service) };
  });

  app.get('/v1/apps/:appId', { schema: { params: AppParams } }, async (req) => {
    const { appId, service } = await singleService(device, req.params.appId, req);
    const c = await actions.serviceContainer(appId, service);
    const spec = device.desiredService(appId, service);
    const env = Object.fromEntries(Object.entries(spec?.config.environment ?? {}).filter(([k]) => !PRIVATE_ENV.test(k)));
    return { appId, commit: c.commit, releaseId: c.releaseId, containerId: c.id, imageId: spec?.config.image ?? c.imageId, env };
  });

  // the proxy's password is written to the host, never answered (any app's key may read this)
  app.get('/v1/device/host-config', async () => {
    const { network } = await device.host.readConfig();
    if (!network.proxy) return { network };
    const { password: _secret, ...proxy } = network.proxy;
    return { network: { ...network, proxy } };
  });

  app.patch('/v1/device/host-config', async (req, reply) => {
    const patch = parseHostConfigPatch(req.body);
    await device.host.applyConfig(patch);
    device.log.info(`Host configuration changed (${Object.keys(patch.network).join(', ')})`);
    return reply.type('text/plain').send('OK');
  });
};

/** The v1 app endpoints are for single-container apps only (400 otherwise, as documented). */
async function singleService(device: DevicePort, raw: string, req: Parameters<typeof assertAppAccess>[0]) {
  const appId = parseAppId(raw);
  assertAppAccess(req, appId);
  // balena answers 400 for an unknown app on these v1 routes
  const containers = await device.actions.containersOf(appId).catch((err: Error) => {
    throw err instanceof NotFoundError ? new ValidationError('appId', err.message, 'request') : err;
  });
  const names = new Set([...containers.map((c) => c.serviceName), ...device.desiredServiceNames(appId)]);
  if (names.size !== 1) {
    throw new ValidationError(
      'appId',
      names.size ? 'This endpoint is only supported for single-container apps; use the v2 API' : `Application ID does not exist: ${appId}`,
      'request',
    );
  }
  return { appId, service: [...names][0]! };
}
