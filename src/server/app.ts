// The control plane's HTTP API (fastify + TypeBox, OpenAPI at /openapi.json): AutoPi-compatible
// resources under /docker/ and /dongle/, API tokens under /auth/. Two encapsulated contexts, each with
// its own auth hook, so that a route is protected unless it opts out: the operator API (user API
// tokens) and the device link (/device/…, device keys). Only the API description is outside both.
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { UnauthorizedError } from '../shared/errors.js';
import type { ApiTokens } from './auth/apiTokens.js';
import type { SecretBox } from './auth/secretBox.js';
import type { ServerDb } from './db/database.js';
import type { Logbook } from './logbook/logbook.js';
import type { DeviceLogs } from './logs/deviceLogs.js';
import type { DeviceTargets } from './targets/deviceTargets.js';
import type { DeviceNotifier } from './wakeups/notifier.js';
import type { Services } from './services/index.js';
import { dashboard } from './dashboard.js';
import { dashboardConfigRoute, type MapTiles } from './mapTiles.js';
import type { FleetTimings } from './devices/fleetFeed.js';
import { sendError } from './httpErrors.js';
import { dependentAppRoutes } from './routes/dependentApps.js';
import { dependentDeviceRoutes } from './routes/dependentDevices.js';
import { dependentLinkRoutes } from './routes/dependentLink.js';
import { deviceCommandRoutes } from './routes/deviceCommands.js';
import { deviceTargetRoutes } from './routes/deviceTarget.js';
import { deviceRoutes } from './routes/devices.js';
import { stateReportRoutes } from './routes/stateReports.js';
import { deviceKeyAuth, type DeviceKeyAuth } from './auth/deviceKeys.js';
import { deviceLogRoutes, logUploadRoutes } from './routes/deviceLogs.js';
import { executeRoutes } from './routes/execute.js';
import { fleetEventRoutes } from './routes/fleetEvents.js';
import { logbookRoutes, telemetryUploadRoutes } from './routes/logbook.js';
import { projectRoutes } from './routes/projects.js';
import { provisioningKeyRoutes, registrationRoutes } from './routes/provisioning.js';
import { registryRoutes } from './routes/registries.js';
import { releaseRoutes } from './routes/releases.js';
import { supervisorProxyRoutes } from './routes/supervisorProxy.js';
import { tokenRoutes } from './routes/tokens.js';
import { jsonSyntaxProblem } from './jsonSyntax.js';
import { typeBoxCompiler } from './validation.js';
import { BOSUN_VERSION } from '../shared/version.js';

export type ServerApp = FastifyInstance<any, any, any, any, TypeBoxTypeProvider>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The server's parts and its services (services/index.ts), built once in server.ts. */
export interface ServerContext extends Services {
  db: ServerDb;
  tokens: ApiTokens;
  secrets: SecretBox;
  /** a change that can alter a device's target goes through a service (services/targetWrites.ts), which refreshes it */
  targets: DeviceTargets;
  notifier: DeviceNotifier;
  /** the devices' logs: uploads, reads, live tails */
  deviceLogs: DeviceLogs;
  logbook: Logbook;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Its context's auth hook does not run: the route checks its caller itself, or is public on purpose. */
    public?: boolean;
  }
}

type RoutePlugin = (app: ServerApp) => Promise<void>;

/**
 * The operator API (user API tokens), an encapsulated context: every route registered in it needs a
 * token unless it opts out (`config: { public: true }`).
 */
export const operatorApi = (tokens: ApiTokens, routes: RoutePlugin[]) => async (app: ServerApp) => {
  app.addHook('onRequest', async (req) => {
    if (!req.routeOptions.config.public) await authenticate(tokens, req);
  });
  for (const r of routes) await app.register(r);
};

/**
 * The device link (/device/…, device keys), an encapsulated context: every route registered in it
 * needs a device key (checked before the body is parsed; `deviceOf` is its device) unless it opts out.
 */
export const deviceLinkApi = (db: ServerDb, routes: (keys: DeviceKeyAuth) => RoutePlugin[]) => async (app: ServerApp) => {
  const keys = deviceKeyAuth(db);
  app.addHook('onRequest', async (req) => {
    if (!req.routeOptions.config.public) await keys.onRequest(req);
  });
  for (const r of routes(keys)) await app.register(r);
};

