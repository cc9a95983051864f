// What the planning of one app shares: the state it plans from, the steps it collects, and the
// waits and kills both its release-level and its per-service parts plan. Pure, as the planner.
import { findImage } from '../engine/imageRef.js';
import type { DesiredApp } from './desiredState.js';
import { stepKey, type CurrentContainer, type CurrentState, type ForeignContainer, type PlanContext, type Step } from './types.js';

export const LIVE = new Set(['running', 'restarting', 'paused']);
/**
 * Every wait says when to plan again (`retryAt`, controller-runtime's RequeueAfter): a backoff or
 * a timeout at its end; what the agent sees only by looking (a handover's signal file, a container
 * coming up, a download's end) this often.
 */
export const POLL_MS = 1000;

export class AppScope {
  readonly steps: Step[] = [];
  /** stops and kills: the app's update lock gates them (see ReleasePlanner) */
  readonly destructive: Step[] = [];
  /** the app's containers, newest first */
  readonly containers: CurrentContainer[];
  /** engine names of the app's networks planned for removal (or recreation) */
  readonly removingNetworks = new Set<string>();
  /** the release's `remove_containers` found on the engine, while the release is not applied yet */
  initial: ForeignContainer[] = [];
  /** initial containers still run: nothing of the release starts until they are stopped */
  initialRunning = false;

  constructor(
    readonly appId: number,
    readonly current: CurrentState,
    readonly app: DesiredApp | undefined,
    readonly ctx: PlanContext,
  ) {
    this.containers = current.containers.filter((c) => c.appId === appId).sort((a, b) => b.createdAt - a.createdAt);
  }

  /** True (after planning a wait) while initial containers hold back the release's containers. */
  waitingForInitial(serviceName: string, ...held: Step[]): boolean {
    if (!this.initialRunning) return false;
    const names = this.initial.filter((c) => LIVE.has(c.state)).map((c) => c.name);
    this.noop(serviceName, `${serviceName} waits for ${names.join(', ') || 'the initial containers'} to stop (remove_containers)`, ...held);
    return true;
  }

  missingAppImages(): string[] {
    const refs = [...(this.app?.services.values() ?? [])].flatMap((s) => s.images);
    return refs.filter((ref) => !findImage(this.current.images, ref));
  }

  kill(c: CurrentContainer, reason: string, removeImage?: string): void {
    if (this.destructive.some((s) => 'containerId' in s && s.containerId === c.id)) return;
    const spec = this.app?.services.get(c.serviceName);
    this.destructive.push({
      action: 'kill',
      appId: this.appId,
      serviceName: c.serviceName,
      containerId: c.id,
      timeout: spec?.config.stopTimeout ?? 10,
      reason,
      ...(removeImage ? { removeImage } : {}),
    });
  }

  /** A wait on what is seen only by looking: planned again after POLL_MS. `held`: see wait(). */
  noop(serviceName: string | undefined, reason: string, ...held: Step[]): void {
    this.wait(serviceName, reason, this.ctx.now + POLL_MS, held);
  }

  /** A wait planned again at `retryAt`; `held` are the steps it holds back (their errors stay while it lasts). */
  wait(serviceName: string | undefined, reason: string, retryAt: number, held: Step[], lock = false): void {
    this.steps.push({
      action: 'noop',
      appId: this.appId,
      ...(serviceName ? { serviceName } : {}),
      reason,
      retryAt,
      ...(held.length ? { holds: held.map(stepKey) } : {}),
      ...(lock ? { lock } : {}),
    });
  }

  key(serviceName: string): string {
    return `${this.appId}/${serviceName}`;
  }
}
