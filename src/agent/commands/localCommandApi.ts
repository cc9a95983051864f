// AutoPi's local command API (localhost:9000 on a device): commands run synchronously, for apps and
// tools on the device itself.
//
//   GET  /                          200 {"unit_id": "<the device's uuid>"}
//   POST /dongle/<unit_id>/execute/ {"command": "docker.logs", "arg": ["web"], "kwarg": {"tail": 10}}
//        200 the command's return value, as JSON
//        400 {detail, field}: a body that is not a command, an unknown command or argument
//        404 {detail}: another device's unit_id (the request was not meant for this device), or a
//            container that is not this device's
//        409/423/500 {detail}: the command could not run (an app holds its update lock, the engine …)
//
// No key is asked for, as AutoPi's: the agent binds it to 127.0.0.1 unless told otherwise.
// Loaded on the first request (agent.ts binds the port at start).
import Fastify from 'fastify';
import { clientErrorStatus, NotFoundError, ValidationError } from '../../shared/errors.js';
import { ExecuteCommandSchema } from '../../shared/executeCommand.js';
import { assertValid } from '../../shared/validate.js';
import type { Agent } from '../agent.js';
import type { Api } from '../api/deviceApi.js';
import { runCommand } from './registry.js';

/** A unit id as AutoPi writes them (a dashed UUID) or as balena does (32 hex digits). */
const sameUnit = (a: string, b: string) => a.replace(/-/g, '').toLowerCase() === b.replace(/-/g, '').toLowerCase();

export async function buildLocalCommandApi(agent: Agent): Promise<Api> {
  const app = Fastify({ logger: false, routerOptions: { ignoreTrailingSlash: true } });
  app.setErrorHandler((err: Error, _req, reply) => {
    const status = clientErrorStatus(err) ?? 500;
    if (status >= 500) agent.log.logger.warn({ err }, 'local command API request failed');
    reply.code(status).send({ detail: err.message, ...(err instanceof ValidationError ? { field: err.field } : {}) });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ detail: `no such endpoint: ${req.method} ${req.url.split('?')[0]}` }));

  app.get('/', async () => ({ unit_id: agent.device.uuid }));

  app.post<{ Params: { unitId: string } }>('/dongle/:unitId/execute/', async (req, reply) => {
    if (!sameUnit(req.params.unitId, agent.device.uuid)) throw new NotFoundError(`this is device ${agent.device.uuid}, not ${req.params.unitId}`);
    const call = req.body ?? {};
    assertValid(ExecuteCommandSchema, call, 'request body');
    const value = await runCommand(agent, call);
    // the return value as JSON, strings included (fastify would send a string as text)
    return reply.type('application/json; charset=utf-8').send(JSON.stringify(value ?? null));
  });

  await app.ready();
  return app;
}
