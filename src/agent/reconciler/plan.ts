// The planner: (current engine state, desired state, facts) → the next steps. Pure: no I/O, no clock.
// The reconciler runs the steps and plans again until only waits (noops) or nothing remain.
import { findImage } from '../engine/imageRef.js';
import type { DesiredApp, DesiredState } from './desiredState.js';
import { describeConfigChange, redactConfig, type ContainerConfig, type ServiceSpec } from './serviceSpec.js';
import { purgeKey, stepKey, type CurrentContainer, type CurrentState, type ForeignContainer, type PlanContext, type Step } from './types.js';

const LIVE = new Set(['running', 'restarting', 'paused']);
/**
 * Every wait says when to plan again (`retryAt`, controller-runtime's RequeueAfter): a backoff or
 * a timeout at its end; what the agent sees only by looking (a handover's signal file, a container
 * coming up, a download's end) this often.
 */
export const POLL_MS = 1000;

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
  const wanted = new Set<string>();
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

/**
 * When a handover times out: its timeout counted from when the new container started running (ms);
 * never while it has not run yet.
 */
export function handoverDeadline(startedAt: number | undefined, timeoutMs: number): number {
  return startedAt === undefined ? Infinity : startedAt + timeoutMs;
}

class AppPlanner {
  private readonly steps: Step[] = [];
  private readonly destructive: Step[] = [];
  private readonly containers: CurrentContainer[];
  /** engine names of the app's networks planned for removal (or recreation) */
  private readonly removingNetworks = new Set<string>();
  /** the release's `remove_containers` found on the engine, while the release is not applied yet */
  private initial: ForeignContainer[] = [];
  /** initial containers still run: nothing of the release starts until they are stopped */
  private initialRunning = false;

  constructor(
    private readonly appId: number,
    private readonly current: CurrentState,
    private readonly app: DesiredApp | undefined,
    private readonly ctx: PlanContext,
  ) {
    this.containers = current.containers.filter((c) => c.appId === appId).sort((a, b) => b.createdAt - a.createdAt);
  }

  plan(): Step[] {
    this.planVolumesAndNetworks();
    this.planInitialContainers();
    const names = new Set([...(this.app?.services.keys() ?? []), ...this.containers.map((c) => c.serviceName)]);
    for (const name of [...names].sort()) this.planService(name, this.app?.services.get(name));
    this.gateDestructiveSteps();
    const active = this.steps.filter((s) => s.action !== 'noop' && s.action !== 'fetch');
    if (this.ctx.locksHeld.has(this.appId) && active.length === 0) {
      this.steps.push({ action: 'releaseLock', appId: this.appId });
    }
    this.planAppliedRecord();
    return this.steps;
  }

  private planVolumesAndNetworks(): void {
    const app = this.app;
    for (const vol of app?.volumes ?? []) {
      if (!this.current.volumes.some((v) => v.name === vol.engineName)) {
        this.steps.push({ action: 'createVolume', volume: vol });
      }
    }
    const appNetworks = this.current.networks.filter((n) => n.appId === this.appId);
    for (const net of app?.networks ?? []) {
      const existing = appNetworks.find((n) => n.name === net.engineName);
      if (!existing) {
        this.steps.push({ action: 'createNetwork', network: net });
      } else if (existing.configHash !== net.hash) {
        this.removeNetwork(existing.name, `network ${net.name} changed`);
      }
    }
    for (const net of appNetworks) {
      if (!app?.networks.some((n) => n.engineName === net.name)) this.removeNetwork(net.name, 'network removed from target');
    }
  }

