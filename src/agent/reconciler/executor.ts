// Runs planned steps against the engine. Each step is small and idempotent enough that a crash
// between two of them leaves a state the next plan repairs. Pulls run in the background.
import fs from '../../shared/fsAsync.js';
import type Docker from 'dockerode';
import { dataRoots, purgeRefusal } from '../../shared/dataPurge.js';
import { UpdatesLockedError } from '../../shared/errors.js';
import { containerName, createOptions } from '../engine/containerOptions.js';
import { engineErrorMessage, withDeadline } from '../engine/deadline.js';
import { findImage } from '../engine/imageRef.js';
import { LABEL, scopeLabel } from '../engine/labels.js';
import type { EventLog } from '../eventLog.js';
import type { ImagePuller } from '../images/imagePuller.js';
import type { UpdateLocks } from '../locks/updateLock.js';
import { emptyFolder } from '../untrustedFs.js';
import type { AgentStore } from '../store/agentStore.js';
import { Backoff } from './backoff.js';
import type { ServiceSpec } from './serviceSpec.js';
import { ServiceErrors } from './serviceErrors.js';
import { supervisorAddressEnv } from './serviceEnvironment.js';
import { stepKey, type CurrentState, type Step } from './types.js';

type Phase = 'Installing' | 'Starting' | 'Stopping' | 'Killing';

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

const STATUS_NOT_MODIFIED = 304;
const STATUS_NOT_FOUND = 404;

export class Executor {
  /** each service's last error, shown in the current state while its step is planned */
  readonly errors = new ServiceErrors();
  /** failed steps (by stepKey) → when they are retried (kept bounded by prune()) */
  private readonly stepBackoff = new Backoff<string>(2000, 5 * 60_000);
  /** `appId/service` → when its create/start is retried; cleared on success */
  private readonly serviceBackoff = new Backoff<string>(2000, 5 * 60_000);
  /** app → when taking its update lock is retried, and the app's lock file the last take failed on */
  private readonly lockBackoff = new Backoff<number>(1000, 10_000);
  private readonly blockingLock = new Map<number, string>();
  /** `appId/service` → step in progress, for the current-state status */
  readonly phases = new Map<string, Phase>();
  /** app → release of which a container failed to be created or started; cleared when a release is applied */
  readonly failedReleases = new Map<number, number>();
  /**
   * container id → when the agent started it for a handover (ms): the handover timeout counts from
   * there, even when the container restarts. Pruned by each apply once the container is gone.
   */
  readonly handoverStarts = new Map<string, number>();

  constructor(private readonly d: ExecutorDeps) {}

  /** Runs one plan's steps concurrently; `current` is the state the plan was made from. */
  async run(steps: Step[], current: CurrentState): Promise<void> {
    this.prune();
    await Promise.all(steps.map((s) => this.runOne(s, current)));
  }

  /** When a failed step is retried: it is not run before (undefined: it did not fail). */
  retryAt(step: Step): number | undefined {
    return this.stepBackoff.retryAt(stepKey(step));
  }

  backedOff(step: Step): boolean {
    return (this.retryAt(step) ?? 0) > Date.now();
  }

  /** For the plan: when each service's create/start and each app's lock are retried. */
  backoffs(): { services: Map<string, number>; locks: Map<number, number> } {
    return { services: this.serviceBackoff.retryAts(), locks: this.lockBackoff.retryAts() };
  }

  /** Locks are overridden (of one app, or all): the next apply takes them, without waiting for a retry. */
  overrideLocks(appId?: number): void {
    if (appId === undefined) this.lockBackoff.clear();
    else this.lockBackoff.delete(appId);
  }

  /**
   * A lock wait come due, looked at on the lock files alone (no plan, no engine read): while the file
   * the last take failed on is the app's, a take would fail again; this counts as that attempt.
   */
  async lockStillHeld(appId: number): Promise<boolean> {
    const lockPath = this.blockingLock.get(appId);
    if (!lockPath || this.d.lockOverride(appId) || !(await this.d.locks.heldByAppAt(lockPath))) return false;
    this.lockedOut(appId, lockPath);
    return true;
  }

  /**
   * Backoff entries of steps that are no longer planned (a container gone, a service removed)
   * must not pile up over months: once long expired they go.
   */
  private prune(): void {
    const stale = Date.now() - 15 * 60_000;
    for (const backoff of [this.stepBackoff, this.serviceBackoff, this.lockBackoff]) backoff.prune(stale);
    for (const appId of this.blockingLock.keys()) if (this.lockBackoff.retryAt(appId) === undefined) this.blockingLock.delete(appId);
  }

