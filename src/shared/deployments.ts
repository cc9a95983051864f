// What a device says of the release it applied, after it started: the part of the agent's state
// report (`PATCH /device/v1/state`, per app `settle`) that the server's deployment records follow.
//
// A release is deployed when every service it runs stays up, without a restart, for the settle
// period (and is healthy, where it has a healthcheck). Until then the app is `settling`; a service
// that exits with an error, restarts or is unhealthy makes it `failed` (the service's `error` says
// why: exit code, restarts, its last lines). A `failed` app still becomes `settled` if its services
// then run for the settle period after all.

export const SETTLE_STATES = ['settling', 'settled', 'failed'] as const;
export type SettleState = (typeof SETTLE_STATES)[number];

/** The settle period an agent uses unless told otherwise (`--settle-time`). */
export const DEFAULT_SETTLE_MS = 30_000;
