// Release-level planning of one app: its volumes and networks, AutoPi's initial containers, the
// update lock that gates stops and kills, and the applied record. Pure, as the planner.
import type { DesiredApp } from './desiredState.js';
import { AppScope, LIVE } from './planScope.js';
import { ServicePlanner } from './servicePlan.js';
import type { CurrentState, PlanContext, Step } from './types.js';

export class AppPlanner {
  private readonly s: AppScope;

  constructor(appId: number, current: CurrentState, app: DesiredApp | undefined, ctx: PlanContext) {
    this.s = new AppScope(appId, current, app, ctx);
  }

  plan(): Step[] {
    const s = this.s;
    this.planVolumesAndNetworks();
    this.planInitialContainers();
    const services = new ServicePlanner(s);
    const names = new Set([...(s.app?.services.keys() ?? []), ...s.containers.map((c) => c.serviceName)]);
    for (const name of [...names].sort()) services.plan(name, s.app?.services.get(name));
    this.gateDestructiveSteps();
    const active = s.steps.filter((step) => step.action !== 'noop' && step.action !== 'fetch');
    if (s.ctx.locksHeld.has(s.appId) && active.length === 0) {
      s.steps.push({ action: 'releaseLock', appId: s.appId });
    }
    this.planAppliedRecord();
    return s.steps;
  }

  private planVolumesAndNetworks(): void {
    const { app, current, steps, appId } = this.s;
    for (const vol of app?.volumes ?? []) {
      if (!current.volumes.some((v) => v.name === vol.engineName)) {
        steps.push({ action: 'createVolume', volume: vol });
      }
    }
    const appNetworks = current.networks.filter((n) => n.appId === appId);
    for (const net of app?.networks ?? []) {
      const existing = appNetworks.find((n) => n.name === net.engineName);
      if (!existing) {
        steps.push({ action: 'createNetwork', network: net });
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
    const s = this.s;
    const record = s.ctx.initialContainers.get(s.appId);
    const app = s.app;
    if (!app) {
      // The deployment was abandoned with the app: what was stopped for it runs again.
      if (!record) return;
      const stopped = record.phase === 'stopped' ? s.current.others.filter((c) => record.names.includes(c.name)) : [];
      s.steps.push({ action: 'restoreInitial', appId: s.appId, releaseId: record.releaseId, containers: stopped, forget: true });
      return;
    }
    if (s.ctx.appliedReleases.get(s.appId) === app.releaseId) return;
    const names = new Set([...app.removeContainers, ...(record?.phase === 'stopped' ? record.names : [])]);
    s.initial = s.current.others.filter((c) => names.has(c.name));
    if (!s.initial.length || (record?.phase === 'restored' && record.releaseId === app.releaseId)) return;
    if (record?.phase === 'stopped' && s.ctx.failedReleases.get(s.appId) === app.releaseId) {
      const stopped = s.initial.filter((c) => record.names.includes(c.name));
      s.steps.push({ action: 'restoreInitial', appId: s.appId, releaseId: app.releaseId, containers: stopped });
      s.initialRunning = true;
      return;
    }
    const live = s.initial.filter((c) => LIVE.has(c.state));
    if (!live.length) return;
    s.initialRunning = true;
    if (s.missingAppImages().length) return;
    for (const container of live) s.destructive.push({ action: 'stopInitial', appId: s.appId, releaseId: app.releaseId, container });
  }

  /** A network goes once no container of the app uses it; those that do are killed first. */
  private removeNetwork(name: string, reason: string): void {
    const s = this.s;
    s.removingNetworks.add(name);
    const users = s.containers.filter((c) => c.networks.includes(name));
    if (users.length === 0) {
      s.steps.push({ action: 'removeNetwork', appId: s.appId, name });
      return;
    }
    // Dead containers are removed without the lock by the service planner; removing ones are going anyway.
    for (const c of users) {
      if (c.state === 'dead' || c.state === 'removing') continue;
      const why = !s.app ? 'app removed from target' : s.app.services.has(c.serviceName) ? reason : 'service removed from target';
      s.kill(c, why);
    }
  }

  /**
   * Stops and kills are the only steps an app's update lock holds back, and they run only while
   * the agent holds that lock itself. Dependents go before what they depend on.
   */
  private gateDestructiveSteps(): void {
    const s = this.s;
    if (s.destructive.length === 0) return;
    const ordered = this.inStopOrder(s.destructive);
    if (s.ctx.locksHeld.has(s.appId)) {
      s.steps.push(...ordered);
      return;
    }
    const retryAt = s.ctx.lockBackoff.get(s.appId);
    // The app held its lock at the last attempt: each service whose stop or kill it holds back says so.
    if (retryAt !== undefined) this.waitForLock(retryAt);
    if (retryAt !== undefined && retryAt > s.ctx.now) return;
    const services = new Set([...(s.app?.services.keys() ?? []), ...s.containers.map((c) => c.serviceName)]);
    s.steps.push({ action: 'takeLock', appId: s.appId, services: [...services].sort() });
  }

  /** Until `retryAt` the wait is on the lock alone (`lock`): the loop may look at the lock files instead of planning again. */
  private waitForLock(retryAt: number): void {
    const s = this.s;
    const backedOff = retryAt > s.ctx.now;
    const retry = backedOff ? `; retrying in ${Math.ceil((retryAt - s.ctx.now) / 1000)} s` : '';
    const serviceOf = (step: Step) => ('serviceName' in step ? step.serviceName : undefined);
    for (const service of new Set(s.destructive.map(serviceOf))) {
      const held = s.destructive.filter((step) => serviceOf(step) === service);
      const reason = `${service ? `${service} waits: ` : ''}updates are locked by app ${s.appId}${retry}`;
      if (backedOff) s.wait(service, reason, retryAt, held, true);
      else s.noop(service, reason, ...held);
    }
  }

  /** Holds back a stop/kill while a live container that depends on its service is stopped in the same pass. */
  private inStopOrder(steps: Step[]): Step[] {
    const stopping = new Set(steps.map((step) => ('serviceName' in step ? step.serviceName : '')));
    return steps.filter((step) => {
      if (!('serviceName' in step) || !step.serviceName) return true;
      const name = step.serviceName;
      const dependents = this.s.containers.filter(
        (c) => c.serviceName !== name && LIVE.has(c.state) && stopping.has(c.serviceName) && c.dependsOn.includes(name),
      );
      if (dependents.length === 0) return true;
      this.s.noop(name, `${name} stops after ${[...new Set(dependents.map((d) => d.serviceName))].join(', ')}`, step);
      return false;
    });
  }

  private planAppliedRecord(): void {
    const { steps, app, appId, ctx, initial } = this.s;
    if (steps.length > 0) return;
    const recorded = ctx.appliedReleases.get(appId);
    if (app && recorded !== app.releaseId) {
      // The release runs: the containers it replaces go before it counts as applied.
      if (initial.length) {
        for (const container of initial) steps.push({ action: 'removeInitial', appId, container });
        return;
      }
      steps.push({ action: 'markApplied', appId, releaseId: app.releaseId, commit: app.commit });
    } else if (!app && recorded !== undefined) {
      steps.push({ action: 'markApplied', appId, releaseId: null, commit: null });
    }
  }
}
