// The v2 endpoints of the balena Supervisor API that apps use today.
import { Type } from '@sinclair/typebox';
import { ConflictError, NotFoundError, ValidationError } from '../../shared/errors.js';
import { applicationsByName, stateStatus } from '../state/deviceReports.js';
import { BALENA_API_VERSION } from '../../shared/version.js';
import { assertAppAccess, parseAppId, type Api } from './apiRequest.js';
import type { DevicePort } from './devicePort.js';
import { coversApp } from './keyScope.js';

const AppParams = Type.Object({ appId: Type.String() });
const ServiceBody = Type.Object({
  serviceName: Type.Optional(Type.String({ minLength: 1 })),
  imageId: Type.Optional(Type.Union([Type.Integer(), Type.String({ minLength: 1 })])),
  force: Type.Optional(Type.Boolean()),
});
const ForceBody = Type.Object({ force: Type.Optional(Type.Boolean()) });
const ContainerIdQuery = Type.Object({
  serviceName: Type.Optional(Type.String()),
  service: Type.Optional(Type.String()),
  apikey: Type.Optional(Type.String()),
});

export const v2Routes = (device: DevicePort) => async (app: Api) => {
  const { actions } = device;

  /** The app id of the path, checked against the caller's key. */
  const appOf = (raw: string, req: Parameters<typeof assertAppAccess>[0]) => {
    const appId = parseAppId(raw);
    assertAppAccess(req, appId);
    return appId;
  };

  /** `serviceName`, or balena's `imageId` (Bosun matches it against the image reference). */
  const serviceOf = async (appId: number, body: { serviceName?: string; imageId?: number | string } | undefined) => {
    if (body?.serviceName) return body.serviceName;
    if (body?.imageId === undefined) throw new ValidationError('serviceName', 'Missing serviceName (or imageId) in the body', 'request body');
    const containers = await actions.containersOf(appId);
    const match = containers.find(
      (c) => c.imageId === String(body.imageId) || device.desiredService(appId, c.serviceName)?.config.image === String(body.imageId),
    );
    if (!match) throw new NotFoundError(`Service not found for imageId ${body.imageId}`);
    return match.serviceName;
  };

  for (const [verb, run] of [
    ['restart-service', (a: number, s: string, force: boolean) => actions.restartService(a, s, force)],
    ['stop-service', (a: number, s: string, force: boolean) => actions.stopService(a, s, force)],
    ['start-service', (a: number, s: string) => actions.startService(a, s)],
  ] as const) {
    app.post(`/v2/applications/:appId/${verb}`, { schema: { params: AppParams, body: ServiceBody } }, async (req, reply) => {
      const appId = appOf(req.params.appId, req);
      await run(appId, await serviceOf(appId, req.body), req.body.force === true);
      return reply.type('text/plain').send('OK');
    });
  }

  app.post('/v2/applications/:appId/restart', { schema: { params: AppParams, body: ForceBody } }, async (req, reply) => {
    await actions.restartApp(appOf(req.params.appId, req), req.body.force === true);
    return reply.type('text/plain').send('OK');
  });

  app.post('/v2/applications/:appId/purge', { schema: { params: AppParams, body: ForceBody } }, async (req, reply) => {
    await actions.purgeApp(appOf(req.params.appId, req), req.body.force === true);
    return reply.type('text/plain').send('OK');
  });

  app.get('/v2/applications/state', async (req) => {
    const apps = Object.values(await device.currentState()).filter((a) => coversApp(req.keyScope, a.appId));
    return applicationsByName(apps);
  });

  app.get('/v2/applications/:appId/state', { schema: { params: AppParams } }, async (req) => {
    const appId = appOf(req.params.appId, req);
    const report = (await device.currentState())[String(appId)];
    if (!report) throw new ConflictError(`Application ID does not exist: ${appId}`);
    return {
      commit: report.commit,
      local: {
        [appId]: {
          services: Object.fromEntries(
            Object.entries(report.services).map(([name, s]) => [name, { status: s.status, releaseId: s.releaseId, download_progress: s.downloadProgress }]),
          ),
        },
      },
    };
  });

  app.get('/v2/state/status', async (req) => {
    const apps = Object.values(await device.currentState()).filter((a) => coversApp(req.keyScope, a.appId));
    return stateStatus(apps, device.applying());
  });

  app.get('/v2/version', async () => ({ status: 'success', version: BALENA_API_VERSION }));

  app.get('/v2/device/name', async () => ({ status: 'success', deviceName: device.deviceName() }));

  app.get('/v2/device/vpn', async () => ({ status: 'success', vpn: { enabled: false, connected: false } }));

  app.get('/v2/containerId', { schema: { querystring: ContainerIdQuery } }, async (req, reply) => {
    const wanted = req.query.serviceName ?? req.query.service;
    const apps = Object.values(await device.currentState()).filter((a) => coversApp(req.keyScope, a.appId));
    const services: Record<string, string> = {};
    for (const a of apps) for (const [name, s] of Object.entries(a.services)) if (s.containerId) services[name] ??= s.containerId;
    if (wanted === undefined) return { status: 'success', services };
    // balena answers 503 here for an unknown service; apps check for it
    if (!services[wanted]) return reply.code(503).send({ status: 'failed', message: 'Could not find service with that name' });
    return { status: 'success', containerId: services[wanted] };
  });

  // an app's key: only its own app's volumes, and only once the app has left the target
  app.get('/v2/cleanup-volumes', async (req) => {
    const removed = await actions.cleanupVolumes((appId) => coversApp(req.keyScope, appId));
    return { status: 'success', removed };
  });
};
