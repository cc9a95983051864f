// What the reconciler reads from the engine, the facts it is given, and the steps it plans.
import type { RegistryCredentials } from '../../shared/targetState.js';
import type { EngineImage } from '../engine/imageRef.js';
import type { NetworkSpec, VolumeSpec } from './desiredState.js';
import type { ServiceSpec } from './serviceSpec.js';

export type ContainerState = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

/** A container the agent owns, as the engine lists it; identity comes from its labels only. */
export interface CurrentContainer {
  id: string;
  name: string;
  appId: number;
  serviceName: string;
  releaseId: number;
  commit: string;
  configHash: string;
  /** redacted ContainerConfig JSON, for explaining a replacement */
  configLabel: string;
  dependsOn: string[];
  imageId: string;
  state: ContainerState;
  /** ms since epoch */
  createdAt: number;
  /** engine network names the container is attached to */
  networks: string[];
  /** the engine's HostConfig.NetworkMode, e.g. `container:<id>` for `network_mode: service:x` */
  networkMode: string;
}

export interface CurrentNetwork {
  id: string;
  name: string;
  appId: number;
  configHash: string;
}

export interface CurrentVolume {
  name: string;
  appId: number;
}

/** A container the agent does not own; only those a release's `remove_containers` names matter. */
export interface ForeignContainer {
  id: string;
  name: string;
  state: ContainerState;
}

/**
 * An app's `remove_containers` the agent stopped for a deployment (`stopped`) or started again
 * after the deployment failed (`restored`). Kept until a release is applied.
 */
export interface InitialContainers {
  releaseId: number;
  phase: 'stopped' | 'restored';
  names: string[];
}

export interface CurrentState {
  containers: CurrentContainer[];
  /** containers the agent does not own */
  others: ForeignContainer[];
  images: EngineImage[];
  networks: CurrentNetwork[];
  volumes: CurrentVolume[];
  /** image ids used by any container on the engine, owned or not */
  imageIdsInUse: ReadonlySet<string>;
}

/** Facts from outside the engine that the plan depends on; gathered before planning. */
export interface PlanContext {
  now: number;
  /** normalised image refs being pulled right now */
  downloading: ReadonlySet<string>;
  /** image ref → time (ms) before which a failed pull is not retried */
  pullBackoff: ReadonlyMap<string, number>;
  /** `appId/service` → time before which a failed create/start is not retried */
  serviceBackoff: ReadonlyMap<string, number>;
  /** apps whose update locks the agent holds */
  locksHeld: ReadonlySet<number>;
  /** app → time before which taking its (app-held) lock is not retried */
  lockBackoff: ReadonlyMap<number, number>;
  /** `appId/service` whose new container wrote handover-complete */
  handoverComplete: ReadonlySet<string>;
  /** container id → when it started running (ms), for the containers of services mid-handover */
  startedAt: ReadonlyMap<string, number>;
  /** containers the agent itself stopped (target `running: false`), so it may start them again */
  stoppedByAgent: ReadonlySet<string>;
  /** image refs the agent pulled: the only images cleanup may remove */
  trackedImages: ReadonlySet<string>;
  /** pulled images kept though no service uses them (a gateway's dependent apps' images) */
  keepImages: ReadonlySet<string>;
  /** app → release recorded as applied */
  appliedReleases: ReadonlyMap<number, number>;
  /** app → its initial containers' record */
  initialContainers: ReadonlyMap<number, InitialContainers>;
  /** app → release of which a container failed to be created or started (since the last applied release) */
  failedReleases: ReadonlyMap<number, number>;
  /** `appId/service@releaseId` whose data was purged (purge_data) */
  purgedData: ReadonlySet<string>;
}

export const purgeKey = (appId: number, serviceName: string, releaseId: number) => `${appId}/${serviceName}@${releaseId}`;

export type Step =
  | { action: 'fetch'; appId: number; serviceName: string; image: string; registry?: RegistryCredentials }
  | { action: 'createNetwork'; network: NetworkSpec }
  | { action: 'removeNetwork'; appId: number; name: string }
  | { action: 'createVolume'; volume: VolumeSpec }
  | { action: 'takeLock'; appId: number; services: string[] }
  | { action: 'releaseLock'; appId: number }
  | { action: 'create'; service: ServiceSpec; start: boolean; handover: boolean }
  | { action: 'start'; appId: number; serviceName: string; containerId: string }
  | { action: 'stop'; appId: number; serviceName: string; containerId: string; timeout: number }
  | {
      action: 'kill';
      appId: number;
      serviceName: string;
      containerId: string;
      timeout: number;
      reason: string;
      /** delete-then-download: remove the old image once its container is gone */
      removeImage?: string;
    }
  | { action: 'removeImage'; ref: string; imageId: string }
  | { action: 'stopInitial'; appId: number; releaseId: number; container: ForeignContainer }
  | { action: 'restoreInitial'; appId: number; releaseId: number; containers: ForeignContainer[]; forget?: boolean }
  | { action: 'removeInitial'; appId: number; container: ForeignContainer }
  | { action: 'purgeData'; appId: number; serviceName: string; releaseId: number; volumes: string[]; folders: string[] }
  | { action: 'markApplied'; appId: number; releaseId: number | null; commit: string | null }
  | {
      action: 'noop';
      appId?: number;
      serviceName?: string;
      reason: string;
      /** keys (stepKey) of the steps this wait holds back: their errors stay while it lasts */
      holds?: string[];
      /** when to plan again (ms): the wait may have ended by then (RequeueAfter) */
      retryAt: number;
      /** until `retryAt` only the app's update lock holds the wait: the lock files, not the engine, tell whether it still does */
      lock?: boolean;
    };

/** A step's identity across plans: backoffs and errors are kept by it. */
export function stepKey(step: Step): string {
  switch (step.action) {
    case 'fetch':
      return `fetch ${step.image}`;
    case 'createNetwork':
      return `createNetwork ${step.network.engineName}`;
    case 'createVolume':
      return `createVolume ${step.volume.engineName}`;
    case 'create':
      // a new configuration is a new attempt
      return `create ${step.service.appId}/${step.service.serviceName} ${step.service.hash}`;
    case 'removeNetwork':
      return `removeNetwork ${step.name}`;
    case 'removeImage':
      return `removeImage ${step.ref}`;
    case 'start':
    case 'stop':
    case 'kill':
      return `${step.action} ${step.containerId}`;
    case 'stopInitial':
    case 'removeInitial':
      return `${step.action} ${step.container.id}`;
    case 'purgeData':
      return `purgeData ${step.appId}/${step.serviceName}`;
    default:
      return `${step.action} ${'appId' in step ? step.appId : ''}`;
  }
}
