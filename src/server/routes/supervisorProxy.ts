// The supervisor proxy (balena's `POST /supervisor/<url>`): a call to a device's own API (the
// balena Supervisor API, port 48484 on the device) made through the control plane with a user API
// token. The call travels over the device link as a `supervisor` command (see deviceCommands.ts):
// the server queues it, the device takes it from its command long poll, runs it through its API's
// own handlers and posts the answer, which is returned here. Nothing connects into the device.
//
//   POST /supervisor/v1/restart   {"uuid": "<unit id>", "method": "POST", "data": {"appId": 12}}
//
// Body: exactly one target — `uuid` (the device's unit id, as the agent's config.json has it),
// `deviceId` (the server's device id) or `appId` (a project id: every device of the project) —;
// `method` GET | POST | PATCH | PUT | DELETE (default POST, any case); `data` the JSON body for the
// device API; `timeout` (Bosun's own, seconds, default 30, at most 300): how long to wait for the
// device. `<url>` is `ping`, `v1/…` or `v2/…` (a query string goes along).
//
// One device: its status code and body (`application/json` when the body is JSON, else
// `text/plain`); no answer within the timeout → 504 `{detail}` (the command expires, so a device
// coming back later does not run it); the device could not run it → 502 `{detail}`; its queue is
// full → 429. An appId: 207 with `[{deviceId, uuid, status, body}]` for every device of the project
// (asked in parallel), `body` parsed when it is JSON; a device that did not answer has a 504 entry.
// Wrong input → 400 naming the field; an unknown device or project → 404.
import { Type } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import { SUPERVISOR_METHODS, type SupervisorPayload } from '../../shared/deviceLink.js';
import { NotFoundError, ValidationError } from '../../shared/errors.js';
import { TooManyCommandsError, type Command } from '../commands/deviceCommands.js';
import { dropAnswer, HeldRequests } from '../longPoll.js';
import type { ServerApp, ServerContext } from '../app.js';

export const PROXY_TIMEOUT_MS = 30_000;
export const MAX_PROXY_TIMEOUT_S = 300;

const ProxyBody = Type.Object(
  {
    uuid: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: "the device's unit id (uuid)" })),
    deviceId: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: "the server's device id" })),
    appId: Type.Optional(
      Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: '^[1-9][0-9]{0,14}$' })], { description: 'a project id: every device of the project' }),
    ),
    method: Type.Optional(Type.String({ description: 'GET, POST, PATCH, PUT or DELETE; default POST' })),
    data: Type.Optional(Type.Unknown({ description: 'the JSON body for the device API' })),
    timeout: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: MAX_PROXY_TIMEOUT_S, description: 'seconds to wait for the device (default 30)' })),
  },
  { additionalProperties: false, examples: [{ uuid: '8968ecdbb0c46d4d158762d148424214', method: 'POST', data: { appId: 1 } }] },
);
interface ProxyBody {
  uuid?: string;
  deviceId?: string;
  appId?: number | string;
  method?: string;
  data?: unknown;
  timeout?: number;
}

const Entry = Type.Object({ deviceId: Type.String(), uuid: Type.String(), status: Type.Integer(), body: Type.Unknown() });
const entriesExample = [
  { deviceId: '5d2b9c1e-8f4a-4c3e-9b7d-2a1f0e6c4b3a', uuid: '8968ecdbb0c46d4d158762d148424214', status: 200, body: { Data: 'OK', Error: '' } },
];

