// The control plane's HTTP API (fastify + TypeBox, OpenAPI at /openapi.json): AutoPi-compatible
// resources under /docker/ and /dongle/, API tokens under /auth/.
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
import type { TargetNotifier } from './targets/notifier.js';
import { sendError } from './httpErrors.js';
import { deviceCommandRoutes } from './routes/deviceCommands.js';
import { deviceTargetRoutes } from './routes/deviceTarget.js';
import { deviceRoutes } from './routes/devices.js';
import { stateReportRoutes } from './routes/stateReports.js';
import { deviceKeyAuth } from './auth/deviceKeys.js';
import { deviceLogRoutes } from './routes/deviceLogs.js';
import { executeRoutes } from './routes/execute.js';
import { logbookRoutes } from './routes/logbook.js';
import { projectRoutes } from './routes/projects.js';
import { provisioningRoutes } from './routes/provisioning.js';
import { registryRoutes } from './routes/registries.js';
import { releaseRoutes } from './routes/releases.js';
import { supervisorProxyRoutes } from './routes/supervisorProxy.js';
import { tokenRoutes } from './routes/tokens.js';
import { typeBoxCompiler } from './validation.js';
import { BOSUN_VERSION } from '../agent/version.js';

export type ServerApp = FastifyInstance<any, any, any, any, TypeBoxTypeProvider>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface ServerContext {
  db: ServerDb;
  tokens: ApiTokens;
  secrets: SecretBox;
  /** every change that can alter a device's target calls targets.refresh(…) after it commits */
  targets: DeviceTargets;
  notifier: TargetNotifier;
  /** the devices' logs: uploads, reads, live tails */
  deviceLogs: DeviceLogs;
  logbook: Logbook;
}

/** Open without a user token: the API description and its interactive page; the device link (/device/…) checks its own keys. */
const isPublic = (path: string) => path === '/openapi.json' || path === '/docs' || path.startsWith('/docs/') || path.startsWith('/device/');

export async function buildServer(ctx: ServerContext, opts: { logger?: boolean } = {}): Promise<ServerApp> {
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
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => (body === '' ? done(null, undefined) : json(req, body as string, done)));
  await app.register(swagger, {
    openapi: {
      info: { title: 'Bosun control plane', version: BOSUN_VERSION },
      components: { securitySchemes: { apiToken: { type: 'apiKey', in: 'header', name: 'Authorization', description: '`APIToken <token>` or `Bearer <token>`' } } },
      security: [{ apiToken: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.addHook('onRequest', async (req) => authenticate(ctx.tokens, req));
  app.setErrorHandler((err, _req, reply) => sendError(err as Error, reply, (e) => app.log.error(e)));
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ detail: `no such endpoint: ${req.method} ${req.url.split('?')[0]}` }));
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.register(tokenRoutes(ctx));
  await app.register(registryRoutes(ctx));
  await app.register(projectRoutes(ctx));
  await app.register(releaseRoutes(ctx));
  await app.register(provisioningRoutes(ctx));
  const keys = deviceKeyAuth(ctx.db);
  await app.register(deviceRoutes(ctx));
  await app.register(deviceTargetRoutes(ctx, keys));
  await app.register(stateReportRoutes(ctx, keys));
  await app.register(deviceCommandRoutes(ctx, keys));
  await app.register(supervisorProxyRoutes(ctx));
  await app.register(deviceLogRoutes(ctx));
  await app.register(executeRoutes(ctx));
  await app.register(logbookRoutes(ctx));
  await app.ready();
  return app;
}

async function authenticate(tokens: ApiTokens, req: FastifyRequest): Promise<void> {
  if (isPublic(req.url.split('?')[0]!)) return;
  const m = req.headers.authorization?.match(/^(?:APIToken|Bearer)\s+(\S+)$/i);
  if (!m) throw new UnauthorizedError('an API token is required: send "Authorization: APIToken <token>"');
  if (!(await tokens.verify(m[1]!))) throw new UnauthorizedError('invalid, revoked or expired API token');
}
