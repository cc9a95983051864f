// Device logs: what the devices' services print and their agents' own messages.
//
// POST /device/v1/logs?queue=<id>          (device key: `Authorization: Bearer <device key>`)
//   Content-Type: application/x-ndjson, optionally Content-Encoding: gzip; at most 4 MiB, inflated
//   too, and 5000 lines. One line per JSON object (src/shared/deviceLogs.ts):
//     {"seq": 17, "ts": "2024-05-01T10:00:00.123456789Z", "stream": "stdout" | "stderr" | "system",
//      "message": "…", "app_id": 12, "service": "web", "release_id": 3}
//   (app_id, service, release_id absent on system lines). `seq` increases along the batch; `queue`
//   (8–64 of [A-Za-z0-9_-]) names the agent's log queue the numbers belong to.
//   200 {"last_seq": 17, "stored": 15, "duplicates": 0, "suppressed": 2}: every line up to last_seq
//       is stored (the agent may forget them). Lines at or below the last seq stored before are
//       skipped (duplicates: a batch sent again). Beyond the device's rate, lines are suppressed and
//       one system line "suppressed N lines: …" is stored in their place.
//   400 {detail, field} (`/3/ts`: line 3's ts), 401 unknown device key, 413 too large, 415 an
//       encoding other than gzip.
//
// GET /dongle/devices/{id}/logs/?service=&since=&limit=   (API token)
//   The device's newest `limit` lines (default 100, at most 10,000) of the service (`service`) and
//   printed at or after `since` (RFC 3339), oldest first:
//     [{"id": 1234, "ts": "2024-05-01T10:00:00.123Z", "stream": "stdout", "app_id": 12,
//       "service": "web", "release_id": 3, "message": "…"}]
//   `id` grows in the order lines arrived; `ts` is the device's clock. 404 for an unknown device.
//
// GET /dongle/devices/{id}/logs/tail/?service=&since=&limit=   (API token)
//   Server-Sent Events: the newest `limit` lines (default 100; 0: none), then every new line as it
//   arrives, on any server node; each event `id: <line id>`, `data: <the line as above>`. With
//   `Last-Event-ID` (an EventSource reconnecting), every line after that one instead.
import { Type } from '@sinclair/typebox';
import { NotFoundError } from '../../shared/errors.js';
import { LOG_STREAMS, ShippedLogLine } from '../../shared/deviceLogs.js';
import type { DeviceKeyAuth } from '../auth/deviceKeys.js';
import { LogTails } from '../logs/logTail.js';
import { acceptNdjson, gunzipBody } from '../logs/ndjsonBody.js';
import type { ServerApp, ServerContext } from '../app.js';

const MAX_BATCH_BYTES = 4 * 1024 * 1024;
const MAX_BATCH_LINES = 5000;
export const MAX_READ_LINES = 10_000;

export const Line = Type.Object({
  id: Type.Integer(),
  ts: Type.String(),
  stream: Type.Union(LOG_STREAMS.map((s) => Type.Literal(s))),
  app_id: Type.Union([Type.Integer(), Type.Null()]),
  service: Type.Union([Type.String(), Type.Null()]),
  release_id: Type.Union([Type.Integer(), Type.Null()]),
  message: Type.String(),
});
const Filter = {
  service: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'only lines of this service' })),
  since: Type.Optional(Type.String({ format: 'date-time', description: 'only lines printed at or after this time (RFC 3339)' })),
};
const DeviceParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });

/** The device link's upload (device key: the device link context's hook). */
export const logUploadRoutes =
  (ctx: ServerContext, { deviceOf }: DeviceKeyAuth) =>
  async (app: ServerApp) => {
    const { deviceLogs } = ctx;
    acceptNdjson(app, 'log batch');

    app.post(
      '/device/v1/logs',
      {
        preParsing: gunzipBody,
        bodyLimit: MAX_BATCH_BYTES,
        schema: {
          tags: ['device link'],
          description:
            "A batch of the device's log lines (`Authorization: Bearer <device key>`), NDJSON (`application/x-ndjson`, optionally gzip), `seq` " +
            "increasing. Lines at or below the last `seq` stored for the queue are skipped; beyond the device's rate, lines are replaced by one " +
            '"suppressed N lines" line. `last_seq`: every line up to it is stored. A line with `dependent_uuid` is a line of that dependent device of the ' +
            "gateway (lines for another gateway's devices are skipped).",
          security: [],
          querystring: Type.Object({ queue: Type.String({ pattern: '^[A-Za-z0-9_-]{8,64}$', description: "the id of the agent's log queue" }) }),
          body: Type.Array(ShippedLogLine, { minItems: 1, maxItems: MAX_BATCH_LINES }),
          response: { 200: Type.Object({ last_seq: Type.Integer(), stored: Type.Integer(), duplicates: Type.Integer(), suppressed: Type.Integer() }) },
        },
      },
      async (req) => {
        const { id } = deviceOf(req);
        // a gateway writes the lines of its own dependent devices only
        const dependents = req.body.flatMap((l) => (l.dependent_uuid ? [l.dependent_uuid] : []));
        const foreign = dependents.length ? await ctx.dependentDevices.foreign(id, dependents) : undefined;
        return deviceLogs.ingest(id, req.query.queue, req.body, foreign);
      },
    );
  };

/** The operator API's reads and live tails. */
export const deviceLogRoutes = (ctx: ServerContext) => async (app: ServerApp) => {
  const { deviceLogs, devices } = ctx;
  const deviceExists = (id: string) => devices.exists(id);
  const tails = new LogTails({ logs: deviceLogs, notifier: ctx.notifier, exists: (t) => deviceExists(t.deviceId), onError: (err) => app.log.error(err) });
  // open tails end first: the server then has no connection left to wait for
  app.addHook('preClose', () => tails.close());
  const tags = ['dongle'];
  app.get(
    '/dongle/devices/:id/logs/',
    {
      schema: {
        tags,
        description: "The device's newest lines (of a service, since a time), oldest first: what its services printed and its agent's own messages.",
        params: DeviceParams,
        querystring: Type.Object({ ...Filter, limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_READ_LINES, default: 100 })) }),
        response: { 200: Type.Array(Line) },
      },
    },
    async (req) => {
      const { id } = req.params;
      if (!(await deviceExists(id))) throw new NotFoundError(`no device ${id}`);
      const { limit = 100, ...filter } = req.query;
      return deviceLogs.read(id, { ...filter, limit });
    },
  );

  app.get(
    '/dongle/devices/:id/logs/tail/',
    {
      schema: {
        tags,
        description:
          "A live tail of the device's log as Server-Sent Events: the newest `limit` lines, then each new one as it arrives. Each event's `id` is " +
          "the line's; with `Last-Event-ID`, the lines after that one.",
        params: DeviceParams,
        querystring: Type.Object({ ...Filter, limit: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_READ_LINES, default: 100 })) }),
        headers: Type.Object({ 'last-event-id': Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })) }),
      },
    },
    async (req, reply) => {
      const { id } = req.params;
      if (!(await deviceExists(id))) throw new NotFoundError(`no device ${id}`);
      const { limit = 100, ...filter } = req.query;
      const after = req.headers['last-event-id'];
      await tails.serve(reply, { deviceId: id, ...filter, backlog: limit, ...(after !== undefined ? { afterId: Number(after) } : {}) });
      return reply;
    },
  );
};
