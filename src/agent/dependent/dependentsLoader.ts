// Loads a gateway's dependent apps and devices (dependents.ts) only when there are any: with a target
// that has a `dependent` part, at start when the database still holds devices or owed hooks, or at
// the gateway app's first call. Small and import-free at run time: the agent imports it at start.
import type { Agent } from '../agent.js';
import type { AgentDb } from '../store/database.js';
import type { TargetState } from '../../shared/targetState.js';
import type { Dependents, DependentsDeps } from './dependents.js';

/** What only the agent itself knows: its control plane, its log channel, its state report. */
export type AgentLinks = Pick<DependentsDeps, 'shipLog' | 'reportChanged'> & { endpoint(): string | undefined };

export class DependentsLoader {
  private loading: Promise<Dependents> | undefined;
  /** once loaded (the image cleanup and the state report read it synchronously) */
  loaded: Dependents | undefined;

  constructor(
    private readonly agent: Agent,
    private readonly links: AgentLinks,
  ) {}

  private deps(): DependentsDeps {
    const { agent } = this;
    const endpoint = this.links.endpoint();
    return {
      db: agent.store.db,
      docker: agent.docker,
      scope: agent.opts.engineScope,
      dataDir: agent.opts.dataDir,
      puller: agent.puller,
      trackImage: (ref, appId) => agent.store.trackImage(ref, appId, 'dependent'),
      log: agent.log,
      target: () => agent.getTarget(),
      link: () => (endpoint && agent.config.deviceApiKey ? { endpoint, deviceKey: agent.config.deviceApiKey } : undefined),
      shipLog: this.links.shipLog,
      reportChanged: this.links.reportChanged,
      imagesChanged: () => agent.reconciler.trigger('dependent images changed'),
      ...agent.opts.dependents,
    };
  }

  get(): Promise<Dependents> {
    if (!this.loading) {
      this.loading = import('./dependents.js').then(({ Dependents }) => Dependents.open(this.deps()));
      this.loading.then(
        (d) => (this.loaded = d),
        () => (this.loading = undefined),
      );
    }
    return this.loading;
  }

  /** The target changed: hooks fire now (a first load applies the target itself). */
  async targetChanged(target: TargetState | undefined): Promise<void> {
    if (this.loaded) await this.loaded.applyTarget().catch((err: Error) => this.agent.log.error(`Dependent devices: ${err.message}`));
    else if (target?.dependent) await this.get().catch((err: Error) => this.agent.log.error(`Dependent devices not loaded: ${err.message}`));
  }

  /** At start: a gateway whose target lost its dependents may still owe hooks or hold devices provisioned offline. */
  async started(db: AgentDb): Promise<void> {
    if (this.loading) return;
    const device = await db.selectFrom('dependent_device').select('uuid').limit(1).executeTakeFirst();
    if (device || (await db.selectFrom('dependent_hook').select('uuid').limit(1).executeTakeFirst()))
      await this.get().catch((err: Error) => this.agent.log.error(`Dependent devices not loaded: ${err.message}`));
  }

  async stop(): Promise<void> {
    await (await this.loading?.catch(() => undefined))?.stop();
  }
}