  private lockedOut(appId: number, lockPath: string): void {
    const delay = this.lockBackoff.failed(appId);
    this.blockingLock.set(appId, lockPath);
    this.d.log.warn(`Updates are locked by app ${appId} (${lockPath}); retrying in ${Math.ceil(delay / 1000)} s`);
  }

  private forgetService(appId: number, serviceName: string): void {
    this.serviceBackoff.delete(`${appId}/${serviceName}`);
    this.errors.delete(appId, serviceName);
  }

  private async runOne(step: Step, current: CurrentState): Promise<void> {
    try {
      await this.execute(step, current);
      this.stepBackoff.delete(stepKey(step));
    } catch (err) {
      this.onFailure(step, err as Error);
    }
  }

  private async execute(step: Step, current: CurrentState): Promise<void> {
    const { docker, log, store, locks } = this.d;
    switch (step.action) {
      case 'fetch':
        return this.fetch(step);
      case 'createNetwork': {
        const { network: n } = step;
        log.info(`Creating network ${n.engineName}`);
        await withDeadline((d) =>
          docker.createNetwork({
            Name: n.engineName,
            Driver: n.config.driver ?? 'bridge',
            Internal: n.config.internal ?? false,
            CheckDuplicate: true,
            Labels: { ...n.config.labels, ...this.ownLabels(n.appId), [LABEL.configHash]: n.hash },
            // An empty IPAM config list is left to the engine: dockerd 20.10 cannot restore such a network.
            ...(n.config.ipam?.config?.length
              ? {
                  IPAM: {
                    Driver: 'default',
                    Config: n.config.ipam.config.map((c) => ({ ...(c.subnet ? { Subnet: c.subnet } : {}), ...(c.gateway ? { Gateway: c.gateway } : {}) })),
                  },
                }
              : {}),
            ...d,
          }),
        );
        return;
      }
      case 'removeNetwork':
        log.info(`Removing network ${step.name}`);
        await ignoreStatus(
          withDeadline((d) => docker.getNetwork(step.name).remove({ ...d })),
          STATUS_NOT_FOUND,
        );
        return;
      case 'createVolume': {
        const { volume: v } = step;
        log.info(`Creating volume ${v.engineName}`);
        await withDeadline((d) =>
          docker.createVolume({
            Name: v.engineName,
            Driver: v.config.driver ?? 'local',
            DriverOpts: v.config.driver_opts ?? {},
            Labels: { ...v.config.labels, ...this.ownLabels(v.appId) },
            ...d,
          }),
        );
        return;
      }
      case 'takeLock':
        await locks.take(step.appId, step.services, this.d.lockOverride(step.appId));
        this.lockBackoff.delete(step.appId);
        this.blockingLock.delete(step.appId);
        return;
      case 'releaseLock':
        await locks.release(step.appId);
        return;
      case 'create':
        return this.create(step, current);
      case 'start':
        await this.withPhase(step.appId, step.serviceName, 'Starting', async () => {
          log.info(`Starting service ${step.serviceName}`);
          await ignoreStatus(
            withDeadline((d) => docker.getContainer(step.containerId).start({ ...d })),
            STATUS_NOT_MODIFIED,
          );
          await store.setStoppedByAgent(step.containerId, false);
        });
        this.forgetService(step.appId, step.serviceName);
        return;
      case 'stop':
        await this.withPhase(step.appId, step.serviceName, 'Stopping', async () => {
          log.info(`Stopping service ${step.serviceName}`);
          await store.setStoppedByAgent(step.containerId, true);
          await ignoreStatus(
            withDeadline((d) => docker.getContainer(step.containerId).stop({ t: step.timeout, ...d }), stopDeadline(step.timeout)),
            STATUS_NOT_MODIFIED,
          );
        });
        return;
      case 'kill':
        await this.withPhase(step.appId, step.serviceName, 'Killing', async () => {
          log.info(`Killing service ${step.serviceName}: ${step.reason}`, { appId: step.appId, containerId: step.containerId });
          const container = docker.getContainer(step.containerId);
          await ignoreStatus(
            withDeadline((d) => container.stop({ t: step.timeout, ...d }), stopDeadline(step.timeout)),
            STATUS_NOT_MODIFIED,
            STATUS_NOT_FOUND,
          );
          await ignoreStatus(
            withDeadline((d) => container.remove({ force: true, v: true, ...d })),
            STATUS_NOT_FOUND,
          );
          await store.setStoppedByAgent(step.containerId, false);
        });
        if (step.removeImage) {
          await withDeadline((d) => docker.getImage(step.removeImage!).remove({ ...d })).then(
            () => log.info(`Deleted image ${step.removeImage} of ${step.serviceName}`),
            (err: Error) => log.logger.debug({ err }, 'old image kept'),
          );
        }
        return;
      case 'removeImage':
        log.info(`Deleting image ${step.ref}`);
        await ignoreStatus(
          withDeadline((d) => docker.getImage(step.ref).remove({ ...d })),
          STATUS_NOT_FOUND,
        );
        await store.untrackImage(step.ref);
        return;
      case 'stopInitial': {
        const { container: c } = step;
        const record = store.initialContainers().get(step.appId);
        const names = record?.phase === 'stopped' ? record.names : [];
        // Recorded first: after a crash the agent still knows to restart or remove it.
        await store.setInitialContainers(step.appId, { releaseId: step.releaseId, phase: 'stopped', names: [...new Set([...names, c.name])] });
        log.info(`Stopping container ${c.name} before release ${step.releaseId} starts (remove_containers)`);
        await ignoreStatus(
          withDeadline((d) => docker.getContainer(c.id).stop({ t: 10, ...d }), stopDeadline(10)),
          STATUS_NOT_MODIFIED,
          STATUS_NOT_FOUND,
        );
        return;
      }
      case 'restoreInitial':
        for (const c of step.containers) {
          log.warn(`Release ${step.releaseId} failed: starting container ${c.name} again (remove_containers)`);
          await ignoreStatus(
            withDeadline((d) => docker.getContainer(c.id).start({ ...d })),
            STATUS_NOT_MODIFIED,
            STATUS_NOT_FOUND,
          );
        }
        if (step.forget) await store.forgetInitialContainers(step.appId);
        else await store.setInitialContainers(step.appId, { releaseId: step.releaseId, phase: 'restored', names: step.containers.map((c) => c.name) });
        return;
      case 'removeInitial':
        log.info(`Removing container ${step.container.name}: the release that replaces it runs (remove_containers)`);
        await ignoreStatus(
          withDeadline((d) => docker.getContainer(step.container.id).remove({ force: true, ...d })),
          STATUS_NOT_FOUND,
        );
        return;
      case 'purgeData':
        return this.purgeData(step);
      case 'markApplied':
        this.failedReleases.delete(step.appId);
        await store.markApplied(step.appId, step.releaseId === null ? null : { releaseId: step.releaseId, commit: step.commit! });
        if (step.releaseId !== null) log.info(`App ${step.appId} runs release ${step.releaseId} (${step.commit})`);
        return;
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

  /**
   * Empties (never deletes) the service's volumes and host folders, so that other users of them keep
   * working. A host folder is checked once resolved on this device (a symlink cannot lead the purge
   * out of the data areas); inside, nothing is followed and nothing blocks (untrustedFs.ts).
   */
  private async purgeData(step: Extract<Step, { action: 'purgeData' }>): Promise<void> {
    const { docker, log, store } = this.d;
    const mountpoints: string[] = [];
    for (const name of step.volumes) {
      const volume = await withDeadline((d) => docker.getVolume(name).inspect({ ...d }));
      if (volume.Driver !== 'local' || !volume.Mountpoint)
        throw new Error(`volume ${name} (driver ${volume.Driver}) cannot be purged: its data is not on this host`);
      mountpoints.push(volume.Mountpoint);
    }
    const roots = step.folders.length ? await resolvedDataRoots() : [];
    const outsideDataAreas = (folder: string) => (real: string) => {
      const refusal = purgeRefusal(real, roots);
      return refusal && real !== folder ? `${folder} is ${real}: ${refusal}` : refusal;
    };
    for (const [folder, bind] of [...step.folders.map((f) => [f, true] as const), ...mountpoints.map((m) => [m, false] as const)]) {
      log.info(`Purging data of ${step.serviceName} in ${folder} (purge_data, release ${step.releaseId})`);
      await emptyFolder(folder, bind ? outsideDataAreas(folder) : undefined);
    }
    await store.markPurged(step.appId, step.serviceName, step.releaseId);
  }

  private async create(step: Extract<Step, { action: 'create' }>, current: CurrentState): Promise<void> {
    const { docker, locks, log } = this.d;
    const spec = step.service;
    await this.withPhase(spec.appId, spec.serviceName, 'Installing', async () => {
      await locks.ensureDir(spec.appId, spec.serviceName);
      if (step.handover) await locks.clearHandover(spec.appId, spec.serviceName);
      const imageId = findImage(current.images, spec.config.image)?.id;
      if (!imageId) throw new Error(`image ${spec.config.image} is not on the engine`);
      const providerId = (service: string) => current.containers.find((c) => c.appId === spec.appId && c.serviceName === service && c.state === 'running')?.id;
      const options = createOptions(spec, imageId, providerId, await this.apiAddressEnv(spec, providerId));
      log.info(`Installing service ${spec.serviceName} (release ${spec.releaseId})`, { container: containerName(spec, imageId) });
      const container = await withDeadline((d) => docker.createContainer({ ...options, ...d }));
      for (const net of spec.config.networks.slice(1)) {
        await withDeadline((d) => docker.getNetwork(net).connect({ Container: container.id, EndpointConfig: { Aliases: [spec.serviceName] }, ...d }));
      }
      if (step.start) {
        this.phases.set(`${spec.appId}/${spec.serviceName}`, 'Starting');
        log.info(`Starting service ${spec.serviceName}`);
        await withDeadline((d) => container.start({ ...d })).catch((err: Error) => {
          // The container stays, created: what the plan retries now is its start.
          throw Object.assign(err, { created: container.id });
        });
        if (step.handover) this.handoverStarts.set(container.id, Date.now());
      }
    });
    this.forgetService(spec.appId, spec.serviceName);
  }

  /**
   * A container that is not on the host network reaches the device API at the gateway of the
   * network it joins (the agent listens on all interfaces), as balena's supervisor0 does.
   */
  private async apiAddressEnv(spec: ServiceSpec, providerId: (service: string) => string | undefined): Promise<Record<string, string>> {
    const port = spec.config.environment.BALENA_SUPERVISOR_PORT;
    const mode = spec.config.networkMode;
    if (!port || mode === 'host' || mode === 'none') return {};
    const { docker } = this.d;
    let gateway: string | undefined;
    try {
      if (mode.startsWith('service:')) {
        const id = providerId(mode.slice('service:'.length));
        const info = id ? await withDeadline((d) => docker.getContainer(id).inspect({ ...d })) : undefined;
        gateway = Object.values(info?.NetworkSettings.Networks ?? {}).find((n) => n.Gateway)?.Gateway;
      } else {
        const net = mode === 'app' ? spec.config.networks[0]! : mode;
        // @types/dockerode lacks the options argument; dockerode takes an abortSignal there as everywhere.
        const network = docker.getNetwork(net) as unknown as { inspect(o: object): Promise<{ IPAM?: { Config?: { Gateway?: string }[] } }> };
        const info = await withDeadline((d) => network.inspect(d));
        gateway = info.IPAM?.Config?.find((c) => c.Gateway && !c.Gateway.includes(':'))?.Gateway;
      }
    } catch (err) {
      this.d.log.logger.warn({ err }, 'could not read the network gateway for the device API address');
    }
    return supervisorAddressEnv(gateway ?? '127.0.0.1', port);
  }

  private ownLabels(appId: number): Record<string, string> {
    return { [LABEL.supervised]: 'true', ...scopeLabel(this.d.scope), [LABEL.appId]: String(appId) };
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
    const delay = this.stepBackoff.failed(stepKey(step));
    const service = serviceOf(step);
    if (!service) {
      log.error(`Step ${step.action} failed: ${err.message}; retrying in ${Math.ceil(delay / 1000)} s`);
      return;
    }
    const key = `${service.appId}/${service.serviceName}`;
    if (step.action === 'create' || step.action === 'start') {
      this.serviceBackoff.set(key, this.stepBackoff.entry(stepKey(step))!);
    }
    if (step.action === 'create') this.failedReleases.set(step.service.appId, step.service.releaseId);
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

/** The engine answers a stop after the grace period plus the kill; allow it that and a margin. */
const stopDeadline = (graceSeconds: number) => (graceSeconds + 30) * 1000;

/** The data roots as this device resolves them (a root that is a symlink counts where it leads). */
async function resolvedDataRoots(): Promise<string[]> {
  return Promise.all(dataRoots().map((r) => fs.realpath(r).catch(() => r)));
}

async function ignoreStatus(p: Promise<unknown>, ...codes: number[]): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (!codes.includes((err as { statusCode?: number }).statusCode ?? 0)) throw err;
  }
}