  /**
   * AutoPi's `remove_containers` ("initial containers", e.g. a factory app): stopped once the
   * release's images are all present, removed when it is applied, started again when one of its
   * containers fails to be created or started. They are not stopped again for the same release.
   */
  private planInitialContainers(): void {
    const record = this.ctx.initialContainers.get(this.appId);
    const app = this.app;
    if (!app) {
      // The deployment was abandoned with the app: what was stopped for it runs again.
      if (!record) return;
      const stopped = record.phase === 'stopped' ? this.current.others.filter((c) => record.names.includes(c.name)) : [];
      this.steps.push({ action: 'restoreInitial', appId: this.appId, releaseId: record.releaseId, containers: stopped, forget: true });
      return;
    }
    if (this.ctx.appliedReleases.get(this.appId) === app.releaseId) return;
    const names = new Set([...app.removeContainers, ...(record?.phase === 'stopped' ? record.names : [])]);
    this.initial = this.current.others.filter((c) => names.has(c.name));
    if (!this.initial.length || (record?.phase === 'restored' && record.releaseId === app.releaseId)) return;
    if (record?.phase === 'stopped' && this.ctx.failedReleases.get(this.appId) === app.releaseId) {
      const stopped = this.initial.filter((c) => record.names.includes(c.name));
      this.steps.push({ action: 'restoreInitial', appId: this.appId, releaseId: app.releaseId, containers: stopped });
      this.initialRunning = true;
      return;
    }
    const live = this.initial.filter((c) => LIVE.has(c.state));
    if (!live.length) return;
    this.initialRunning = true;
    if (this.missingAppImages().length) return;
    for (const container of live) this.destructive.push({ action: 'stopInitial', appId: this.appId, releaseId: app.releaseId, container });
  }

  /** True (after planning a wait) while initial containers hold back the release's containers. */
  private waitingForInitial(serviceName: string, ...held: Step[]): boolean {
    if (!this.initialRunning) return false;
    const names = this.initial.filter((c) => LIVE.has(c.state)).map((c) => c.name);
    this.noop(serviceName, `${serviceName} waits for ${names.join(', ') || 'the initial containers'} to stop (remove_containers)`, ...held);
    return true;
  }

  /** A network goes once no container of the app uses it; those that do are killed first. */
  private removeNetwork(name: string, reason: string): void {
    this.removingNetworks.add(name);
    const users = this.containers.filter((c) => c.networks.includes(name));
    if (users.length === 0) {
      this.steps.push({ action: 'removeNetwork', appId: this.appId, name });
      return;
    }
    // Dead containers are removed without the lock by planService; removing ones are going anyway.
    for (const c of users) {
      if (c.state === 'dead' || c.state === 'removing') continue;
      const why = !this.app ? 'app removed from target' : this.app.services.has(c.serviceName) ? reason : 'service removed from target';
      this.kill(c, why);
    }
  }

  private planService(name: string, spec: ServiceSpec | undefined): void {
    const mine = this.containers.filter((c) => c.serviceName === name);
    for (const c of mine.filter((c) => c.state === 'dead')) {
      this.steps.push({ action: 'kill', appId: this.appId, serviceName: name, containerId: c.id, timeout: 0, reason: 'container is dead' });
    }
    const live = mine.filter((c) => c.state !== 'dead' && c.state !== 'removing');
    if (!spec) {
      for (const c of live) this.kill(c, 'service removed from target');
      return;
    }
    const imageId = findImage(this.current.images, spec.config.image)?.id;
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
    const live = this.containers.find((c) => c.serviceName === provider && LIVE.has(c.state));
    return live ? `container:${live.id}` : undefined;
  }

