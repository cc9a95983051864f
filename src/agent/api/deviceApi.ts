// The device API: the balena Supervisor HTTP API (port 48484) so balena apps run unmodified.
// Loaded on the first request (see apiServer.ts): fastify is the biggest thing the agent loads.
// Typed errors become status codes here, in one place.
import Fastify, { type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { TSchema } from '@sinclair/typebox';
import { clientErrorStatus, UnauthorizedError, ValidationError } from '../../shared/errors.js';
import { assertValid } from '../../shared/validate.js';
import type { Api } from './apiRequest.js';
import type { DevicePort } from './devicePort.js';
import { DEVICE_SCOPE } from './keyScope.js';
import { assertSameOrigin, isLanHost, presentedKey } from './requestGuard.js';
import { dependentRoutes } from '../dependent/dependentRoutes.js';
import { localRoutes } from './localRoutes.js';
import { telemetryRoutes } from '../telemetry/telemetryRoutes.js';
import { v1Routes } from './v1Routes.js';
import { v2Routes } from './v2Routes.js';

/** Routes any caller may use, key or not (as balena). */
const OPEN_ROUTES = new Set(['/ping', '/v1/healthy']);

export async function buildDeviceApi(device: DevicePort): Promise<Api> {
  const app = Fastify({
    logger: false,
    bodyLimit: 10 * 1024 * 1024,
    // Validation by the same TypeBox walk the agent checks targets with (already loaded), and plain
    // JSON.stringify for replies (no response schemas): fastify then never loads Ajv and
    // fast-json-stringify, which would add megabytes to the agent's memory for a handful of schemas.
    // (fastify types these factories for Ajv only)
    schemaController: { compilersFactory: { buildValidator: (() => validatorCompiler) as never, buildSerializer: (() => () => JSON.stringify) as never } },
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.decorateRequest('keyScope', null as never);
  acceptBodies(app);
  app.addHook('onRequest', async (req) => {
    assertSameOrigin(req.headers);
    authenticate(device, req);
  });
  // The documented calls send no body at all (every field is optional): that is an empty object.
  app.addHook('preValidation', async (req) => {
    req.body ??= {};
  });
  app.setErrorHandler((err, _req, reply) => sendError(device, err as Error, reply));
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ status: 'failed', message: `no such endpoint: ${req.method} ${req.url.split('?')[0]}` });
  });
  await app.register(v1Routes(device));
  await app.register(v2Routes(device));
  await app.register(localRoutes(device));
  await app.register(telemetryRoutes(device));
  await app.register(dependentRoutes(device));
  await app.ready();
  return app;
}

/**
 * balena apps send `Content-Type: application/json` with an empty body (see the API's curl
 * examples), and some send urlencoded forms: both are accepted.
 */
function acceptBodies(app: Api): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = (body as string).trim();
    if (!text) return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      done(new ValidationError('', `malformed JSON body (${(err as Error).message})`, 'request body'), undefined);
    }
  });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    const form: Record<string, unknown> = {};
    for (const [k, v] of new URLSearchParams(body as string)) form[k] = v === 'true' ? true : v === 'false' ? false : /^\d+$/.test(v) ? Number(v) : v;
    done(null, form);
  });
}

/**
 * The caller's scope. Local mode needs no key (as balena, for the balena CLI), but only for
 * requests addressed to the device as the LAN reaches it (see isLanHost: not a rebound domain).
 */
function authenticate(device: DevicePort, req: FastifyRequest): void {
  const path = req.url.split('?')[0]!;
  if (OPEN_ROUTES.has(path) || (device.localMode() && isLanHost(req.headers.host))) {
    req.keyScope = DEVICE_SCOPE;
    return;
  }
  const key = presentedKey(req.query, req.headers);
  if (!key) {
    const local = device.localMode()
      ? ` (local mode waives it only for requests to the device's IP address, localhost or <name>.local, not to Host ${req.headers.host ?? '(none)'})`
      : '';
    throw new UnauthorizedError(`an API key is required${local}: pass ?apikey=<key> or the header "Authorization: Bearer <key>"`);
  }
  const scope = device.authenticate(key);
  if (!scope) throw new UnauthorizedError('invalid API key');
  req.keyScope = scope;
}

const validatorCompiler =
  ({ schema, httpPart }: { schema: unknown; httpPart?: string }) =>
  (data: unknown) => {
    try {
      assertValid(schema as TSchema, data, `request ${httpPart ?? 'input'}`);
      return { value: data };
    } catch (error) {
      return { error: error as Error };
    }
  };

/** The engine did not answer or refused: the device cannot do it now (balena answers 503 too). */
const statusOf = (err: unknown): number => clientErrorStatus(err) ?? 503;

function sendError(device: DevicePort, err: Error, reply: FastifyReply): void {
  const status = statusOf(err);
  const message = (err as FastifyError).validation ? `invalid request: ${err.message}` : err.message;
  if (status >= 500) device.log.logger.warn({ err }, 'device API request failed');
  reply.code(status).send({ status: 'failed', message });
}
