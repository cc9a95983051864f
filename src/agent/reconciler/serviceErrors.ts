// A service's last error belongs to the attempt that made it: it is kept with the key of the step
// that failed and shown only while a plan still holds that step (or a wait holding it back, such
// as its retry backoff). A target that brings the service back to what runs, or a container that
// went away, leaves no step behind, and the error goes with it.
import { stepKey, type Step } from './types.js';

export class ServiceErrors {
  /** `appId/service` → the error and the key of the step that made it */
  private readonly errors = new Map<string, { step: string; message: string }>();

  set(appId: number, serviceName: string, step: Step, message: string): void {
    this.errors.set(`${appId}/${serviceName}`, { step: stepKey(step), message });
  }

  get(appId: number, serviceName: string): string | undefined {
    return this.errors.get(`${appId}/${serviceName}`)?.message;
  }

  delete(appId: number, serviceName: string): void {
    this.errors.delete(`${appId}/${serviceName}`);
  }

  /** Drops the errors of steps the plan no longer holds. */
  retain(steps: readonly Step[]): void {
    const planned = new Set(steps.flatMap((s) => (s.action === 'noop' ? (s.holds ?? []) : [stepKey(s)])));
    for (const [key, e] of this.errors) if (!planned.has(e.step)) this.errors.delete(key);
  }
}
