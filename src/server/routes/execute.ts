// Remote execution, as AutoPi's execute endpoints (see commands/executeJobs.ts):
//
//   POST /dongle/devices/{id}/execute/       {"command": "docker.logs", "arg": ["web"], "kwarg": {"tail": 10},
//                                            "callback_url": "https://…", "callback_timeout": 60}
//   POST /dongle/devices/{id}/execute_raw/   {"command": "docker.logs web tail=10", …}   (Salt's command line)
//     200 {"jid": "20240501120000123017", "minions": ["<unit id>"]} at once; the device runs it when
//     it takes it from its link. callback_timeout (1–600 s, needs callback_url; default 600): how
//     long the device has to answer before the job times out.
//   GET /dongle/devices/{id}/command_result/{jid}/
//     200 the job (JobDocument: state pending | done | timed_out, return, success, retcode,
//     timestamps) and its callback's delivery (`callback`: null without one).
//   GET /auth/callback-key/, POST /auth/callback-key/rotate/: the key callbacks are signed with
//     (commands/callbackKey.ts).
//
// Wrong input → 400 naming the field; an unknown device or jid (or another device's jid) → 404; a
// device with 100 commands waiting → 429.
import { Type, type TSchema } from '@sinclair/typebox';
import { NotFoundError, ValidationError } from '../../shared/errors.js';
import { ExecuteCommandFields, type ExecuteCommand } from '../../shared/executeCommand.js';
import { EXECUTE_TIMEOUT_S, jobDocument } from '../commands/executeJobs.js';
import { parseRawCommand } from '../commands/rawCommand.js';
import type { ServerApp, ServerContext } from '../app.js';

const CallbackFields = {
  callback_url: Type.Optional(
    Type.String({ pattern: '^https?://', maxLength: 2000, description: 'where the result is POSTed when the job is done or timed out' }),
  ),
  callback_timeout: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: EXECUTE_TIMEOUT_S,
      description: `seconds the device has to answer before the job times out (default ${EXECUTE_TIMEOUT_S})`,
    }),
  ),
};
const ExecuteBody = Type.Object(
  { ...ExecuteCommandFields, ...CallbackFields },
  { additionalProperties: false, examples: [{ command: 'docker.logs', arg: ['web'], kwarg: { tail: 10 } }] },
);
const ExecuteRawBody = Type.Object(
  { command: Type.String({ minLength: 1, maxLength: 10_000, description: 'the whole command, e.g. `docker.logs web tail=10`' }), ...CallbackFields },
  { additionalProperties: false, examples: [{ command: 'docker.logs web tail=10', callback_url: 'https://ops.example.com/bosun-jobs', callback_timeout: 60 }] },
);
const Queued = Type.Object(
  { jid: Type.String(), minions: Type.Array(Type.String()) },
  { examples: [{ jid: '20240501101500123017', minions: ['8968ecdbb0c46d4d158762d148424214'] }] },
);
const DeviceParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });
const ResultParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }), jid: Type.String({ minLength: 1, maxLength: 100 }) });
const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const JobOut = Type.Object(
  {
    jid: Type.String(),
    unit_id: Type.String(),
    command: Type.String(),
    arg: Type.Array(Type.Unknown()),
    kwarg: Type.Record(Type.String(), Type.Unknown()),
    state: Type.Union([Type.Literal('pending'), Type.Literal('done'), Type.Literal('timed_out')]),
    return: Type.Unknown(),
    success: Nullable(Type.Boolean()),
    retcode: Nullable(Type.Integer()),
    created_at: Type.String(),
    delivered_at: Nullable(Type.String()),
    finished_at: Nullable(Type.String()),
    timeout_at: Type.String(),
    callback: Nullable(
      Type.Object({
        url: Type.String(),
        attempts: Type.Integer(),
        delivered_at: Nullable(Type.String()),
        /** why the last attempt failed (or that delivery was given up) */
        error: Nullable(Type.String()),
      }),
    ),
  },
  {
    examples: [
      {
        jid: '20240501101500123017',
        unit_id: '8968ecdbb0c46d4d158762d148424214',
        command: 'docker.logs',
        arg: ['web'],
        kwarg: { tail: 10 },
        state: 'done',
        return: 'listening on :8080\n',
        success: true,
        retcode: 0,
        created_at: '2024-05-01T10:15:00.123Z',
        delivered_at: '2024-05-01T10:15:00.200Z',
        finished_at: '2024-05-01T10:15:00.350Z',
        timeout_at: '2024-05-01T10:25:00.123Z',
        callback: null,
      },
    ],
  },
);
const KeyOut = Type.Object({ key: Type.String(), created_at: Type.String() }, { examples: [{ key: '3b1f…', created_at: '2024-05-01T10:00:00.000Z' }] });

