// The executor's backoff bookkeeping: when failed steps, services' creates/starts and apps' update
// locks are retried, which lock file held an app back, and which release failed. Bounded: entries
// of steps no longer planned expire (prune).
import { Backoff } from './backoff.js';
import { stepKey, type Step } from './types.js';

export class StepRetries {
  /** failed steps (by stepKey) → when they are retried */
  private readonly steps = new Backoff<string>(2000, 5 * 60_000);
  /** `appId/service` → when its create/start is retried; cleared on success */
  private readonly services = new Backoff<string>(2000, 5 * 60_000);
  /** app → when taking its update lock is retried, and the app's lock file the last take failed on */
  private readonly locks = new Backoff<number>(1000, 10_000);
  private readonly blockingLock = new Map<number, string>();
  /** app → release of which a container failed to be created or started; cleared when a release is applied */
  private readonly failed = new Map<number, number>();

  /** When a failed step is retried: it is not run before (undefined: it did not fail). */
  retryAt(step: Step): number | undefined {
    return this.steps.retryAt(stepKey(step));
  }

  /** For the plan: when each service's create/start and each app's lock are retried. */
  backoffs(): { services: Map<string, number>; locks: Map<number, number> } {
    return { services: this.services.retryAts(), locks: this.locks.retryAts() };
  }

  /** For the plan: app → release of which a container failed to be created or started. */
  failedReleases(): ReadonlyMap<number, number> {
    return this.failed;
  }

  /** Locks are overridden (of one app, or all): the next apply takes them, without waiting for a retry. */
  overrideLocks(appId?: number): void {
    if (appId === undefined) this.locks.clear();
    else this.locks.delete(appId);
  }

  /** The lock file the app held at the last failed take (undefined: none on record). */
  blockingLockOf(appId: number): string | undefined {
    return this.blockingLock.get(appId);
  }

  /** A take of the app's lock failed on `lockPath`: the wait before the next. */
  lockedOut(appId: number, lockPath: string): number {
    this.blockingLock.set(appId, lockPath);
    return this.locks.failed(appId);
  }

  lockTaken(appId: number): void {
    this.locks.delete(appId);
    this.blockingLock.delete(appId);
  }

  succeeded(step: Step): void {
    this.steps.delete(stepKey(step));
  }

  /** The service's create/start worked: it is no longer backed off. */
  serviceSucceeded(appId: number, serviceName: string): void {
    this.services.delete(`${appId}/${serviceName}`);
  }

  releaseApplied(appId: number): void {
    this.failed.delete(appId);
  }

  /** A step failed: the wait before its retry; a create/start backs its service off with it. */
  stepFailed(step: Step, service: { appId: number; serviceName: string } | undefined): number {
    const key = stepKey(step);
    const delay = this.steps.failed(key);
    if (service && (step.action === 'create' || step.action === 'start')) {
      this.services.set(`${service.appId}/${service.serviceName}`, this.steps.entry(key)!);
    }
    if (step.action === 'create') this.failed.set(step.service.appId, step.service.releaseId);
    return delay;
  }

  /**
   * Backoff entries of steps that are no longer planned (a container gone, a service removed)
   * must not pile up over months: once long expired they go.
   */
  prune(): void {
    const stale = Date.now() - 15 * 60_000;
    for (const backoff of [this.steps, this.services, this.locks]) backoff.prune(stale);
    for (const appId of this.blockingLock.keys()) if (this.locks.retryAt(appId) === undefined) this.blockingLock.delete(appId);
  }
}
