// POST /v2/telemetry on the device API: apps record data points for the control plane's logbook.
// Any key of the device API will do (an app's own, BALENA_SUPERVISOR_API_KEY, included).
//
//   {"field": "obd.bat.voltage", "type": "float", "value": 13.5, "ts": "2020-07-09T10:03:37.566Z"}
//   or a list of such points (at most 10,000). type: float, int, bool, string or geo_point (value
//   {"lat", "lon"}); ts (RFC 3339) is optional: default, when the agent received the point.
//   202  {"status": "success", "accepted": n}: kept on disk, uploaded in cloud mode
//   400  {"status": "failed", "message"} naming the field, e.g. "/3/value"
//
// The route is part of the device API; what it feeds (the buffer, the upload) loads on its first call.
import { Type } from '@sinclair/typebox';
import { MAX_POINTS_PER_REQUEST, parsePoint, parsePoints, PointSchema } from '../../shared/telemetry.js';
import type { Api } from '../api/apiRequest.js';
import type { DevicePort } from '../api/devicePort.js';

const Body = Type.Union([PointSchema, Type.Array(PointSchema, { minItems: 1, maxItems: MAX_POINTS_PER_REQUEST })]);

export const telemetryRoutes = (device: DevicePort) => async (app: Api) => {
  app.post('/v2/telemetry', { schema: { body: Body } }, async (req, reply) => {
    const now = Date.now() * 1000;
    const points = Array.isArray(req.body) ? parsePoints(req.body, '', now) : [parsePoint(req.body, '', now)];
    await device.recordTelemetry(points);
    return reply.code(202).send({ status: 'success', accepted: points.length });
  });
};
