// Runs planned steps against the engine (engineSteps.ts), concurrently; pulls run in the
// background. Keeps what the plan and the current state need to know about the runs: each
// service's phase and last error, retries (stepRetries.ts), and when handovers started.
import { UpdatesLockedError } from '../../shared/errors.js';
import type Docker from 'dockerode';
import { engineErrorMessage } from '../engine/deadline.js';
import type { EventLog } from '../eventLog.js';
import type { ImagePuller } from '../images/imagePuller.js';
import type { UpdateLocks } from '../locks/updateLock.js';
import type { AgentStore } from '../store/agentStore.js';
import { EngineSteps } from './engineSteps.js';
import { ServiceErrors } from './serviceErrors.js';
import { StepRetries } from './stepRetries.js';
import type { CurrentState, Step } from './types.js';

export type Phase = 'Installing' | 'Starting' | 'Stopping' | 'Killing';

export interface ExecutorDeps {
  docker: Docker;
  /** labels everything the agent creates when agents share an engine (see LABEL.scope) */
  scope: string | undefined;
  puller: ImagePuller;
  locks: UpdateLocks;
  store: AgentStore;
  log: EventLog;
  /** SUPERVISOR_OVERRIDE_LOCK or an API force covering the app: take its app-held locks anyway */
  lockOverride: (appId: number) => boolean;
}

export class Executor {
  /** each service's last error, shown in the current state while its step is planned */
  readonly errors = new ServiceErrors();
  private readonly retries = new StepRetries();
  private readonly engine: EngineSteps;
  /** `appId/service` → step in progress, for the current-state status */
  private readonly phases = new Map<string, Phase>();
  /**
   * container id → when the agent started it for a handover (ms): the handover timeout counts from
   * there, even when the container restarts. Pruned by each apply once the container is gone.
   */
  private readonly handoverStarts = new Map<string, number>();

  constructor(private readonly d: ExecutorDeps) {
    this.engine = new EngineSteps(d);
  }

  /** Runs one plan's steps concurrently; `current` is the state the plan was made from. */
  async run(steps: Step[], current: CurrentState): Promise<void> {
    this.retries.prune();
    await Promise.all(steps.map((s) => this.runOne(s, current)));
  }

  /** When a failed step is retried: it is not run before (undefined: it did not fail). */
  retryAt(step: Step): number | undefined {
    return this.retries.retryAt(step);
  }

  backedOff(step: Step): boolean {
    return (this.retryAt(step) ?? 0) > Date.now();
  }

  /** For the plan: when each service's create/start and each app's lock are retried. */
  backoffs(): { services: Map<string, number>; locks: Map<number, number> } {
    return this.retries.backoffs();
  }

  /** For the plan: app → release of which a container failed to be created or started (since one was applied). */
  failedReleases(): ReadonlyMap<number, number> {
    return this.retries.failedReleases();
  }

  /** The step in progress on the service, for the current-state status. */
  phase(appId: number, serviceName: string): Phase | undefined {
    return this.phases.get(`${appId}/${serviceName}`);
  }

  /** When the agent started the container for a handover (undefined: it did not, or not since it runs). */
  handoverStart(containerId: string): number | undefined {
    return this.handoverStarts.get(containerId);
  }

  /** Keeps the record of handover starts to the containers that exist (`current` is read by an apply). */
  forgetGoneHandovers(current: CurrentState): void {
    const ids = new Set(current.containers.map((c) => c.id));
    for (const id of this.handoverStarts.keys()) if (!ids.has(id)) this.handoverStarts.delete(id);
  }

  /** Locks are overridden (of one app, or all): the next apply takes them, without waiting for a retry. */
  overrideLocks(appId?: number): void {
    this.retries.overrideLocks(appId);
  }

  /**
   * A lock wait come due, looked at on the lock files alone (no plan, no engine read): while the file
   * the last take failed on is the app's, a take would fail again; this counts as that attempt.
   */
  async lockStillHeld(appId: number): Promise<boolean> {
    const lockPath = this.retries.blockingLockOf(appId);
    if (!lockPath || this.d.lockOverride(appId) || !(await this.d.locks.heldByAppAt(lockPath))) return false;
    this.lockedOut(appId, lockPath);
    return true;
  }

  private lockedOut(appId: number, lockPath: string): void {
    const delay = this.retries.lockedOut(appId, lockPath);
    this.d.log.warn(`Updates are locked by app ${appId} (${lockPath}); retrying in ${Math.ceil(delay / 1000)} s`);
  }

  private forgetService(appId: number, serviceName: string): void {
    this.retries.serviceSucceeded(appId, serviceName);
    this.errors.delete(appId, serviceName);
  }

  private async runOne(step: Step, current: CurrentState): Promise<void> {
    try {
      await this.execute(step, current);
      this.retries.succeeded(step);
    } catch (err) {
      this.onFailure(step, err as Error);
    }
  }