interface Callback {
  callback_url?: string;
  callback_timeout?: number;
}

export const executeRoutes =
  ({ jobs, callbackKey }: ServerContext) =>
  async (app: ServerApp) => {
    const tags = ['dongle'];

    const execute = async (deviceId: string, command: ExecuteCommand, cb: Callback) => {
      if (cb.callback_timeout !== undefined && cb.callback_url === undefined)
        throw new ValidationError('/callback_timeout', 'needs a callback_url', 'request body');
      if (cb.callback_url !== undefined) {
        if (!URL.canParse(cb.callback_url)) throw new ValidationError('/callback_url', 'not a URL', 'request body');
        const url = new URL(cb.callback_url);
        // (fetch refuses them; a receiver checks the signature instead)
        if (url.username || url.password) throw new ValidationError('/callback_url', 'credentials in the URL are not sent', 'request body');
      }
      const { jid, unitId } = await jobs.create(deviceId, command, { timeoutS: cb.callback_timeout ?? EXECUTE_TIMEOUT_S, callbackUrl: cb.callback_url });
      return { jid, minions: [unitId] };
    };

    app.post(
      '/dongle/devices/:id/execute/',
      {
        schema: {
          tags,
          summary: 'Runs a module command on the device',
          description: 'Answers at once with the job id; poll `command_result/{jid}/`, or give a `callback_url` (signed, see `/auth/callback-key/`).',
          params: DeviceParams,
          body: ExecuteBody,
          response: { 200: Queued },
        },
      },
      async (req) => {
        const { callback_url, callback_timeout, ...command } = req.body;
        return execute(req.params.id, command, { callback_url, callback_timeout });
      },
    );

    app.post(
      '/dongle/devices/:id/execute_raw/',
      {
        schema: {
          tags,
          summary: 'Runs a module command on the device, given as one string',
          description: "As `execute/`, the command as Salt's command line has it: `docker.logs web tail=10`.",
          params: DeviceParams,
          body: ExecuteRawBody,
          response: { 200: Queued },
        },
      },
      async (req) => {
        const { command, ...cb } = req.body;
        return execute(req.params.id, parseRawCommand(command), cb);
      },
    );

    app.get(
      '/dongle/devices/:id/command_result/:jid/',
      {
        schema: {
          tags,
          summary: "A job's state and result",
          description:
            '`state`: pending (`delivered_at` once the device took it), done (`return`, `success`, `retcode`, `finished_at`) or timed_out; ' +
            "`callback`: its delivery, null without one. Jobs are kept 24 h; an unknown jid, or another device's: 404.",
          params: ResultParams,
          response: { 200: JobOut },
        },
      },
      async (req) => {
        const job = await jobs.find(req.params.jid);
        if (!job || job.device_id !== req.params.id) throw new NotFoundError(`no job ${req.params.jid} for device ${req.params.id}`);
        const cb = job.callback_url;
        return {
          ...jobDocument(job),
          callback: cb ? { url: cb, attempts: job.callback_attempts, delivered_at: job.callback_delivered_at, error: job.callback_error } : null,
        };
      },
    );

    const keyTags = ['auth'];
    app.get(
      '/auth/callback-key/',
      {
        schema: {
          tags: keyTags,
          summary: 'The key execute callbacks are signed with',
          description: 'HMAC-SHA256 of the body, `X-Bosun-Signature: sha256=<hex>`.',
          response: { 200: KeyOut },
        },
      },
      async () => callbackKey.current(),
    );
    app.post(
      '/auth/callback-key/rotate/',
      {
        schema: {
          tags: keyTags,
          summary: 'Replaces the callback signing key',
          description: 'Callbacks sent from now on are signed with the new key.',
          response: { 200: KeyOut },
        },
      },
      async () => callbackKey.rotate(),
    );
  };