  /** The service's container is current: keep its run state, retire leftovers (e.g. after a handover). */
  private planExisting(spec: ServiceSpec, c: CurrentContainer, stale: CurrentContainer[]): void {
    if (spec.running) {
      const needsStart = c.state === 'created' || (c.state === 'exited' && this.ctx.stoppedByAgent.has(c.id));
      if (needsStart) this.startWhenReady(spec, { action: 'start', appId: this.appId, serviceName: spec.serviceName, containerId: c.id });
    } else if (LIVE.has(c.state)) {
      this.destructive.push({ action: 'stop', appId: this.appId, serviceName: spec.serviceName, containerId: c.id, timeout: spec.config.stopTimeout });
    }
    for (const old of stale) {
      // The old container serves until the new one says it took over or the timeout, counted from
      // when the new one started running, passes; even while the new one is still starting (or
      // crashing): killing it early leaves nothing running.
      const deadline = handoverDeadline(this.ctx.startedAt.get(c.id), spec.handoverTimeoutMs);
      const handingOver =
        spec.strategy === 'hand-over' && LIVE.has(old.state) && !this.ctx.handoverComplete.has(this.key(spec.serviceName)) && this.ctx.now < deadline;
      if (!handingOver) {
        this.kill(old, spec.strategy === 'hand-over' ? 'handed over to the new container' : 'superseded by a newer container');
      } else if (deadline === Infinity) {
        this.noop(spec.serviceName, `waiting for the new ${spec.serviceName} container to run before it takes over`);
      } else {
        const reason = `waiting for ${spec.serviceName} to complete its handover (at most ${Math.ceil((deadline - this.ctx.now) / 1000)} s)`;
        this.wait(spec.serviceName, reason, Math.min(deadline, this.ctx.now + POLL_MS), []);
      }
    }
  }

