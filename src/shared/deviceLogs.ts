// Device logs as the agent ships them to the control plane (`POST /device/v1/logs`): NDJSON, one
// line per object. `seq` numbers the device's lines in order (per log queue: a device that lost its
// agent database starts a new queue, and so a new sequence); the server skips lines it already has.
import { Type, type Static } from '@sinclair/typebox';
import { DEPENDENT_UUID_PATTERN } from './dependents.js';

/** Longer messages are cut by the agent (as its log follower cuts a service's overlong lines). */
export const MAX_LOG_MESSAGE = 64 * 1024;

export const LOG_STREAMS = ['stdout', 'stderr', 'system'] as const;
export type LogStream = (typeof LOG_STREAMS)[number];

export const ShippedLogLine = Type.Object(
  {
    seq: Type.Integer({ minimum: 1 }),
    /** when it was printed, by the device's clock (RFC 3339; the engine's have nanoseconds) */
    ts: Type.String({ format: 'date-time', maxLength: 40 }),
    /** a service's stdout or stderr, or the agent's own message (`system`) */
    stream: Type.Union(LOG_STREAMS.map((s) => Type.Literal(s))),
    message: Type.String({ maxLength: MAX_LOG_MESSAGE }),
    /** which service printed it (absent on system lines) */
    app_id: Type.Optional(Type.Integer({ minimum: 1 })),
    service: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    release_id: Type.Optional(Type.Integer({ minimum: 1 })),
    /** a line a gateway app posted for one of its dependent devices (then no app_id or service) */
    dependent_uuid: Type.Optional(Type.String({ pattern: DEPENDENT_UUID_PATTERN })),
  },
  { additionalProperties: false },
);
export type ShippedLogLine = Static<typeof ShippedLogLine>;
