// The device link's contract, the one definition both sides use: the server validates with these
// schemas (routes/provisioning.ts, stateReports.ts, deviceCommands.ts); the agent (src/agent/cloud)
// imports only their types (`import type`: the agent does not load TypeBox for them).
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { SETTLE_STATES } from './deployments.js';
import { DEPENDENT_UUID_PATTERN, DependentDeviceReportSchema, MAX_DEPENDENT_DEVICES } from './dependents.js';

const Nullable = <T extends TSchema>(t: T) => Type.Union([Type.Null(), t]);

// ---- registration: POST /device/register (provisioning key) --------------------------------------

export const RegistrationSchema = Type.Object(
  {
    /** the agent's config.json uuid */
    uuid: Type.String({ pattern: '^[0-9a-fA-F]{7,64}$' }),
    device_type: Type.String({ minLength: 1, maxLength: 100 }),
    /** default (also when empty): the first 7 characters of the uuid, as the agent names itself */
    name: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);
export type Registration = Static<typeof RegistrationSchema>;
/** The answer (201, or 200 for a repeat): the device's id and its own key, shown once. */
export const RegisteredSchema = Type.Object({ id: Type.String(), uuid: Type.String(), device_key: Type.String() });
export type Registered = Static<typeof RegisteredSchema>;

// ---- the state report: PATCH /device/v1/state (device key) ---------------------------------------

export const MAX_REPORT_ERROR_TEXT = 4000;
export const MAX_REPORT_APPS = 256;
export const MAX_REPORT_SERVICES = 256;
export const UPDATE_STATUSES = ['done', 'downloading', 'downloaded', 'applying changes', 'aborted'] as const;
export type UpdateStatus = (typeof UPDATE_STATUSES)[number];

const ReleaseId = Nullable(Type.Integer({ minimum: 1 }));
const Text = (maxLength: number) => Nullable(Type.String({ maxLength }));
/** One service of an app (the agent's `ServiceReport`, src/agent/state/currentState.ts, sends a part of it). */
export const ServiceReportSchema = Type.Object(
  {
    status: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    releaseId: Type.Optional(ReleaseId),
    image: Type.Optional(Type.String({ maxLength: 1000 })),
    imageId: Type.Optional(Text(200)),
    containerId: Type.Optional(Text(200)),
    createdAt: Type.Optional(Text(100)),
    downloadProgress: Type.Optional(Nullable(Type.Number({ minimum: 0, maximum: 100 }))),
    error: Type.Optional(Text(MAX_REPORT_ERROR_TEXT)),
  },
  { additionalProperties: false },
);
/** One app; every field optional: a report carries what changed. */
export const AppReportSchema = Type.Object(
  {
    appId: Type.Optional(Type.Integer({ minimum: 1 })),
    appUuid: Type.Optional(Type.String({ maxLength: 200 })),
    appName: Type.Optional(Type.String({ maxLength: 200 })),
    releaseId: Type.Optional(ReleaseId),
    commit: Type.Optional(Text(200)),
    targetReleaseId: Type.Optional(ReleaseId),
    targetCommit: Type.Optional(Text(200)),
    updateStatus: Type.Optional(Type.Union(UPDATE_STATUSES.map((s) => Type.Literal(s)))),
    /** of the applied release (deployments.ts); null while none is applied */
    settle: Type.Optional(Nullable(Type.Union(SETTLE_STATES.map((s) => Type.Literal(s))))),
    /** when present, the app's whole set of services (`null` for a service: it is gone) */
    services: Type.Optional(Type.Record(Type.String({ minLength: 1, maxLength: 200 }), Nullable(ServiceReportSchema), { maxProperties: MAX_REPORT_SERVICES })),
  },
  { additionalProperties: false },
);
/** The device's UniK images and instances (src/agent/unik), whole, when they changed. */
export const MAX_REPORT_UNIK = 500;
const UnikText = Type.String({ maxLength: 200 });
export const UnikReportSchema = Type.Object(
  {
    images: Type.Array(
      Type.Object(
        { id: UnikText, name: UnikText, provider: UnikText, compiler: UnikText, size_mb: Type.Integer({ minimum: 0 }), created: UnikText },
        { additionalProperties: false },
      ),
      { maxItems: MAX_REPORT_UNIK },
    ),
    instances: Type.Array(
      Type.Object(
        { id: UnikText, name: UnikText, provider: UnikText, state: UnikText, image_id: UnikText, created: UnikText },
        { additionalProperties: false },
      ),
      { maxItems: MAX_REPORT_UNIK },
    ),
  },
  { additionalProperties: false },
);
export type UnikReport = Static<typeof UnikReportSchema>;

export const StateReportSchema = Type.Object(
  {
    agent_version: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    /** keyed by app id (the project's id); `null` removes an app the device no longer runs */
    apps: Type.Optional(
      Type.Record(Type.String({ pattern: '^[1-9][0-9]{0,15}$' }), Nullable(AppReportSchema), { additionalProperties: false, maxProperties: MAX_REPORT_APPS }),
    ),
    /** a gateway's dependent devices, keyed by uuid: what changed since the last report (dependents.ts) */
    dependent_devices: Type.Optional(
      Type.Record(Type.String({ pattern: DEPENDENT_UUID_PATTERN }), DependentDeviceReportSchema, {
        additionalProperties: false,
        maxProperties: MAX_DEPENDENT_DEVICES,
      }),
    ),
    unik: Type.Optional(UnikReportSchema),
  },
  { additionalProperties: false },
);
export type ServiceReportPatch = Static<typeof ServiceReportSchema>;
export type AppReportPatch = Static<typeof AppReportSchema>;
export type StateReport = Static<typeof StateReportSchema>;

// ---- commands: GET /device/v1/commands, POST /device/v1/commands/<id>/result (device key) ----------

export const MAX_RESULT_BYTES = 2 * 1024 * 1024;
/** One queued command as the device takes it; `payload` is a SupervisorPayload (kind `supervisor`) or an ExecuteCommand (`execute`). */
export const DeviceCommandSchema = Type.Object({ id: Type.Integer(), kind: Type.String(), payload: Type.Unknown() });
export type DeviceCommand = Static<typeof DeviceCommandSchema>;
/** The payload of a `supervisor` command: a call to the device's own API (built by the server: routes/supervisorProxy.ts). */
export const SUPERVISOR_METHODS = ['GET', 'POST', 'PATCH', 'PUT', 'DELETE'] as const;
export interface SupervisorPayload {
  method: (typeof SUPERVISOR_METHODS)[number];
  /** "/ping", "/v1/…" or "/v2/…", with any query string */
  path: string;
  /** the caller's JSON body; absent when it gave none */
  body?: unknown;
}

/** A supervisor command's result: the device API's answer (headers are stored, not passed on). */
export const SupervisorResultSchema = Type.Object(
  {
    status: Type.Integer({ minimum: 200, maximum: 599 }),
    body: Type.String({ maxLength: MAX_RESULT_BYTES }),
    headers: Type.Optional(Type.Record(Type.String({ maxLength: 200 }), Type.String({ maxLength: 8192 }))),
  },
  { additionalProperties: false },
);
/** An execute command's result, as a Salt job returns it: retcode 0 when it succeeded. */
export const ExecuteResultSchema = Type.Object(
  {
    return: Type.Unknown({ description: "the command's return value" }),
    success: Type.Boolean(),
    retcode: Type.Integer({ description: '0 when the command succeeded' }),
  },
  { additionalProperties: false },
);
/** Any command the device could not run at all. */
export const FailedResultSchema = Type.Object({ error: Type.String({ minLength: 1, maxLength: 10_000 }) }, { additionalProperties: false });
export type SupervisorResult = Static<typeof SupervisorResultSchema>;
export type ExecuteResult = Static<typeof ExecuteResultSchema>;
export type FailedResult = Static<typeof FailedResultSchema>;
export type CommandResultBody = SupervisorResult | ExecuteResult | FailedResult;