  /** No current container: fetch, then create — replacing old containers per the update strategy. */
  private planReplacement(spec: ServiceSpec, stale: CurrentContainer[], imageId: string | undefined): void {
    const reason = stale.length ? `config changed: ${this.describeChange(stale[0]!, spec, imageId)}` : '';
    const killFirst = spec.strategy === 'kill-then-download' || spec.strategy === 'delete-then-download';
    if (stale.length && killFirst) {
      for (const c of stale) {
        const removeImage = spec.strategy === 'delete-then-download' && c.imageId !== imageId ? c.imageId : undefined;
        this.kill(c, reason, removeImage);
      }
      return;
    }
    if (!this.fetchImages(spec)) return;
    if (!this.resourcesReady(spec)) return;
    if (spec.purgeData && !this.ctx.purgedData.has(purgeKey(this.appId, spec.serviceName, spec.releaseId))) {
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
    const waiting = this.missingAppImages();
    if (waiting.length) {
      this.noop(spec.serviceName, `waiting for the release's images before replacing ${spec.serviceName}: ${waiting.join(', ')}`);
      return;
    }
    for (const c of stale) this.kill(c, reason);
  }

  /** purge_data: the old containers go (once the release's images are here), then the data, then the new one starts. */
  private planPurge(spec: ServiceSpec, stale: CurrentContainer[]): void {
    if (this.waitingForInitial(spec.serviceName)) return;
    const waiting = this.missingAppImages();
    if (waiting.length) {
      this.noop(spec.serviceName, `waiting for the release's images before replacing ${spec.serviceName}: ${waiting.join(', ')}`);
      return;
    }
    if (stale.length) {
      for (const c of stale) this.kill(c, `its data is purged before release ${spec.releaseId} starts (purge_data)`);
      return;
    }
    const writable = (mount: string) => !mount.endsWith(':ro');
    const isLockDir = (bind: string) => /:\/tmp\/(balena|resin)$/.test(bind);
    this.steps.push({
      action: 'purgeData',
      appId: this.appId,
      serviceName: spec.serviceName,
      releaseId: spec.releaseId,
      volumes: spec.config.volumes.filter(writable).map((v) => v.split(':')[0]!),
      folders: spec.config.binds.filter((b) => writable(b) && !isLockDir(b)).map((b) => b.split(':')[0]!),
    });
  }

  private create(spec: ServiceSpec, handover: boolean): void {
    const step: Step = { action: 'create', service: spec, start: spec.running && this.dependenciesMet(spec), handover };
    if (this.waitingForInitial(spec.serviceName, step)) return;
    if (this.backedOff(spec, step)) return;
    if (spec.config.networkMode.startsWith('service:') && !this.dependenciesMet(spec)) {
      this.noop(spec.serviceName, `${spec.serviceName} shares the network of ${spec.config.networkMode.slice(8)}, which does not run yet`, step);
      return;
    }
    this.steps.push(step);
  }

  private startWhenReady(spec: ServiceSpec, step: Step): void {
    if (this.waitingForInitial(spec.serviceName, step)) return;
    if (this.backedOff(spec, step)) return;
    const waitingFor = this.unmetDependencies(spec);
    if (waitingFor.length) this.noop(spec.serviceName, `${spec.serviceName} waits for ${waitingFor.join(', ')} to run`, step);
    else this.steps.push(step);
  }

  /** True when all the service's images are present; otherwise plans their pulls. */
  private fetchImages(spec: ServiceSpec): boolean {
    const missing = spec.images.filter((ref) => !findImage(this.current.images, ref));
    for (const ref of missing) {
      const retryAt = this.ctx.pullBackoff.get(ref) ?? 0;
      const fetch: Step = {
        action: 'fetch',
        appId: this.appId,
        serviceName: spec.serviceName,
        image: ref,
        ...(spec.registry ? { registry: spec.registry } : {}),
      };
      if (this.ctx.downloading.has(ref)) this.noop(spec.serviceName, `downloading ${ref}`, fetch);
      else if (retryAt > this.ctx.now)
        this.wait(spec.serviceName, `pull of ${ref} failed; retrying in ${Math.ceil((retryAt - this.ctx.now) / 1000)} s`, retryAt, [fetch]);
      else this.steps.push(fetch);
    }
    return missing.length === 0;
  }

  private missingAppImages(): string[] {
    const refs = [...(this.app?.services.values() ?? [])].flatMap((s) => s.images);
    return refs.filter((ref) => !findImage(this.current.images, ref));
  }

  private resourcesReady(spec: ServiceSpec): boolean {
    const nets = spec.config.networks.filter((n) => this.removingNetworks.has(n) || !this.current.networks.some((cur) => cur.name === n));
    const vols = spec.config.volumes.map((v) => v.split(':')[0]!).filter((v) => !this.current.volumes.some((cur) => cur.name === v));
    if (nets.length || vols.length) {
      this.noop(spec.serviceName, `${spec.serviceName} waits for ${[...nets, ...vols].join(', ')}`);
      return false;
    }
    return true;
  }

  private unmetDependencies(spec: ServiceSpec): string[] {
    return spec.dependsOn.filter((dep) => {
      const depSpec = this.app?.services.get(dep);
      if (!depSpec) return false;
      const running = this.containers.some(
        (c) => c.serviceName === dep && c.configHash === depSpec.hash && (c.state === 'running' || (!depSpec.running && c.state !== 'dead')),
      );
      return !running;
    });
  }

  private dependenciesMet(spec: ServiceSpec): boolean {
    return this.unmetDependencies(spec).length === 0;
  }

  private backedOff(spec: ServiceSpec, step: Step): boolean {
    const retryAt = this.ctx.serviceBackoff.get(this.key(spec.serviceName)) ?? 0;
    if (retryAt <= this.ctx.now) return false;
    this.wait(spec.serviceName, `${spec.serviceName} failed to start; retrying in ${Math.ceil((retryAt - this.ctx.now) / 1000)} s`, retryAt, [step]);
    return true;
  }

  private kill(c: CurrentContainer, reason: string, removeImage?: string): void {
    if (this.destructive.some((s) => 'containerId' in s && s.containerId === c.id)) return;
    const spec = this.app?.services.get(c.serviceName);
    this.destructive.push({
      action: 'kill',
      appId: this.appId,
      serviceName: c.serviceName,
      containerId: c.id,
      timeout: spec?.config.stopTimeout ?? 10,
      reason,
      ...(removeImage ? { removeImage } : {}),
    });
  }

  /**
   * Stops and kills are the only steps an app's update lock holds back, and they run only while
   * the agent holds that lock itself. Dependents go before what they depend on.
   */
  private gateDestructiveSteps(): void {
    if (this.destructive.length === 0) return;
    const ordered = this.inStopOrder(this.destructive);
    if (this.ctx.locksHeld.has(this.appId)) {
      this.steps.push(...ordered);
      return;
    }
    const retryAt = this.ctx.lockBackoff.get(this.appId);
    // The app held its lock at the last attempt: each service whose stop or kill it holds back says so.
    if (retryAt !== undefined) this.waitForLock(retryAt);
    if (retryAt !== undefined && retryAt > this.ctx.now) return;
    const services = new Set([...(this.app?.services.keys() ?? []), ...this.containers.map((c) => c.serviceName)]);
    this.steps.push({ action: 'takeLock', appId: this.appId, services: [...services].sort() });
  }

  /** Until `retryAt` the wait is on the lock alone (`lock`): the loop may look at the lock files instead of planning again. */
  private waitForLock(retryAt: number): void {
    const backedOff = retryAt > this.ctx.now;
    const retry = backedOff ? `; retrying in ${Math.ceil((retryAt - this.ctx.now) / 1000)} s` : '';
    const serviceOf = (s: Step) => ('serviceName' in s ? s.serviceName : undefined);
    for (const service of new Set(this.destructive.map(serviceOf))) {
      const held = this.destructive.filter((s) => serviceOf(s) === service);
      const reason = `${service ? `${service} waits: ` : ''}updates are locked by app ${this.appId}${retry}`;
      if (backedOff) this.wait(service, reason, retryAt, held, true);
      else this.noop(service, reason, ...held);
    }
  }

  /** Holds back a stop/kill while a live container that depends on its service is stopped in the same pass. */
  private inStopOrder(steps: Step[]): Step[] {
    const stopping = new Set(steps.map((s) => ('serviceName' in s ? s.serviceName : '')));
    return steps.filter((s) => {
      if (!('serviceName' in s) || !s.serviceName) return true;
      const dependents = this.containers.filter(
        (c) => c.serviceName !== s.serviceName && LIVE.has(c.state) && stopping.has(c.serviceName) && c.dependsOn.includes(s.serviceName!),
      );
      if (dependents.length === 0) return true;
      this.noop(s.serviceName, `${s.serviceName} stops after ${[...new Set(dependents.map((d) => d.serviceName))].join(', ')}`, s);
      return false;
    });
  }

  private planAppliedRecord(): void {
    if (this.steps.length > 0) return;
    const recorded = this.ctx.appliedReleases.get(this.appId);
    if (this.app && recorded !== this.app.releaseId) {
      // The release runs: the containers it replaces go before it counts as applied.
      if (this.initial.length) {
        for (const container of this.initial) this.steps.push({ action: 'removeInitial', appId: this.appId, container });
        return;
      }
      this.steps.push({ action: 'markApplied', appId: this.appId, releaseId: this.app.releaseId, commit: this.app.commit });
    } else if (!this.app && recorded !== undefined) {
      this.steps.push({ action: 'markApplied', appId: this.appId, releaseId: null, commit: null });
    }
  }

  private describeChange(old: CurrentContainer, spec: ServiceSpec, imageId: string | undefined): string {
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

  /** A wait on what is seen only by looking: planned again after POLL_MS. `held`: see wait(). */
  private noop(serviceName: string | undefined, reason: string, ...held: Step[]): void {
    this.wait(serviceName, reason, this.ctx.now + POLL_MS, held);
  }

  /** A wait planned again at `retryAt`; `held` are the steps it holds back (their errors stay while it lasts). */
  private wait(serviceName: string | undefined, reason: string, retryAt: number, held: Step[], lock = false): void {
    this.steps.push({
      action: 'noop',
      appId: this.appId,
      ...(serviceName ? { serviceName } : {}),
      reason,
      retryAt,
      ...(held.length ? { holds: held.map(stepKey) } : {}),
      ...(lock ? { lock } : {}),
    });
  }

  private key(serviceName: string): string {
    return `${this.appId}/${serviceName}`;
  }
}