export async function buildServer(
  ctx: ServerContext,
  opts: { logger?: boolean; webDir?: string; fleet?: FleetTimings; mapTiles?: MapTiles } = {},
): Promise<ServerApp> {
  const app = Fastify({
    logger: opts.logger ?? false,
    routerOptions: { ignoreTrailingSlash: true },
  }).withTypeProvider<TypeBoxTypeProvider>();
  // every route's input: TypeBox's checker, an unknown field refused, bodies never coerced
  app.setValidatorCompiler(typeBoxCompiler);
  // many clients send `Content-Type: application/json` on every request: an empty body is no body
  // (a route that needs one says so by its schema), on any method
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) =>
    body === '' ? done(null, undefined) : json(req, body as string, (err, parsed) => done(err && located(err, body as string), parsed)),
  );
  // the dashboard's files come after every route, at paths no route has (dashboard.ts)
  const web = dashboard(app, opts.webDir, opts.mapTiles);
  await app.register(swagger, {
    openapi: {
      info: { title: 'Bosun control plane', version: BOSUN_VERSION },
      components: {
        securitySchemes: { apiToken: { type: 'apiKey', in: 'header', name: 'Authorization', description: '`APIToken <token>` or `Bearer <token>`' } },
      },
      security: [{ apiToken: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.setErrorHandler((err, _req, reply) => sendError(err as Error, reply, (e) => app.log.error(e)));
  // an unknown path outside the device link answers 401 without a token, as the operator API's do,
  // but for a browser's navigation to a page of the dashboard
  app.addHook('onRequest', async (req) => {
    if (req.is404 && !req.url.startsWith('/device/') && !web.isPage(req)) await authenticate(ctx.tokens, req);
  });
  app.setNotFoundHandler((req, reply) =>
    web.isPage(req) ? web.sendPage(reply) : reply.code(404).send({ detail: `no such endpoint: ${req.method} ${req.url.split('?')[0]}` }),
  );
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.register(dashboardConfigRoute(opts.mapTiles));
  await app.register(
    operatorApi(ctx.tokens, [
      tokenRoutes(ctx),
      registryRoutes(ctx),
      projectRoutes(ctx),
      releaseRoutes(ctx),
      provisioningKeyRoutes(ctx),
      deviceRoutes(ctx),
      fleetEventRoutes(ctx, opts.fleet),
      supervisorProxyRoutes(ctx),
      deviceLogRoutes(ctx),
      executeRoutes(ctx),
      logbookRoutes(ctx),
      dependentAppRoutes(ctx),
      dependentDeviceRoutes(ctx),
    ]),
  );
  await app.register(
    deviceLinkApi(ctx.db, (keys) => [
      registrationRoutes(ctx),
      deviceTargetRoutes(ctx, keys),
      stateReportRoutes(ctx, keys),
      deviceCommandRoutes(ctx, keys),
      logUploadRoutes(ctx, keys),
      telemetryUploadRoutes(ctx, keys),
      dependentLinkRoutes(ctx, keys),
    ]),
  );
  await web.register();
  await app.ready();
  return app;
}

/** A JSON syntax error says where: line, column and position (a 400 like fastify's own). */
function located(err: Error, body: string): Error {
  const at = jsonSyntaxProblem(body); // undefined for valid JSON refused for another reason (a __proto__ key)
  if (!at) return err;
  return Object.assign(new Error(`invalid JSON body at line ${at.line}, column ${at.column} (position ${at.position}): ${at.reason}`), { statusCode: 400 });
}

async function authenticate(tokens: ApiTokens, req: FastifyRequest): Promise<void> {
  const m = req.headers.authorization?.match(/^(?:APIToken|Bearer)\s+(\S+)$/i);
  if (!m) throw new UnauthorizedError('an API token is required: send "Authorization: APIToken <token>"');
  if (!(await tokens.verify(m[1]!))) throw new UnauthorizedError('invalid, revoked or expired API token');
}