// a path segment: unreserved and sub-delim characters, or percent escapes
const SEGMENT = /^(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})+$/;
const QUERY = /^(?:[A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*$/;

/**
 * The device API path of a proxy URL (`/supervisor/v1/apps/12?x=1` → `/v1/apps/12?x=1`): `ping`,
 * or `v1/…` / `v2/…` with plain segments (no `.` or `..`, no encoded slash).
 */
export function devicePath(url: string): string {
  const q = url.indexOf('?');
  const raw = (q < 0 ? url : url.slice(0, q)).replace(/^\/supervisor\//, '').replace(/\/$/, '');
  const query = q < 0 ? '' : url.slice(q + 1);
  const bad = (why: string) => new ValidationError('url', `${JSON.stringify(raw)}: ${why}`, 'supervisor proxy path');
  const segments = raw.split('/');
  if (!(raw === 'ping' || ((segments[0] === 'v1' || segments[0] === 'v2') && segments.length > 1))) {
    throw bad('the device API has ping, v1/… and v2/…');
  }
  for (const s of segments) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(s);
    } catch {
      throw bad('malformed percent escape');
    }
    if (!SEGMENT.test(s) || decoded === '.' || decoded === '..' || /[/\\]/.test(decoded)) throw bad(`invalid path segment ${JSON.stringify(s)}`);
  }
  if (query.length > 2000 || !QUERY.test(query)) throw bad('invalid query string');
  return `/${raw}${query ? `?${query}` : ''}`;
}

/** A device's answer body: JSON when it parses, else its text. */
function parsed(text: string): { json: true; value: unknown } | { json: false; value: string } {
  if (text.trim()) {
    try {
      return { json: true, value: JSON.parse(text) as unknown };
    } catch {
      // not JSON
    }
  }
  return { json: false, value: text };
}

type Outcome = { status: number; text: string } | { status: number; detail: string };

export const supervisorProxyRoutes = (ctx: ServerContext) => async (app: ServerApp) => {
  const { commands } = ctx;
  const calls = new HeldRequests();
  // calls still waiting for a device answer now (503) instead of holding the close
  app.addHook('preClose', () => calls.close());

  /** What one command came to, for the device named `who`. */
  const outcomeOf = (c: Command | undefined, who: string, timeoutMs: number): Outcome => {
    if (!c) return { status: 404, detail: `device ${who} was deleted` };
    if (c.state === 'done') {
      const r = c.result as { status: number; body: string };
      return { status: r.status, text: r.body };
    }
    if (c.state === 'failed') return { status: 502, detail: `device ${who} could not run the call: ${(c.result as { error: string }).error}` };
    const s = +(timeoutMs / 1000).toFixed(3);
    return {
      status: 504,
      detail: c.deliveredAt
        ? `device ${who} took the call but did not answer within ${s} s`
        : `device ${who} did not take the call within ${s} s (it is offline, or not polling for commands)`,
    };
  };

  app.post(
    '/supervisor/*',
    {
      // no body is an empty one (a 400 then names the missing target)
      preValidation: async (req) => {
        req.body ??= {};
      },
      schema: {
        tags: ['supervisor'],
        summary: "Calls a device's own API (the balena Supervisor API) over its device link",
        description:
          '`<url>` is `ping`, `v1/…` or `v2/…`. Exactly one of `uuid`, `deviceId`, `appId` (every device of the project: 207 with one entry per ' +
          'device). One device: its status code and body; 504 when it does not answer within `timeout` seconds (default 30).',
        body: ProxyBody,
        response: { 207: Type.Array(Entry, { examples: [entriesExample] }) },
      },
    },
    async (req, reply) => {
      const body = req.body as ProxyBody;
      const targets = (['uuid', 'deviceId', 'appId'] as const).filter((k) => body[k] !== undefined);
      if (targets.length !== 1) {
        throw new ValidationError(
          targets.length ? `/${targets[1]!}` : '/uuid',
          targets.length ? `give only one of uuid, deviceId and appId (got ${targets.join(', ')})` : 'one of uuid, deviceId or appId is required',
          'request body',
        );
      }
      const method = (body.method ?? 'POST').toUpperCase() as SupervisorPayload['method'];
      if (!SUPERVISOR_METHODS.includes(method)) throw new ValidationError('/method', `must be one of ${SUPERVISOR_METHODS.join(', ')}`, 'request body');
      const path = devicePath(req.url);
      const timeoutMs = body.timeout !== undefined ? Math.round(body.timeout * 1000) : PROXY_TIMEOUT_MS;
      const payload: SupervisorPayload = { method, path, ...(body.data !== undefined ? { body: body.data } : {}) };

      const devices =
        body.appId !== undefined
          ? await ctx.devices.ofProject(Number(body.appId))
          : await ctx.devices.find(body.uuid !== undefined ? { uuid: body.uuid.toLowerCase() } : { id: body.deviceId! });
      if (!devices.length && body.appId === undefined)
        throw new NotFoundError(`no device ${body.uuid !== undefined ? `with uuid ${body.uuid}` : body.deviceId!}`);

      const call = calls.hold(req, reply);
      let outcomes: Outcome[];
      try {
        const queued = await commands.queueMany(
          devices.map((d) => d.id),
          'supervisor',
          payload,
          timeoutMs,
        );
        outcomes = await Promise.all(
          devices.map(async (d): Promise<Outcome> => {
            const id = queued.get(d.id)!;
            if (id instanceof TooManyCommandsError) return { status: 429, detail: id.message };
            return outcomeOf(await commands.awaitResult(id, timeoutMs, call.signal), d.unit_id, timeoutMs);
          }),
        );
      } finally {
        call.release();
      }
      if (calls.closing) return (reply as FastifyReply).code(503).send({ detail: 'the server is shutting down; ask again' });
      // the caller hung up; the command stays queued until it expires, and runs if the device comes
      if (call.hungUp()) return dropAnswer(reply);

      if (body.appId !== undefined) {
        return reply.code(207).send(
          devices.map((d, i) => {
            const o = outcomes[i]!;
            return { deviceId: d.id, uuid: d.unit_id, status: o.status, body: 'detail' in o ? { detail: o.detail } : parsed(o.text).value };
          }),
        );
      }
      return send(reply, outcomes[0]!);
    },
  );
};

/** One device's answer as it gave it: its status, its body (JSON or text; the device's headers are not passed on). */
function send(reply: FastifyReply, o: Outcome) {
  reply.code(o.status).header('x-content-type-options', 'nosniff');
  if ('detail' in o) return reply.send({ detail: o.detail });
  if (o.status === 204 || o.status === 205 || o.status === 304) return reply.send();
  return reply.type(parsed(o.text).json ? 'application/json; charset=utf-8' : 'text/plain; charset=utf-8').send(o.text);
}
