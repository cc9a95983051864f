// What apps and operators can ask of the device: restart, stop and start services, purge an app's
// data, reboot, shut down, blink. One implementation, used by the device API and by remote
// commands (the control plane's execute, the local command API). Each action runs between applies and honours the app's update lock unless forced.
import type Docker from 'dockerode';
import { NotFoundError } from '../../shared/errors.js';
import { engineErrorMessage, withDeadline } from '../engine/deadline.js';
import { LABEL, ownedBy, SUPERVISED_FILTER } from '../engine/labels.js';
import { readCurrentState } from '../engine/readState.js';
import type { EventLog } from '../eventLog.js';
import type { Host, PowerAction } from '../host/host.js';
import type { UpdateLocks } from '../locks/updateLock.js';
import type { DesiredState } from '../reconciler/desiredState.js';
import type { Reconciler } from '../reconciler/reconciler.js';
import type { CurrentContainer } from '../reconciler/types.js';
import type { AgentStore } from '../store/agentStore.js';

export interface ActionDeps {
  docker: Docker;
  scope: string | undefined;
  reconciler: Reconciler;
  locks: UpdateLocks;
  store: AgentStore;
  log: EventLog;
  host: Host;
  desired: () => DesiredState | undefined;
  /** a stop asked for through the API holds until start, restart or the agent's next start */
  holdStopped: (appId: number, service: string, hold: boolean) => void;
}

/** A power action waits this long after it is accepted, so the answer reaches the caller first. */
const POWER_DELAY_MS = 500;

export class DeviceActions {
  constructor(private readonly d: ActionDeps) {}

  /** The app's containers, newest first; NotFoundError when the device runs nothing of it. */
  async containersOf(appId: number): Promise<CurrentContainer[]> {
    const current = await readCurrentState(this.d.docker, this.d.scope);
    const containers = current.containers.filter((c) => c.appId === appId).sort((a, b) => b.createdAt - a.createdAt);
    if (!containers.length && !this.d.desired()?.apps.has(appId)) throw new NotFoundError(`Application ID does not exist: ${appId}`);
    return containers;
  }

  /** The container that stands for a service: the target's one if it exists, else the newest. */
  async serviceContainer(appId: number, service: string): Promise<CurrentContainer> {
    const mine = (await this.containersOf(appId)).filter((c) => c.serviceName === service);
    const hash = this.d.desired()?.apps.get(appId)?.services.get(service)?.hash;
    const container = mine.find((c) => c.configHash === hash) ?? mine[0];
    if (!container) throw new NotFoundError(`Service not found, a container must exist for this endpoint to work: ${service}`);
    return container;
  }

  async restartService(appId: number, service: string, force: boolean): Promise<void> {
    await this.withAppLock(appId, force, async () => {
      const c = await this.serviceContainer(appId, service);
      this.d.holdStopped(appId, service, false);
      await this.restartContainer(c);
    });
  }

  async stopService(appId: number, service: string, force: boolean): Promise<string> {
    return this.withAppLock(appId, force, async () => {
      const c = await this.serviceContainer(appId, service);
      this.d.holdStopped(appId, service, true);
      await this.stopContainer(c);
      return c.id;
    });
  }

  async startService(appId: number, service: string): Promise<string> {
    return this.d.reconciler.exclusive(async () => {
      const c = await this.serviceContainer(appId, service);
      this.d.holdStopped(appId, service, false);
      this.d.log.info(`Starting service ${service}`);
      await withDeadline((d) => this.d.docker.getContainer(c.id).start({ ...d })).catch(ignoreNotModified);
      await this.d.store.setStoppedByAgent(c.id, false);
      return c.id;
    });
  }

  /** Restarts every service of the app in dependency order (a real restart: containers are kept). */
  async restartApp(appId: number, force: boolean): Promise<void> {
    await this.withAppLock(appId, force, async () => {
      const containers = dependencyOrder(latestPerService(await this.containersOf(appId)));
      for (const c of containers) this.d.holdStopped(appId, c.serviceName, false);
      for (const c of containers) await this.restartContainer(c);
    });
  }

  /** Removes the app's containers and volumes; the next apply recreates both, empty. */
  async purgeApp(appId: number, force: boolean): Promise<void> {
    await this.withAppLock(appId, force, async () => {
      const { docker, log, store } = this.d;
      log.info(`Purging data for app ${appId}`);
      for (const c of await this.containersOf(appId)) {
        log.info(`Killing service ${c.serviceName}: purging the app's data`);
        await withDeadline((d) => docker.getContainer(c.id).remove({ force: true, ...d })).catch(ignoreNotFound);
        await store.setStoppedByAgent(c.id, false);
      }
      await this.removeVolumes((id) => id === appId);
      log.info(`Purged data for app ${appId}`);
    });
    this.d.reconciler.trigger(`purge of app ${appId}`);
  }

  /** `GET /v2/cleanup-volumes`: the volumes of apps (of those `covered`) no longer in the target (kept until asked). */
  async cleanupVolumes(covered: (appId: number) => boolean): Promise<string[]> {
    return this.d.reconciler.exclusive(() => this.removeVolumes((appId) => covered(appId) && !this.d.desired()?.apps.has(appId)));
  }

