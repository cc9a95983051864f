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
