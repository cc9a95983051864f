// The planner: (current engine state, desired state, facts) → the next steps. Pure: no I/O, no clock.
// The reconciler runs the steps and plans again until only waits (noops) or nothing remain.
// Per app, releasePlan.ts plans the release-level steps and servicePlan.ts each service's; here,
// the apps in order and the cleanup of images nothing uses.
import { findImage } from '../engine/imageRef.js';
import type { DesiredState } from './desiredState.js';
import { AppPlanner } from './releasePlan.js';
import type { CurrentState, PlanContext, Step } from './types.js';

export { POLL_MS } from './planScope.js';
export { handoverDeadline } from './servicePlan.js';

export function plan(current: CurrentState, desired: DesiredState, ctx: PlanContext): Step[] {
  const appIds = new Set<number>([
    ...desired.apps.keys(),
    ...current.containers.map((c) => c.appId),
    ...current.networks.map((n) => n.appId),
    // A removed app with nothing left on the engine still has its lock to release and record to clear.
    ...ctx.locksHeld,
    ...ctx.appliedReleases.keys(),
    ...ctx.initialContainers.keys(),
  ]);
  const steps: Step[] = [];
  for (const appId of [...appIds].sort((a, b) => a - b)) {
    steps.push(...new AppPlanner(appId, current, desired.apps.get(appId), ctx).plan());
  }
  // An app waiting (on its lock, a handover, a failing pull) never holds back unrelated cleanup.
  if (ctx.downloading.size === 0) steps.push(...cleanupImages(current, desired, ctx));
  return steps;
}

/** Images the agent pulled that neither the target nor any container uses (old ones stay while their container runs). */
function cleanupImages(current: CurrentState, desired: DesiredState, ctx: PlanContext): Step[] {
  const wanted = new Set<string>(ctx.keepImages);
  for (const app of desired.apps.values()) {
    for (const svc of app.services.values()) for (const ref of svc.images) wanted.add(ref);
  }
  const wantedIds = new Set([...wanted].map((ref) => findImage(current.images, ref)?.id).filter(Boolean));
  const steps: Step[] = [];
  for (const ref of ctx.trackedImages) {
    if (wanted.has(ref)) continue;
    const image = findImage(current.images, ref);
    if (!image || current.imageIdsInUse.has(image.id)) continue;
    // Untagging is enough when the same image is still wanted under another name.
    steps.push({ action: 'removeImage', ref, imageId: wantedIds.has(image.id) ? '' : image.id });
  }
  return steps;
}
