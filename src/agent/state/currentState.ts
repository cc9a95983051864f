// The device's current state as users see it: per app and service, status, release, image,
// download progress and errors. Computed from the engine state plus what the agent is doing. Pure.
import { findImage } from '../engine/imageRef.js';
import type { DesiredState } from '../reconciler/desiredState.js';
import type { CurrentContainer, CurrentState, Step } from '../reconciler/types.js';
import { isoTime } from '../../shared/isoTime.js';
import type { SettleState } from '../../shared/deployments.js';
import type { UpdateStatus } from '../../shared/deviceLink.js';

export type ServiceStatus =
  | 'Downloading'
  | 'Downloaded'
  | 'Installing'
  | 'Installed'
  | 'Starting'
  | 'Running'
  | 'Stopping'
  | 'Stopped'
  | 'exited'
  | 'Dead'
  | 'Restarting'
  | 'Paused'
  | 'Handing over'
  | 'Awaiting handover'
  | 'Aborted';

export interface ServiceReport {
  status: ServiceStatus;
  releaseId: number | null;
  image: string;
  imageId: string | null;
  containerId: string | null;
  createdAt: string | null;
  downloadProgress: number | null;
  error: string | null;
  /** why a pending change of the service waits (e.g. its app holds the update lock); null when none does */
  waiting: string | null;
}

export interface AppReport {
  appId: number;
  appUuid: string;
  appName: string;
  /** the release recorded as fully applied (null until one is) */
  releaseId: number | null;
  commit: string | null;
  targetReleaseId: number | null;
  targetCommit: string | null;
  updateStatus: UpdateStatus;
  /** whether the applied release settled (src/shared/deployments.ts); null unless the target release is applied */
  settle: SettleState | null;
  services: Record<string, ServiceReport>;
}

export interface ActivityFacts {
  phase(appId: number, service: string): string | undefined;
  progress(appId: number, service: string): number | null;
  error(appId: number, service: string): string | undefined;
  applied: ReadonlyMap<number, { releaseId: number; commit: string }>;
  /** the steps a plan made from this state takes: an app is done only when none is its own */
  planned: readonly Step[];
  /** the target release's settle verdict (settleWatch.ts): its state (reported once applied), and why services failed */
  settle?(appId: number): { state: SettleState; failures: ReadonlyMap<string, string> } | undefined;
}

export function reportCurrentState(current: CurrentState, desired: DesiredState | undefined, facts: ActivityFacts): Record<string, AppReport> {
  const apps: Record<string, AppReport> = {};
  const appIds = new Set([...(desired?.apps.keys() ?? []), ...current.containers.map((c) => c.appId)]);
  for (const appId of [...appIds].sort((a, b) => a - b)) {
    const app = desired?.apps.get(appId);
    const settle = app ? facts.settle?.(appId) : undefined;
    const containers = current.containers.filter((c) => c.appId === appId).sort((a, b) => b.createdAt - a.createdAt);
    const names = new Set([...(app?.services.keys() ?? []), ...containers.map((c) => c.serviceName)]);
    const services: Record<string, ServiceReport> = {};
    for (const name of [...names].sort()) {
      const spec = app?.services.get(name);
      const mine = containers.filter((c) => c.serviceName === name);
      const container = (spec && mine.find((c) => c.configHash === spec.hash)) ?? mine[0];
      const image = spec?.config.image ?? '';
      const progress = facts.progress(appId, name);
      const error = facts.error(appId, name) ?? settle?.failures.get(name) ?? null;
      services[name] = {
        status: serviceStatus({
          spec: spec !== undefined,
          running: spec?.running ?? true,
          container,
          isTarget: !!spec && container?.configHash === spec.hash,
          handover: mine.length > 1,
          phase: facts.phase(appId, name),
          downloading: progress !== null,
          imagePresent: !!findImage(current.images, image),
          error,
        }),
        releaseId: container?.releaseId ?? null,
        image: image || container?.name || '',
        imageId: container?.imageId ?? findImage(current.images, image)?.id ?? null,
        containerId: container?.id ?? null,
        createdAt: container ? isoTime(container.createdAt) : null,
        downloadProgress: progress,
        error,
        waiting: waitReason(facts.planned, appId, name),
      };
    }
    const applied = facts.applied.get(appId);
    const reports = Object.values(services);
    apps[String(appId)] = {
      appId,
      appUuid: app?.appUuid ?? String(appId),
      appName: app?.name ?? '',
      releaseId: applied?.releaseId ?? null,
      commit: applied?.commit ?? null,
      targetReleaseId: app?.releaseId ?? null,
      targetCommit: app?.commit ?? null,
      updateStatus: updateStatus(reports, app !== undefined && applied?.releaseId === app.releaseId && !facts.planned.some((s) => appOf(s) === appId)),
      settle: app && applied?.releaseId === app.releaseId ? (settle?.state ?? null) : null,
      services,
    };
  }
  return apps;
}

interface StatusInput {
  spec: boolean;
  running: boolean;
  container: CurrentContainer | undefined;
  isTarget: boolean;
  handover: boolean;
  phase: string | undefined;
  downloading: boolean;
  imagePresent: boolean;
  error: string | null;
}

function serviceStatus(s: StatusInput): ServiceStatus {
  if (s.phase === 'Killing') return 'Stopping';
  if (s.phase) return s.phase as ServiceStatus;
  if (s.spec && !s.isTarget) {
    if (s.downloading) return 'Downloading';
    if (s.error && !s.imagePresent) return 'Aborted';
    if (!s.container) return s.imagePresent ? 'Downloaded' : 'Downloading';
  }
  if (s.handover && s.isTarget) return 'Awaiting handover';
  switch (s.container?.state) {
    case 'created':
      return 'Installed';
    case 'running':
      return 'Running';
    case 'restarting':
      return 'Restarting';
    case 'paused':
      return 'Paused';
    case 'exited':
      return s.running ? 'exited' : 'Stopped';
    case 'dead':
    case 'removing':
      return 'Dead';
    default:
      return 'Downloaded';
  }
}

function appOf(step: Step): number | undefined {
  if (step.action === 'create') return step.service.appId;
  if (step.action === 'createNetwork') return step.network.appId;
  if (step.action === 'createVolume') return step.volume.appId;
  return 'appId' in step ? step.appId : undefined;
}

function waitReason(planned: readonly Step[], appId: number, service: string): string | null {
  const reasons = planned.flatMap((s) => (s.action === 'noop' && s.appId === appId && s.serviceName === service ? [s.reason] : []));
  return reasons.length ? [...new Set(reasons)].join('; ') : null;
}

/** `done` only when the release is recorded as applied and nothing of the app is planned. */
function updateStatus(services: ServiceReport[], applied: boolean): UpdateStatus {
  if (services.some((s) => s.status === 'Aborted')) return 'aborted';
  if (services.some((s) => s.status === 'Downloading')) return 'downloading';
  if (applied) return 'done';
  if (services.every((s) => s.status === 'Downloaded')) return 'downloaded';
  return 'applying changes';
}