  private async execute(step: Step, current: CurrentState): Promise<void> {
    const { engine } = this;
    switch (step.action) {
      case 'fetch':
        return this.fetch(step);
      case 'createNetwork':
        return engine.createNetwork(step);
      case 'removeNetwork':
        return engine.removeNetwork(step);
      case 'createVolume':
        return engine.createVolume(step);
      case 'takeLock':
        await this.d.locks.take(step.appId, step.services, this.d.lockOverride(step.appId));
        this.retries.lockTaken(step.appId);
        return;
      case 'releaseLock':
        return this.d.locks.release(step.appId);
      case 'create':
        return this.create(step, current);
      case 'start':
        await this.withPhase(step.appId, step.serviceName, 'Starting', () => engine.start(step));
        this.forgetService(step.appId, step.serviceName);
        return;
      case 'stop':
        return this.withPhase(step.appId, step.serviceName, 'Stopping', () => engine.stop(step));
      case 'kill':
        await this.withPhase(step.appId, step.serviceName, 'Killing', () => engine.kill(step));
        return engine.removeOldImage(step);
      case 'removeImage':
        return engine.removeImage(step);
      case 'stopInitial':
        return engine.stopInitial(step);
      case 'restoreInitial':
        return engine.restoreInitial(step);
      case 'removeInitial':
        return engine.removeInitial(step);
      case 'purgeData':
        return engine.purgeData(step);
      case 'markApplied':
        return this.markApplied(step);
      case 'noop':
        return;
    }
  }

  private async fetch(step: Extract<Step, { action: 'fetch' }>): Promise<void> {
    const { puller, store, log } = this.d;
    await store.trackImage(step.image, step.appId, step.serviceName);
    log.info(`Downloading image ${step.image} for ${step.serviceName}`);
    puller.pull(step.image, { appId: step.appId, serviceName: step.serviceName }, step.registry).then(
      () => {
        this.errors.delete(step.appId, step.serviceName);
        log.info(`Downloaded image ${step.image}`);
      },
      (err: Error) => {
        const failure = puller.failure(step.image);
        const retry = failure ? Math.ceil((failure.retryAt - Date.now()) / 1000) : 0;
        this.errors.set(step.appId, step.serviceName, step, `failed to download ${step.image}: ${err.message}`);
        log.error(`Failed to download image ${step.image} for ${step.serviceName}: ${err.message}; retrying in ${retry} s`);
      },
    );
  }

  private async create(step: Extract<Step, { action: 'create' }>, current: CurrentState): Promise<void> {
    const { appId, serviceName } = step.service;
    await this.withPhase(appId, serviceName, 'Installing', async () => {
      const started = await this.engine.create(step, current, () => this.phases.set(`${appId}/${serviceName}`, 'Starting'));
      if (started && step.handover) this.handoverStarts.set(started, Date.now());
    });
    this.forgetService(appId, serviceName);
  }

  private async markApplied(step: Extract<Step, { action: 'markApplied' }>): Promise<void> {
    this.retries.releaseApplied(step.appId);
    await this.d.store.markApplied(step.appId, step.releaseId === null ? null : { releaseId: step.releaseId, commit: step.commit! });
    if (step.releaseId !== null) this.d.log.info(`App ${step.appId} runs release ${step.releaseId} (${step.commit})`);
  }

  private async withPhase(appId: number, serviceName: string, phase: Phase, fn: () => Promise<void>): Promise<void> {
    const key = `${appId}/${serviceName}`;
    this.phases.set(key, phase);
    try {
      await fn();
    } finally {
      this.phases.delete(key);
    }
  }

  private onFailure(step: Step, failure: Error): void {
    const { log } = this.d;
    const err = failure.name === 'AbortError' || failure.name === 'TimeoutError' ? new Error(engineErrorMessage(failure)) : failure;
    if (err instanceof UpdatesLockedError && step.action === 'takeLock') {
      this.lockedOut(step.appId, err.lockPath);
      return;
    }
    const service = serviceOf(step);
    const delay = this.retries.stepFailed(step, service);
    if (!service) {
      log.error(`Step ${step.action} failed: ${err.message}; retrying in ${Math.ceil(delay / 1000)} s`);
      return;
    }
    const created = (failure as { created?: string }).created;
    const attempt: Step = created ? { action: 'start', appId: service.appId, serviceName: service.serviceName, containerId: created } : step;
    this.errors.set(service.appId, service.serviceName, attempt, `${step.action} failed: ${err.message}`);
    log.error(`Failed to ${step.action} service ${service.serviceName}: ${err.message}; retrying in ${Math.ceil(delay / 1000)} s`);
  }
}

function serviceOf(step: Step): { appId: number; serviceName: string } | undefined {
  if (step.action === 'create') return step.service;
  if ('serviceName' in step && step.serviceName !== undefined && step.appId !== undefined) {
    return { appId: step.appId, serviceName: step.serviceName };
  }
  return undefined;
}
