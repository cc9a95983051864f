// The device API: the balena Supervisor HTTP API (port 48484) so balena apps run unmodified.
// Loaded on the first request (see apiServer.ts): fastify is the biggest thing the agent loads.
// Typed errors become status codes here, in one place.
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { TSchema } from '@sinclair/typebox';
import { clientErrorStatus, UnauthorizedError, ValidationError } from '../../shared/errors.js';
import { assertValid } from '../../shared/validate.js';
import type { Agent } from '../agent.js';
import type { KeyScope } from './apiKeys.js';
import { assertAppAccess as assertScopeAccess, assertDeviceScope, DEVICE_SCOPE } from './keyScope.js';
import { assertSameOrigin, isLanHost, presentedKey } from './requestGuard.js';
import { localRoutes } from './localRoutes.js';
import { telemetryRoutes } from '../telemetry/telemetryRoutes.js';
import { v1Routes } from './v1Routes.js';
import { v2Routes } from './v2Routes.js';

export type Api = FastifyInstance<any, any, any, any, TypeBoxTypeProvider>; // eslint-disable-line @typescript-eslint/no-explicit-any

declare module 'fastify' {
  interface FastifyRequest {
    keyScope: KeyScope;
  }
}

/** Routes any caller may use, key or not (as balena). */
const OPEN_ROUTES = new Set(['/ping', '/v1/healthy']);

export async function buildDeviceApi(agent: Agent): Promise<Api> {
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
    authenticate(agent, req);
  });
  // The documented calls send no body at all (every field is optional): that is an empty object.
  app.addHook('preValidation', async (req) => {
    req.body ??= {};
  });
  app.setErrorHandler((err, _req, reply) => sendError(agent, err as Error, reply));
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ status: 'failed', message: `no such endpoint: ${req.method} ${req.url.split('?')[0]}` });
  });
  await app.register(v1Routes(agent));
  await app.register(v2Routes(agent));
  await app.register(localRoutes(agent));
  await app.register(telemetryRoutes(agent));
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
function authenticate(agent: Agent, req: FastifyRequest): void {
  const path = req.url.split('?')[0]!;
  if (OPEN_ROUTES.has(path) || (agent.localMode() && isLanHost(req.headers.host))) {
    req.keyScope = DEVICE_SCOPE;
    return;
  }
  const key = presentedKey(req.query, req.headers);
  if (!key) {
    const local = agent.localMode() ? ` (local mode waives it only for requests to the device's IP address, localhost or <name>.local, not to Host ${req.headers.host ?? '(none)'})` : '';
    throw new UnauthorizedError(`an API key is required${local}: pass ?apikey=<key> or the header "Authorization: Bearer <key>"`);
  }
  const scope = agent.apiKeys.authenticate(key);
  if (!scope) throw new UnauthorizedError('invalid API key');
  req.keyScope = scope;
}

const validatorCompiler = ({ schema, httpPart }: { schema: unknown; httpPart?: string }) => (data: unknown) => {
  try {
    assertValid(schema as TSchema, data, `request ${httpPart ?? 'input'}`);
    return { value: data };
  } catch (error) {
    return { error: error as Error };
  }
};

/** An app's key acts on its own app only (balena answers 401 for others). */
export function assertAppAccess(req: FastifyRequest, appId: number): void {
  assertScopeAccess(req.keyScope, appId);
}

/** Routes that reach every app's secrets or output: the device key (or local mode) only. */
export function assertDevice(req: FastifyRequest, what: string): void {
  assertDeviceScope(req.keyScope, what);
}

/** The engine did not answer or refused: the device cannot do it now (balena answers 503 too). */
const statusOf = (err: unknown): number => clientErrorStatus(err) ?? 503;

function sendError(agent: Agent, err: Error, reply: FastifyReply): void {
  const status = statusOf(err);
  const message = (err as FastifyError).validation ? `invalid request: ${err.message}` : err.message;
  if (status >= 500) agent.log.logger.warn({ err }, 'device API request failed');
  reply.code(status).send({ status: 'failed', message });
}

export const parseAppId = (raw: string | number | undefined, field = 'appId'): number => {
  const n = typeof raw === 'number' ? raw : Number(raw);
  if (raw === undefined || raw === '' || !Number.isInteger(n) || n <= 0) throw new ValidationError(field, `Invalid or missing ${field}`, 'request');
  return n;
};
