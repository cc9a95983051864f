// A `force` given for an apply (`POST /v1/update`, `POST /v2/local/target-state`, `docker.release`):
// the update locks it overrides, and for how long. An app's key overrides its own app's lock only,
// the device key every app's. The override is spent once an apply that started after it reaches
// the target; later applies honour the locks again.
import type { KeyScope } from '../api/apiKeys.js';

const EVERY_APP = 0;

export class LockOverride {
  /** app id (EVERY_APP for the device) → when the override was asked for */
  private readonly granted = new Map<number, number>();

  grant(scope: KeyScope, at = Date.now()): void {
    this.granted.set(scope.kind === 'device' ? EVERY_APP : scope.appId, at);
  }

  /** Whether the app's lock is overridden now. */
  covers(appId: number): boolean {
    return this.granted.has(EVERY_APP) || this.granted.has(appId);
  }

  /** An apply that started at `startedAt` converged: overrides asked for until then are spent. */
  converged(startedAt: number): void {
    for (const [app, at] of this.granted) if (at <= startedAt) this.granted.delete(app);
  }
}
