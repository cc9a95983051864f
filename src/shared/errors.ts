// Typed errors shared by the agent and the server; each HTTP server maps them to status codes in one place.

export class BosunError extends Error {
  override name = 'BosunError';
}

/** Input from outside (a target state, a request body, a config file) that does not validate. */
export class ValidationError extends BosunError {
  override name = 'ValidationError';
  constructor(
    /** JSON pointer of the offending field, e.g. `/apps/1/release/services/web/image` */
    readonly field: string,
    readonly reason: string,
    what = 'input',
  ) {
    super(`invalid ${what}: ${field || '/'}: ${reason}`);
  }
}

/** An app's update lock is held by the app, so the agent must not stop or kill its services. */
export class UpdatesLockedError extends BosunError {
  override name = 'UpdatesLockedError';
  constructor(
    readonly appId: number,
    readonly lockPath: string,
  ) {
    super(`updates are locked for app ${appId} (${lockPath})`);
  }
}

/** Something a request names (an app, a service, a container) does not exist. */
export class NotFoundError extends BosunError {
  override name = 'NotFoundError';
}

/** A request that is well-formed but not allowed in the device's current situation. */
export class ConflictError extends BosunError {
  override name = 'ConflictError';
}

/** Missing, wrong or out-of-scope credentials. */
export class UnauthorizedError extends BosunError {
  override name = 'UnauthorizedError';
}

/**
 * The HTTP status of a client-side error, for both servers (the device API and the control plane):
 * typed errors by kind, fastify's own request errors (validation, bad JSON, too large) as they are.
 * Undefined for anything else, whose status each server decides.
 */
export function clientErrorStatus(err: unknown): number | undefined {
  if (err instanceof ValidationError) return 400;
  if (err instanceof UnauthorizedError) return 401;
  if (err instanceof NotFoundError) return 404;
  if (err instanceof ConflictError) return 409;
  if (err instanceof UpdatesLockedError) return 423;
  const e = err as { validation?: unknown; statusCode?: number };
  if (e.validation) return 400;
  if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) return e.statusCode;
  return undefined;
}
