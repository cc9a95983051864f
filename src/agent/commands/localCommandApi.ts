// AutoPi's local command API (localhost:9000 on a device): commands run synchronously, for apps and
// tools on the device itself. Off unless the agent is given a port (`--command-api-port 9000`).
//
//   GET  /                          200 {"unit_id": "<the device's uuid>"}
//   POST /dongle/<unit_id>/execute/ {"command": "docker.logs", "arg": ["web"], "kwarg": {"tail": 10}}
//        with a key: `Authorization: Bearer <key>` (or `ApiKey`, `APIToken`, `?apikey=`): the
//        device API's keys, an app's (BALENA_SUPERVISOR_API_KEY) acting on its own app only
//        200 the command's return value, as JSON
//        400 {detail, field}: a body that is not a command, an unknown command or argument
//        401 {detail}: no key, a wrong one, or an app's key asking for another app or the agent log
//        403 {detail}: a Host that is not loopback (or the configured address), or a browser
//            request from another origin (DNS rebinding, a web page)
//        404 {detail}: another device's unit_id (the request was not meant for this device), or a
//            container that is not this device's (or not the key's app's)
//        409/423/500 {detail}: the command could not run (an app holds its update lock, the engine …)
//
// AutoPi's own local API asks for no key; this one does, because any local process, a host-networked
// container or a web page could otherwise stop services, purge data or reboot the device.
// Loaded on the first request (agent.ts binds the port at start).
import Fastify from 'fastify';
import { clientErrorStatus, NotFoundError, UnauthorizedError, ValidationError } from '../../shared/errors.js';
import { ExecuteCommandSchema } from '../../shared/executeCommand.js';
import { assertValid } from '../../shared/validate.js';
import type { Agent } from '../agent.js';
import { agentPort } from '../api/agentPort.js';
import type { Api } from '../api/apiRequest.js';
import { assertSameOrigin, ForbiddenRequest, isCommandApiHost, presentedKey } from '../api/requestGuard.js';
import { runCommand } from './registry.js';

/** A unit id as AutoPi writes them (a dashed UUID) or as balena does (32 hex digits). */
const sameUnit = (a: string, b: string) => a.replace(/-/g, '').toLowerCase() === b.replace(/-/g, '').toLowerCase();

export async function buildLocalCommandApi(agent: Agent, listenAddress: string): Promise<Api> {
  const device = agentPort(agent);
  const app = Fastify({ logger: false, routerOptions: { ignoreTrailingSlash: true } });
  app.addHook('onRequest', async (req) => {
    if (!isCommandApiHost(req.headers.host, listenAddress)) {
      throw new ForbiddenRequest(
        `requests must be addressed to ${listenAddress === '127.0.0.1' ? 'localhost' : `localhost or ${listenAddress}`}, ` +
          `not Host ${req.headers.host ?? '(none)'}`,
      );
    }
    assertSameOrigin(req.headers);
  });
  app.setErrorHandler((err: Error, _req, reply) => {
    const status = clientErrorStatus(err) ?? 500;
    if (status >= 500) device.log.logger.warn({ err }, 'local command API request failed');
    reply.code(status).send({ detail: err.message, ...(err instanceof ValidationError ? { field: err.field } : {}) });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ detail: `no such endpoint: ${req.method} ${req.url.split('?')[0]}` }));

  app.get('/', async () => ({ unit_id: device.identity().uuid }));

  app.post<{ Params: { unitId: string } }>('/dongle/:unitId/execute/', async (req, reply) => {
    const key = presentedKey(req.query, req.headers);
    if (!key)
      throw new UnauthorizedError('a key is required: send "Authorization: Bearer <key>" with the device API key or your app\'s BALENA_SUPERVISOR_API_KEY');
    const scope = device.authenticate(key);
    if (!scope) throw new UnauthorizedError('invalid key');
    const { uuid } = device.identity();
    if (!sameUnit(req.params.unitId, uuid)) throw new NotFoundError(`this is device ${uuid}, not ${req.params.unitId}`);
    const call = req.body ?? {};
    assertValid(ExecuteCommandSchema, call, 'request body');
    const value = await runCommand(device, call, scope);
    // the return value as JSON, strings included (fastify would send a string as text)
    return reply.type('application/json; charset=utf-8').send(JSON.stringify(value ?? null));
  });

  await app.ready();
  return app;
}
