// What each step does on the engine (and in the agent's store). Each is small and idempotent
// enough that a crash between two of them leaves a state the next plan repairs.
import fs from '../../shared/fsAsync.js';
import type Docker from 'dockerode';
import { dataRoots, purgeRefusal } from '../../shared/dataPurge.js';
import { containerName, createOptions } from '../engine/containerOptions.js';
import { withDeadline } from '../engine/deadline.js';
import { findImage } from '../engine/imageRef.js';
import { LABEL, scopeLabel } from '../engine/labels.js';
import type { EventLog } from '../eventLog.js';
import type { UpdateLocks } from '../locks/updateLock.js';
import { emptyFolder } from '../untrustedFs.js';
import type { AgentStore } from '../store/agentStore.js';
import type { ServiceSpec } from './serviceSpec.js';
import { supervisorAddressEnv } from './serviceEnvironment.js';
import type { CurrentState, Step } from './types.js';

export interface EngineStepDeps {
  docker: Docker;
  /** labels everything the agent creates when agents share an engine (see LABEL.scope) */
  scope: string | undefined;
  locks: UpdateLocks;
  store: AgentStore;
  log: EventLog;
}

type StepOf<A extends Step['action']> = Extract<Step, { action: A }>;

const STATUS_NOT_MODIFIED = 304;
const STATUS_NOT_FOUND = 404;

export class EngineSteps {
  constructor(private readonly d: EngineStepDeps) {}

  async createNetwork({ network: n }: StepOf<'createNetwork'>): Promise<void> {
    this.d.log.info(`Creating network ${n.engineName}`);
    const ipam = n.config.ipam?.config ?? [];
    await withDeadline((d) =>
      this.d.docker.createNetwork({
        Name: n.engineName,
        Driver: n.config.driver ?? 'bridge',
        Internal: n.config.internal ?? false,
        CheckDuplicate: true,
        Labels: { ...n.config.labels, ...this.ownLabels(n.appId), [LABEL.configHash]: n.hash },
        // An empty IPAM config list is left to the engine: dockerd 20.10 cannot restore such a network.
        ...(ipam.length
          ? {
              IPAM: {
                Driver: 'default',
                Config: ipam.map((c) => ({ ...(c.subnet ? { Subnet: c.subnet } : {}), ...(c.gateway ? { Gateway: c.gateway } : {}) })),
              },
            }
          : {}),
        ...d,
      }),
    );
  }

  async removeNetwork(step: StepOf<'removeNetwork'>): Promise<void> {
    this.d.log.info(`Removing network ${step.name}`);
    await ignoreStatus(
      withDeadline((d) => this.d.docker.getNetwork(step.name).remove({ ...d })),
      STATUS_NOT_FOUND,
    );
  }

  async createVolume({ volume: v }: StepOf<'createVolume'>): Promise<void> {
    this.d.log.info(`Creating volume ${v.engineName}`);
    await withDeadline((d) =>
      this.d.docker.createVolume({
        Name: v.engineName,
        Driver: v.config.driver ?? 'local',
        DriverOpts: v.config.driver_opts ?? {},
        Labels: { ...v.config.labels, ...this.ownLabels(v.appId) },
        ...d,
      }),
    );
  }

  async start(step: StepOf<'start'>): Promise<void> {
    this.d.log.info(`Starting service ${step.serviceName}`);
    await ignoreStatus(
      withDeadline((d) => this.d.docker.getContainer(step.containerId).start({ ...d })),
      STATUS_NOT_MODIFIED,
    );
    await this.d.store.setStoppedByAgent(step.containerId, false);
  }

  async stop(step: StepOf<'stop'>): Promise<void> {
    this.d.log.info(`Stopping service ${step.serviceName}`);
    await this.d.store.setStoppedByAgent(step.containerId, true);
    await ignoreStatus(
      withDeadline((d) => this.d.docker.getContainer(step.containerId).stop({ t: step.timeout, ...d }), stopDeadline(step.timeout)),
      STATUS_NOT_MODIFIED,
    );
  }

  async kill(step: StepOf<'kill'>): Promise<void> {
    const { docker, log, store } = this.d;
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
  }

  /** delete-then-download: the old image goes once its container is gone (kept if still in use). */
  async removeOldImage(step: StepOf<'kill'>): Promise<void> {
    if (!step.removeImage) return;
    const { docker, log } = this.d;
    await withDeadline((d) => docker.getImage(step.removeImage!).remove({ ...d })).then(
      () => log.info(`Deleted image ${step.removeImage} of ${step.serviceName}`),
      (err: Error) => log.logger.debug({ err }, 'old image kept'),
    );
  }

  async removeImage(step: StepOf<'removeImage'>): Promise<void> {
    this.d.log.info(`Deleting image ${step.ref}`);
    await ignoreStatus(
      withDeadline((d) => this.d.docker.getImage(step.ref).remove({ ...d })),
      STATUS_NOT_FOUND,
    );
    await this.d.store.untrackImage(step.ref);
  }

  async stopInitial(step: StepOf<'stopInitial'>): Promise<void> {
    const { docker, log, store } = this.d;
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
  }

  async restoreInitial(step: StepOf<'restoreInitial'>): Promise<void> {
    const { docker, log, store } = this.d;
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
  }

  async removeInitial(step: StepOf<'removeInitial'>): Promise<void> {
    this.d.log.info(`Removing container ${step.container.name}: the release that replaces it runs (remove_containers)`);
    await ignoreStatus(
      withDeadline((d) => this.d.docker.getContainer(step.container.id).remove({ force: true, ...d })),
      STATUS_NOT_FOUND,
    );
  }

  /**
   * Empties (never deletes) the service's volumes and host folders, so that other users of them keep
   * working. A host folder is checked once resolved on this device (a symlink cannot lead the purge
   * out of the data areas); inside, nothing is followed and nothing blocks (untrustedFs.ts).
   */
  async purgeData(step: StepOf<'purgeData'>): Promise<void> {
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

  /**
   * Creates the service's container (and starts it when the step says so: `starting` is called
   * first); the id of the container started, else undefined. A failed start throws with `created`.
   */
  async create(step: StepOf<'create'>, current: CurrentState, starting: () => void): Promise<string | undefined> {
    const { docker, locks, log } = this.d;
    const spec = step.service;
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
    if (!step.start) return undefined;
    starting();
    log.info(`Starting service ${spec.serviceName}`);
    await withDeadline((d) => container.start({ ...d })).catch((err: Error) => {
      // The container stays, created: what the plan retries now is its start.
      throw Object.assign(err, { created: container.id });
    });
    return container.id;
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
