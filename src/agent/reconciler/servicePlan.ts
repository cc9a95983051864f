// Per-service planning: keep a current container in its run state, or fetch, create and replace
// per the update strategy. Pure, as the planner; stops and kills go to the app's gated list.
import { findImage } from '../engine/imageRef.js';
import { LIVE, POLL_MS, type AppScope } from './planScope.js';
import { describeConfigChange, redactConfig, type ContainerConfig, type ServiceSpec } from './serviceSpec.js';
import { purgeKey, type CurrentContainer, type Step } from './types.js';

/**
 * When a handover times out: its timeout counted from when the new container started running (ms);
 * never while it has not run yet.
 */
export function handoverDeadline(startedAt: number | undefined, timeoutMs: number): number {
  return startedAt === undefined ? Infinity : startedAt + timeoutMs;
}

export class ServicePlanner {
  constructor(private readonly s: AppScope) {}

  plan(name: string, spec: ServiceSpec | undefined): void {
    const s = this.s;
    const mine = s.containers.filter((c) => c.serviceName === name);
    for (const c of mine.filter((c) => c.state === 'dead')) {
      s.steps.push({ action: 'kill', appId: s.appId, serviceName: name, containerId: c.id, timeout: 0, reason: 'container is dead' });
    }
    const live = mine.filter((c) => c.state !== 'dead' && c.state !== 'removing');
    if (!spec) {
      for (const c of live) s.kill(c, 'service removed from target');
      return;
    }
    const imageId = findImage(s.current.images, spec.config.image)?.id;
    const netns = this.networkProvider(spec);
    // purge_data: every release starts on purged data, so in a new one, with a new container.
    const isCurrent = (c: CurrentContainer) =>
      c.configHash === spec.hash &&
      (!imageId || c.imageId === imageId) &&
      (netns === undefined || c.networkMode === netns) &&
      (!spec.purgeData || c.releaseId === spec.releaseId);
    const [match, ...duplicates] = live.filter(isCurrent);
    const stale = [...live.filter((c) => !isCurrent(c)), ...duplicates];
    if (match) this.planExisting(spec, match, stale);
    else this.planReplacement(spec, stale, imageId);
  }

  /**
   * For `network_mode: service:x`, the NetworkMode a current container must have: x's newest live
   * container. When x is replaced, containers joined to the old one are stale (balena does the same).
   */
  private networkProvider(spec: ServiceSpec): string | undefined {
    if (!spec.config.networkMode.startsWith('service:')) return undefined;
    const provider = spec.config.networkMode.slice('service:'.length);
    const live = this.s.containers.find((c) => c.serviceName === provider && LIVE.has(c.state));
    return live ? `container:${live.id}` : undefined;
  }

  /** The service's container is current: keep its run state, retire leftovers (e.g. after a handover). */
  private planExisting(spec: ServiceSpec, c: CurrentContainer, stale: CurrentContainer[]): void {
    const s = this.s;
    if (spec.running) {
      const needsStart = c.state === 'created' || (c.state === 'exited' && s.ctx.stoppedByAgent.has(c.id));
      if (needsStart) this.startWhenReady(spec, { action: 'start', appId: s.appId, serviceName: spec.serviceName, containerId: c.id });
    } else if (LIVE.has(c.state)) {
      s.destructive.push({ action: 'stop', appId: s.appId, serviceName: spec.serviceName, containerId: c.id, timeout: spec.config.stopTimeout });
    }
    for (const old of stale) {
      // The old container serves until the new one says it took over or the timeout, counted from
      // when the new one started running, passes; even while the new one is still starting (or
      // crashing): killing it early leaves nothing running.
      const deadline = handoverDeadline(s.ctx.startedAt.get(c.id), spec.handoverTimeoutMs);
      const handingOver = spec.strategy === 'hand-over' && LIVE.has(old.state) && !s.ctx.handoverComplete.has(s.key(spec.serviceName)) && s.ctx.now < deadline;
      if (!handingOver) {
        s.kill(old, spec.strategy === 'hand-over' ? 'handed over to the new container' : 'superseded by a newer container');
      } else if (deadline === Infinity) {
        s.noop(spec.serviceName, `waiting for the new ${spec.serviceName} container to run before it takes over`);
      } else {
        const reason = `waiting for ${spec.serviceName} to complete its handover (at most ${Math.ceil((deadline - s.ctx.now) / 1000)} s)`;
        s.wait(spec.serviceName, reason, Math.min(deadline, s.ctx.now + POLL_MS), []);
      }
    }
  }