  /** Removes the agent's volumes of the chosen apps; one still in use is kept, and the log says why. */
  async removeVolumes(ofApp: (appId: number) => boolean): Promise<string[]> {
    const { docker, log } = this.d;
    const { Volumes } = await withDeadline((d) => docker.listVolumes({ filters: SUPERVISED_FILTER, ...d }));
    const removed: string[] = [];
    for (const v of Volumes ?? []) {
      const appId = Number(v.Labels?.[LABEL.appId]);
      if (!appId || !ownedBy(v.Labels, this.d.scope) || !ofApp(appId)) continue;
      try {
        log.info(`Removing volume ${v.Name}`);
        await withDeadline((d) => docker.getVolume(v.Name).remove({ ...d })).catch(ignoreNotFound);
        removed.push(v.Name);
      } catch (err) {
        log.warn(`Volume ${v.Name} kept: ${engineErrorMessage(err)}`);
      }
    }
    return removed;
  }

  /**
   * Stops every app (taking each app's lock unless `force` covers that app: an app's key overrides
   * its own app's lock only; an app holding its lock refuses the whole action), halts the
   * reconciler, and hands the action to the host shortly after.
   */
  async power(action: PowerAction, force: (appId: number) => boolean): Promise<void> {
    const { reconciler, locks, log, host } = this.d;
    await reconciler.exclusive(async () => {
      const current = await readCurrentState(this.d.docker, this.d.scope);
      const apps = [...new Set(current.containers.map((c) => c.appId))];
      try {
        for (const appId of apps) await locks.take(appId, this.servicesOf(appId, current.containers), force(appId));
      } catch (err) {
        for (const appId of apps) await locks.release(appId);
        throw err;
      }
      try {
        await Promise.all(current.containers.filter((c) => c.state === 'running').map((c) => this.stopContainer(c)));
      } finally {
        for (const appId of apps) await locks.release(appId);
      }
      reconciler.halt();
      log.info(action === 'reboot' ? 'Rebooting' : 'Shutting down');
    });
    setTimeout(() => {
      host.power(action).catch((err: Error) => log.error(`${action} failed: ${err.message}`));
    }, POWER_DELAY_MS).unref();
  }

  private servicesOf(appId: number, containers: CurrentContainer[]): string[] {
    const names = new Set(containers.filter((c) => c.appId === appId).map((c) => c.serviceName));
    for (const name of this.d.desired()?.apps.get(appId)?.services.keys() ?? []) names.add(name);
    return [...names];
  }

  private async withAppLock<T>(appId: number, force: boolean, fn: () => Promise<T>): Promise<T> {
    return this.d.reconciler.exclusive(async () => {
      const containers = await this.containersOf(appId);
      await this.d.locks.take(appId, this.servicesOf(appId, containers), force);
      try {
        return await fn();
      } finally {
        await this.d.locks.release(appId);
      }
    });
  }

  private async restartContainer(c: CurrentContainer): Promise<void> {
    this.d.log.info(`Restarting service ${c.serviceName}`);
    const timeout = this.stopTimeout(c);
    await withDeadline((d) => this.d.docker.getContainer(c.id).restart({ t: timeout, ...d }), (timeout + 30) * 1000);
    await this.d.store.setStoppedByAgent(c.id, false);
  }

  /** Marked as stopped by the agent first, so that after a reboot it is started again. */
  private async stopContainer(c: CurrentContainer): Promise<void> {
    this.d.log.info(`Stopping service ${c.serviceName}`);
    await this.d.store.setStoppedByAgent(c.id, true);
    const timeout = this.stopTimeout(c);
    await withDeadline((d) => this.d.docker.getContainer(c.id).stop({ t: timeout, ...d }), (timeout + 30) * 1000).catch(ignoreNotModified);
  }

  private stopTimeout(c: CurrentContainer): number {
    return this.d.desired()?.apps.get(c.appId)?.services.get(c.serviceName)?.config.stopTimeout ?? 10;
  }
}

function latestPerService(containers: CurrentContainer[]): CurrentContainer[] {
  const seen = new Map<string, CurrentContainer>();
  for (const c of containers) if (!seen.has(c.serviceName)) seen.set(c.serviceName, c);
  return [...seen.values()];
}

/** Dependencies before their dependents (cycles are rejected when a target is validated). */
function dependencyOrder(containers: CurrentContainer[]): CurrentContainer[] {
  const byName = new Map(containers.map((c) => [c.serviceName, c]));
  const out: CurrentContainer[] = [];
  const visit = (c: CurrentContainer, seen: Set<string>) => {
    if (out.includes(c) || seen.has(c.serviceName)) return;
    seen.add(c.serviceName);
    for (const dep of c.dependsOn) {
      const d = byName.get(dep);
      if (d) visit(d, seen);
    }
    out.push(c);
  };
  for (const c of containers) visit(c, new Set());
  return out;
}

const ignoreNotModified = (err: { statusCode?: number }) => {
  if (err.statusCode !== 304) throw new Error(engineErrorMessage(err));
};
const ignoreNotFound = (err: { statusCode?: number }) => {
  if (err.statusCode !== 404) throw new Error(engineErrorMessage(err));
};
