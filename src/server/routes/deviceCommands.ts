// The command channel of the device link, device side: the device long-polls for the commands the
// server queued for it and posts back each one's result. The server never connects to a device.
//
// Both routes authenticate the device with its device key, `Authorization: Bearer <device key>`
// (401 otherwise), as /device/v1/state does.
//
// GET /device/v1/commands?wait=<s>          (wait: integer 0–300, default 0: answer at once)
//   200  [{"id": 17, "kind": "supervisor", "payload": {...}}, ...]
//        every pending command of the device, oldest first (one or several; at most 100). Each is
//        delivered once: a command in this answer is never in another one, on any server node.
//   204  (no body) nothing came within `wait` seconds (or the server is shutting down): poll again.
//   The poll answers as soon as a command is queued for the device, on whichever node it was queued.
//
//   kind "supervisor" (the supervisor proxy, POST /supervisor/<url>): a call to the device's own API,
//   payload {"method": "GET" | "POST" | "PATCH" | "PUT" | "DELETE",
//            "path": "/v1/restart",          always "/ping", "/v1/…" or "/v2/…", with any query string
//            "body": <any JSON>}              the caller's `data`; absent when it gave none
//   kind "execute" (remote execution, POST /dongle/devices/{id}/execute/): a module command,
//   payload {"command": "docker.logs", "arg": [...], "kwarg": {...}}
//
// POST /device/v1/commands/<id>/result      (JSON body, at most 2 MiB)
//   supervisor command, the device API's answer:
//        {"status": 200, "body": "<the answer's body, as text>", "headers": {"content-type": "…"}}
//        status: integer 200–599; headers optional (string values; stored, not passed on)
//   execute command, what it came to:
//        {"return": <any JSON>, "success": true, "retcode": 0}
//   any command the device could not run at all:
//        {"error": "<why>"}                   (the proxy then answers 502)
//   204  stored (also when the command already had a result: the first one stays)
//   404  {"detail"}: no such command for this device (another device's command is "no such" too),
//        or it expired: nobody waits for the result any more. Do not retry.
//   400  {"detail", "field"}: the body does not match the command's kind.
import { Type } from '@sinclair/typebox';
import type { FastifySchemaCompiler } from 'fastify';
import { NotFoundError, UnauthorizedError, ValidationError } from '../../shared/errors.js';
import {
  DeviceCommandSchema,
  ExecuteResultSchema,
  FailedResultSchema,
  MAX_RESULT_BYTES,
  SupervisorResultSchema,
  type CommandResultBody,
} from '../../shared/deviceLink.js';
import type { DeviceKeyAuth } from '../auth/deviceKeys.js';
import { queueKey, type DeviceCommands } from '../commands/deviceCommands.js';
import { typeBoxCompiler } from '../validation.js';
import { dropAnswer, HeldRequests, waitFor } from '../longPoll.js';
import type { ServerApp, ServerContext } from '../app.js';

export const MAX_COMMAND_WAIT_S = 300;

const ResultBody = Type.Union([SupervisorResultSchema, ExecuteResultSchema, FailedResultSchema]);

/**
 * The server's validator, but a result body is checked against the branch it is (a body with
 * `error` is a failure report, one with `retcode` an execute result, any other one the device API's
 * answer), so that the 400 names that branch's field rather than the one of the union's branches
 * that got furthest.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const resultValidator: FastifySchemaCompiler<any> = (route) => {
  if (route.httpPart !== 'body') return typeBoxCompiler(route);
  const failed = typeBoxCompiler({ ...route, schema: FailedResultSchema });
  const executed = typeBoxCompiler({ ...route, schema: ExecuteResultSchema });
  const answered = typeBoxCompiler({ ...route, schema: SupervisorResultSchema });
  return (data: unknown) => {
    const has = (key: string) => data !== null && typeof data === 'object' && key in data;
    return (has('error') ? failed : has('retcode') ? executed : answered)(data);
  };
};

export const deviceCommandRoutes =
  (ctx: ServerContext, { deviceOf }: DeviceKeyAuth) =>
  async (app: ServerApp) => {
    const { commands } = ctx;
    const polls = new HeldRequests();
    app.addHook('preClose', async () => {
      // held polls answer now (204: the device polls again, another node or after the restart)
      await polls.close();
    });

    const tags = ['device link'];

    app.get(
      '/device/v1/commands',
      {
        schema: {
          tags,
          summary: "Take the device's queued commands",
          description:
            'The commands queued for the device (`Authorization: Bearer <device key>`), oldest first, each delivered once. With `wait`, held until ' +
            'one is queued (200) or `wait` seconds pass (204).',
          security: [],
          querystring: Type.Object({ wait: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_COMMAND_WAIT_S })) }),
          response: {
            200: Type.Array(DeviceCommandSchema),
            204: Type.Null({ description: 'nothing to do' }),
          },
        },
      },
      async (req, reply) => {
        const device = deviceOf(req);
        const waitS = req.query.wait ?? 0;
        const poll = polls.hold(req, reply);
        // closing: no waiting, what is queued now goes out
        const deadline = polls.closing ? 0 : Date.now() + waitS * 1000;
        let taken: Awaited<ReturnType<DeviceCommands['next']>> = [];
        try {
          taken =
            (await waitFor(ctx.notifier, queueKey(device.id), deadline, poll.signal, async () => {
              const next = await commands.next(device.id);
              return next.length ? next : undefined;
            })) ?? [];
        } finally {
          poll.release();
        }
        if (poll.hungUp()) {
          // the device hung up: what this poll took goes back to the queue for its next poll
          await commands.undeliver(
            device.id,
            taken.map((c) => c.id),
          );
          return dropAnswer(reply);
        }
        if (taken.length) return reply.code(200).header('cache-control', 'no-store').send(taken);
        if (waitS > 0 && !(await ctx.devices.exists(device.id))) {
          throw new UnauthorizedError('unknown device key'); // deleted while it waited
        }
        return reply.code(204).send(null);
      },
    );

    app.post(
      '/device/v1/commands/:id/result',
      {
        validatorCompiler: resultValidator,
        bodyLimit: MAX_RESULT_BYTES + 64 * 1024,
        schema: {
          tags,
          summary: 'Post the result of a command',
          description:
            "The result of one of the device's commands (`Authorization: Bearer <device key>`). Supervisor command: `{status, body, headers?}` — " +
            "the device API's status code and body text. Execute command: `{return, success, retcode}`. A command the device could not run: " +
            '`{error}`. 404 when the command is not this ' +
            "device's or expired.",
          security: [],
          params: Type.Object({ id: Type.String({ pattern: '^[1-9][0-9]{0,14}$' }) }),
          body: ResultBody,
        },
      },
      async (req, reply) => {
        const device = deviceOf(req);
        const id = Number(req.params.id);
        const body = req.body as CommandResultBody;
        const command = await commands.get(id);
        if (!command || command.deviceId !== device.id) throw new NotFoundError(`no command ${id} for this device`);
        if ('error' in body) return finish(await commands.complete(id, device.id, { error: body.error }, 'failed'));
        if (command.kind !== ('retcode' in body ? 'execute' : 'supervisor'))
          throw new ValidationError('', `a result of a ${command.kind} command is expected`, 'command result');
        return finish(await commands.complete(id, device.id, body, 'done'));

        function finish(outcome: Awaited<ReturnType<DeviceCommands['complete']>>) {
          if (outcome === 'unknown') throw new NotFoundError(`no command ${id} for this device`);
          if (outcome === 'expired') throw new NotFoundError(`command ${id} expired: nobody waits for its result any more`);
          return reply.code(204).send();
        }
      },
    );
  };
