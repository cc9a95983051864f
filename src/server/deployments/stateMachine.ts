// The deployment of a release on a device, as the device's reports move it along. Pure.
//
//   pending ─→ downloading ─→ applying ─→ succeeded   (the release runs and its services settled)
//      └───────────┴────────────┴──────→ failed      (a pull, create or start failed, or a service
//      │                                              crashed, restarted or is unhealthy: `error` says why)
//      └──────────── (a newer release is the device's target, or the device moved on to one) ─→ superseded
//
// succeeded is final. failed moves only to succeeded (the agent keeps retrying, and a service that
// crashed may settle after all) or to failed with another error. superseded moves again when the
// device reports on that release once more (it finished it after all), or back to pending when it is
// the device's target again (followTargets.ts).
import type { SettleState } from '../../shared/deployments.js';

export const DEPLOYMENT_STATES = ['pending', 'downloading', 'applying', 'succeeded', 'failed', 'superseded'] as const;
export type DeploymentState = (typeof DEPLOYMENT_STATES)[number];

/** States a deployment is still under way in (those a newer release supersedes). */
export const IN_PROGRESS: readonly DeploymentState[] = ['pending', 'downloading', 'applying'];

/** What the state machine reads of an app's (merged) report: `AppReport` of src/agent/state/currentState.ts. */
export interface AppDeploymentReport {
  /** the release recorded as applied on the device */
  releaseId?: number | null;
  targetReleaseId?: number | null;
  updateStatus?: string;
  /** of the applied release; absent from agents that do not watch for it (their `done` counts) */
  settle?: SettleState | null;
  services?: Record<string, { error?: string | null }>;
}

export interface DeploymentUpdate {
  releaseId: number;
  state: DeploymentState;
  error: string | null;
}

/** Longer error texts are cut (the report's per-service errors are bounded alike). */
export const MAX_DEPLOYMENT_ERROR = 4000;

/**
 * What an app's report says of the deployment of a release on the device: of the release it
 * applied, once applied (succeeded once settled), else of the release it is moving to (its own
 * target, else `serverTarget`, the one the server gives it).
 */
export function deploymentUpdate(app: AppDeploymentReport, serverTarget: number | undefined): DeploymentUpdate | undefined {
  const errors = Object.entries(app.services ?? {})
    .filter(([, s]) => s.error)
    .map(([name, s]) => `${name}: ${s.error!}`);
  const failed = (releaseId: number, fallback: string): DeploymentUpdate => ({ releaseId, state: 'failed', error: cut(errors.join('; ') || fallback) });
  if (app.updateStatus === 'done' && app.releaseId) {
    if (app.settle === 'settling') return { releaseId: app.releaseId, state: 'applying', error: null };
    if (app.settle === 'failed') return failed(app.releaseId, 'its services did not settle');
    return { releaseId: app.releaseId, state: 'succeeded', error: null };
  }
  const target = app.targetReleaseId ?? serverTarget;
  if (!target) return undefined;
  if (app.updateStatus === 'aborted' || errors.length) return failed(target, 'the update was aborted');
  if (app.updateStatus === 'downloading' || app.updateStatus === 'downloaded') return { releaseId: target, state: 'downloading', error: null };
  if (app.updateStatus === 'applying changes') return { releaseId: target, state: 'applying', error: null };
  return undefined;
}

/** Whether a deployment in state `from` may move to `to`. */
export function mayMove(from: DeploymentState, to: DeploymentState): boolean {
  if (from === 'succeeded') return false;
  if (from === 'failed') return to === 'succeeded' || to === 'failed';
  if (to === 'superseded') return IN_PROGRESS.includes(from);
  return to !== 'pending';
}

/** The states a deployment moving to `to` must not be in (for a guarded UPDATE); never empty. */
export const blockedFrom = (to: DeploymentState): DeploymentState[] => DEPLOYMENT_STATES.filter((from) => !mayMove(from, to));

/** The change to a deployment an update makes (undefined: none); `finished`: it ended now. */
export function nextDeployment(
  existing: { state: DeploymentState; error: string | null } | undefined,
  update: DeploymentUpdate,
): { state: DeploymentState; error: string | null; finished: boolean } | undefined {
  if (existing && (!mayMove(existing.state, update.state) || (existing.state === update.state && existing.error === update.error))) return undefined;
  return { state: update.state, error: update.error, finished: isFinished(update.state) };
}

export const isFinished = (state: DeploymentState) => state === 'succeeded' || state === 'failed' || state === 'superseded';

/**
 * The release the device has moved on to, per the report: its deployments of the app's older
 * releases still under way are superseded (a newer one, not fetched yet, is left alone).
 */
export function supersedingRelease(app: AppDeploymentReport, serverTarget: number | undefined): number | undefined {
  return app.targetReleaseId ?? serverTarget ?? undefined;
}

const cut = (text: string) => (text.length > MAX_DEPLOYMENT_ERROR ? `${text.slice(0, MAX_DEPLOYMENT_ERROR - 1)}…` : text);
