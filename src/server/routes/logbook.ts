// The telemetry logbook: devices upload the data points their apps (and the agent itself) recorded;
// users read them back with AutoPi's logbook endpoint.
//
// POST /device/v1/telemetry                 (device key: `Authorization: Bearer <device key>`)
//   {"batch": "<id the device gave the batch>", "points": [{"field", "type", "value", "ts"}, ...]}
//   200  {"batch", "stored": n, "duplicate": false}; a batch id this device sent before is not
//        stored again: {"stored": 0, "duplicate": true}. The device deletes a batch once answered.
//   400  {"detail", "field"}: a point that does not match its type, e.g. field "/points/3/value".
//
// GET /logbook/storage/read/?device_id&field&field_type&from_utc&to_utc[&aggregation&interval]
//   raw:        [{"ts": "2020-07-09T10:11:53.811839Z", "value": 13.5}, ...]   (oldest first)
//   geo_point:  [{"ts": …, "location": {"lat": 57.04699, "lon": 9.93909}}, ...]
//   aggregated: [{"max_ts": 1594289021415, "ts": "2020-07-09T10:03:37.566Z", "value": 13.5}, ...]
//               one per bucket holding points: ts its first point, max_ts its last (ms), value the
//               aggregation (avg, min, max, sum, count) of its values.
//   400 naming the parameter (bad type, range or interval); 404 for an unknown device.
import { Type } from '@sinclair/typebox';
import { NotFoundError, ValidationError } from '../../shared/errors.js';
import { MAX_POINTS_PER_REQUEST, parsePoints, PointSchema } from '../../shared/telemetry.js';
import type { DeviceKeyAuth } from '../auth/deviceKeys.js';
import { MAX_RAW_POINTS } from '../logbook/logbook.js';
import { ReadParams, readQuery } from '../logbook/readQuery.js';
import type { ServerApp, ServerContext } from '../app.js';

const Upload = Type.Object(
  {
    batch: Type.String({ pattern: '^[A-Za-z0-9_-]{1,100}$', description: 'the batch id, the same on every retry of the batch' }),
    points: Type.Array(PointSchema, { minItems: 1, maxItems: MAX_POINTS_PER_REQUEST }),
  },
  { additionalProperties: false },
);

const Location = Type.Object({ lat: Type.Number(), lon: Type.Number() });
const ReadAnswer = Type.Array(
  Type.Union([
    Type.Object({ ts: Type.String(), value: Type.Union([Type.Number(), Type.Boolean(), Type.String()]) }, { title: 'raw point' }),
    Type.Object({ ts: Type.String(), location: Location }, { title: 'geo_point' }),
    Type.Object({ max_ts: Type.Integer(), ts: Type.String(), value: Type.Number() }, { title: 'bucket' }),
  ]),
  { examples: [[{ max_ts: 1594289021415, ts: '2020-07-09T10:03:37.566Z', value: 13.5 }]] },
);

/** The device link's upload (device key: the device link context's hook). */
export const telemetryUploadRoutes =
  (ctx: ServerContext, { deviceOf }: DeviceKeyAuth) =>
  async (app: ServerApp) => {
    const { logbook } = ctx;

    app.post(
      '/device/v1/telemetry',
      {
        // (10,000 points, long strings among them)
        bodyLimit: 16 * 1024 * 1024,
        schema: {
          tags: ['device link'],
          summary: 'Upload a batch of telemetry',
          description:
            "A batch of the device's data points (`Authorization: Bearer <device key>`), stored at once; a batch id sent before is acknowledged " +
            'without being stored again.',
          security: [],
          body: Upload,
          response: { 200: Type.Object({ batch: Type.String(), stored: Type.Integer(), duplicate: Type.Boolean() }) },
        },
      },
      async (req) => {
        const points = parsePoints(req.body.points, '/points', Date.now() * 1000);
        return { batch: req.body.batch, ...(await logbook.store(deviceOf(req).id, req.body.batch, points)) };
      },
    );
  };

/** The operator API's reads. */
export const logbookRoutes = (ctx: ServerContext) => async (app: ServerApp) => {
  const { logbook } = ctx;
  app.get(
    '/logbook/storage/fields/',
    {
      schema: {
        tags: ['logbook'],
        summary: "A device's telemetry fields",
        description:
          'Every field the device has points of, with its type and the time of its newest point (`last_ts`, RFC 3339 to the microsecond): what ' +
          '`GET /logbook/storage/read/` can be asked for. 404 for an unknown device.',
        querystring: Type.Object({ device_id: Type.String({ minLength: 1, maxLength: 100, description: "the server's device id" }) }),
        response: {
          200: Type.Array(Type.Object({ field: Type.String(), type: Type.String(), last_ts: Type.Union([Type.String(), Type.Null()]) }), {
            examples: [[{ field: 'obd.bat.voltage', type: 'float', last_ts: '2020-07-09T10:03:37.566000Z' }]],
          }),
        },
      },
    },
    async (req) => {
      if (!(await logbook.hasDevice(req.query.device_id))) throw new NotFoundError(`no device ${req.query.device_id}`);
      return logbook.fields(req.query.device_id);
    },
  );
  app.get(
    '/logbook/storage/read/',
    {
      schema: {
        tags: ['logbook'],
        summary: "Read a device's telemetry",
        description:
          "A device's data points of one field in [from_utc, to_utc): raw (geo_point: with `location`), or with `aggregation` and `interval` one " +
          'entry per bucket (aligned on multiples of the interval since the epoch, UTC) that has points.',
        querystring: ReadParams,
        response: { 200: ReadAnswer },
      },
      // (fastify's own serializer would have to try the answer's three shapes in turn)
      serializerCompiler: () => (data) => JSON.stringify(data),
    },
    async (req) => {
      const q = readQuery(req.query);
      if (!(await logbook.hasDevice(q.deviceId))) throw new NotFoundError(`no device ${q.deviceId}`);
      const answer = q.bucket ? await logbook.readBuckets(q, q.bucket) : await logbook.readRaw(q);
      if (!answer)
        throw new ValidationError(
          '/to_utc',
          `more than ${MAX_RAW_POINTS} points from ${req.query.from_utc} to ${req.query.to_utc}: narrow the range or aggregate`,
          'query',
        );
      return answer;
    },
  );
};