  /** No current container: fetch, then create — replacing old containers per the update strategy. */
  private planReplacement(spec: ServiceSpec, stale: CurrentContainer[], imageId: string | undefined): void {
    const s = this.s;
    const reason = stale.length ? `config changed: ${describeChange(stale[0]!, spec, imageId)}` : '';
    const killFirst = spec.strategy === 'kill-then-download' || spec.strategy === 'delete-then-download';
    if (stale.length && killFirst) {
      for (const c of stale) {
        const removeImage = spec.strategy === 'delete-then-download' && c.imageId !== imageId ? c.imageId : undefined;
        s.kill(c, reason, removeImage);
      }
      return;
    }
    if (!this.fetchImages(spec)) return;
    if (!this.resourcesReady(spec)) return;
    if (spec.purgeData && !s.ctx.purgedData.has(purgeKey(s.appId, spec.serviceName, spec.releaseId))) {
      this.planPurge(spec, stale);
      return;
    }
    if (stale.length === 0) {
      this.create(spec, false);
      return;
    }
    if (spec.strategy === 'hand-over' && spec.running && spec.config.ports.length === 0 && this.dependenciesMet(spec)) {
      this.create(spec, true);
      return;
    }
    if (this.waitingForAppImages(spec)) return;
    for (const c of stale) s.kill(c, reason);
  }

  /** purge_data: the old containers go (once the release's images are here), then the data, then the new one starts. */
  private planPurge(spec: ServiceSpec, stale: CurrentContainer[]): void {
    const s = this.s;
    if (s.waitingForInitial(spec.serviceName)) return;
    if (this.waitingForAppImages(spec)) return;
    if (stale.length) {
      for (const c of stale) s.kill(c, `its data is purged before release ${spec.releaseId} starts (purge_data)`);
      return;
    }
    const writable = (mount: string) => !mount.endsWith(':ro');
    const isLockDir = (bind: string) => /:\/tmp\/(balena|resin)$/.test(bind);
    s.steps.push({
      action: 'purgeData',
      appId: s.appId,
      serviceName: spec.serviceName,
      releaseId: spec.releaseId,
      volumes: spec.config.volumes.filter(writable).map((v) => v.split(':')[0]!),
      folders: spec.config.binds.filter((b) => writable(b) && !isLockDir(b)).map((b) => b.split(':')[0]!),
    });
  }

  /** True (after planning a wait) while the release's images are not all here: the old container serves meanwhile. */
  private waitingForAppImages(spec: ServiceSpec): boolean {
    const waiting = this.s.missingAppImages();
    if (waiting.length) this.s.noop(spec.serviceName, `waiting for the release's images before replacing ${spec.serviceName}: ${waiting.join(', ')}`);
    return waiting.length > 0;
  }

  private create(spec: ServiceSpec, handover: boolean): void {
    const s = this.s;
    const step: Step = { action: 'create', service: spec, start: spec.running && this.dependenciesMet(spec), handover };
    if (s.waitingForInitial(spec.serviceName, step)) return;
    if (this.backedOff(spec, step)) return;
    if (spec.config.networkMode.startsWith('service:') && !this.dependenciesMet(spec)) {
      s.noop(spec.serviceName, `${spec.serviceName} shares the network of ${spec.config.networkMode.slice(8)}, which does not run yet`, step);
      return;
    }
    s.steps.push(step);
  }

