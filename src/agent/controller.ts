// The controller's parts, wired once at start: the image puller, the executor, the reconciler
// (read actual state → pure plan → execute) and the current-state report the APIs answer from.
import type Docker from 'dockerode';
import { DEFAULT_SETTLE_MS } from '../shared/deployments.js';
import type { AgentOptions } from './agentOptions.js';
import type { EventLog } from './eventLog.js';
import { ImagePuller } from './images/imagePuller.js';
import type { UpdateLocks } from './locks/updateLock.js';
import type { DesiredState } from './reconciler/desiredState.js';
import { Executor } from './reconciler/executor.js';
import { Reconciler, type ApplyOutcome } from './reconciler/reconciler.js';
import { engineDataRoot } from './startup.js';
import { StateReport } from './state/stateReport.js';
import type { AgentStore } from './store/agentStore.js';

export interface ControllerDeps {
  docker: Docker;
  opts: AgentOptions;
  store: AgentStore;
  locks: UpdateLocks;
  log: EventLog;
  desired(): DesiredState | undefined;
  /** whether the update lock of an app is overridden (a forced update, or the target's config) */
  lockOverride(appId: number): boolean;
  /** images the cleanup keeps besides the target's (a gateway's dependent apps) */
  keepImages(): ReadonlySet<string> | undefined;
  onApplied(outcome: ApplyOutcome, reconciler: Reconciler): void;
  /** the state report should go out again (a settle verdict is due) */
  onRecheck(): void;
  /** the engine events' generation (engine/engineEvents.ts): what was read before it changed may be stale */
  engineGeneration(): number | undefined;
}

export interface Controller {
  puller: ImagePuller;
  executor: Executor;
  reconciler: Reconciler;
  stateReport: StateReport;
}

export async function buildController(d: ControllerDeps): Promise<Controller> {
  const { docker, opts, store, locks, log } = d;
  const scope = opts.engineScope;
  let reconciler: Reconciler | undefined;
  const puller = new ImagePuller(docker, {
    dataRoot: await engineDataRoot(docker, log),
    ...(opts.minFreeDiskBytes !== undefined ? { minFreeBytes: opts.minFreeDiskBytes } : {}),
    onSettled: (ref) => reconciler?.trigger(`pull of ${ref} settled`),
  });
  const executor = new Executor({ docker, scope, puller, locks, store, log, lockOverride: d.lockOverride });
  reconciler = new Reconciler({
    docker,
    scope,
    store,
    locks,
    puller,
    executor,
    log,
    desired: d.desired,
    keepImages: d.keepImages,
    intervalMs: opts.intervalMs ?? 60_000,
    engineGeneration: d.engineGeneration,
    onApplied: (outcome) => d.onApplied(outcome, reconciler!),
  });
  const stateReport = new StateReport({
    docker,
    scope,
    store,
    puller,
    executor,
    reconciler,
    desired: d.desired,
    settleMs: opts.settleMs ?? DEFAULT_SETTLE_MS,
    onRecheck: d.onRecheck,
    engineGeneration: d.engineGeneration,
  });
  return { puller, executor, reconciler, stateReport };
}