  private startWhenReady(spec: ServiceSpec, step: Step): void {
    const s = this.s;
    if (s.waitingForInitial(spec.serviceName, step)) return;
    if (this.backedOff(spec, step)) return;
    const waitingFor = this.unmetDependencies(spec);
    if (waitingFor.length) s.noop(spec.serviceName, `${spec.serviceName} waits for ${waitingFor.join(', ')} to run`, step);
    else s.steps.push(step);
  }

  /** True when all the service's images are present; otherwise plans their pulls. */
  private fetchImages(spec: ServiceSpec): boolean {
    const s = this.s;
    const missing = spec.images.filter((ref) => !findImage(s.current.images, ref));
    for (const ref of missing) {
      const retryAt = s.ctx.pullBackoff.get(ref) ?? 0;
      const fetch: Step = {
        action: 'fetch',
        appId: s.appId,
        serviceName: spec.serviceName,
        image: ref,
        ...(spec.registry ? { registry: spec.registry } : {}),
      };
      if (s.ctx.downloading.has(ref)) s.noop(spec.serviceName, `downloading ${ref}`, fetch);
      else if (retryAt > s.ctx.now)
        s.wait(spec.serviceName, `pull of ${ref} failed; retrying in ${Math.ceil((retryAt - s.ctx.now) / 1000)} s`, retryAt, [fetch]);
      else s.steps.push(fetch);
    }
    return missing.length === 0;
  }

  private resourcesReady(spec: ServiceSpec): boolean {
    const { current, removingNetworks } = this.s;
    const nets = spec.config.networks.filter((n) => removingNetworks.has(n) || !current.networks.some((cur) => cur.name === n));
    const vols = spec.config.volumes.map((v) => v.split(':')[0]!).filter((v) => !current.volumes.some((cur) => cur.name === v));
    if (nets.length || vols.length) {
      this.s.noop(spec.serviceName, `${spec.serviceName} waits for ${[...nets, ...vols].join(', ')}`);
      return false;
    }
    return true;
  }

  private unmetDependencies(spec: ServiceSpec): string[] {
    return spec.dependsOn.filter((dep) => {
      const depSpec = this.s.app?.services.get(dep);
      if (!depSpec) return false;
      const running = this.s.containers.some(
        (c) => c.serviceName === dep && c.configHash === depSpec.hash && (c.state === 'running' || (!depSpec.running && c.state !== 'dead')),
      );
      return !running;
    });
  }

  private dependenciesMet(spec: ServiceSpec): boolean {
    return this.unmetDependencies(spec).length === 0;
  }

  private backedOff(spec: ServiceSpec, step: Step): boolean {
    const s = this.s;
    const retryAt = s.ctx.serviceBackoff.get(s.key(spec.serviceName)) ?? 0;
    if (retryAt <= s.ctx.now) return false;
    s.wait(spec.serviceName, `${spec.serviceName} failed to start; retrying in ${Math.ceil((retryAt - s.ctx.now) / 1000)} s`, retryAt, [step]);
    return true;
  }
}

/** Why a container is replaced, for the log: the fields that differ (never an environment value). */
function describeChange(old: CurrentContainer, spec: ServiceSpec, imageId: string | undefined): string {
  if (old.configHash === spec.hash && imageId && old.imageId !== imageId) {
    return `image content of ${spec.config.image} changed`;
  }
  if (old.configHash === spec.hash && spec.purgeData && old.releaseId !== spec.releaseId) return `release ${spec.releaseId} starts on purged data`;
  if (old.configHash === spec.hash) return `${spec.config.networkMode.slice('service:'.length)}, whose network it shares, was replaced`;
  let previous: ContainerConfig | undefined;
  try {
    previous = JSON.parse(old.configLabel) as ContainerConfig;
  } catch {
    previous = undefined;
  }
  return describeConfigChange(previous, redactConfig(spec.config)).join('; ') || 'configuration';
}
