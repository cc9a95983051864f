// Local mode (balena CLI development): the device follows targets pushed with the balena CLI
// instead of its managed target, and may expose its engine over TCP for the CLI's builds.
// The pushed target is persisted, so a restart in local mode keeps it.
import type Docker from 'dockerode';
import type { TargetState } from '../shared/targetState.js';
import { validateTargetState } from '../shared/validateTarget.js';
import type { EventLog } from './eventLog.js';
import type { AgentStore } from './store/agentStore.js';

const LOCAL_TARGET_KEY = 'local_target';

export interface LocalModeDeps {
  docker: Docker;
  log: EventLog;
  /** `127.0.0.1:2375` or a port: where the engine is exposed while in local mode */
  engineTcp: string | undefined;
}

export class LocalMode {
  /** the target pushed with the balena CLI */
  target: TargetState | undefined;
  /** whether the device followed local targets at the last activation */
  private active = false;
  private engineTcp: { port: number; close(): Promise<void> } | undefined;

  constructor(private readonly d: LocalModeDeps) {}

  /** Reads the persisted local target; `on`: whether the device starts in local mode. */
  async load(store: AgentStore, on: boolean): Promise<void> {
    const json = (await store.configValues()).get(LOCAL_TARGET_KEY);
    if (json) this.target = validateTargetState(JSON.parse(json));
    // A device that starts in local mode says so; one whose local mode ended while it was down cleans up.
    this.active = this.target !== undefined && !on;
  }

  /** Whether the device was in local mode at the last activation. */
  get wasActive(): boolean {
    return this.active;
  }

  async save(store: AgentStore, target: TargetState): Promise<void> {
    await store.updateConfig({ [LOCAL_TARGET_KEY]: JSON.stringify(target) });
    this.target = target;
  }

  /**
   * Enters or leaves local mode as `on` says. Leaving drops the local target and returns the apps
   * only it had (their volumes go once the next apply removed them).
   */
  async switch(on: boolean, store: AgentStore, managed: TargetState | undefined): Promise<number[]> {
    let localOnly: number[] = [];
    if (on && !this.active) {
      this.d.log.warn('LOCAL MODE: the device follows targets pushed with the balena CLI; the device API needs no key');
      await this.exposeEngine();
    } else if (!on && this.active) {
      this.d.log.warn('Local mode ended: back to the managed target');
      await this.closeEngine();
      localOnly = Object.keys(this.target?.apps ?? {})
        .filter((id) => !managed?.apps[id])
        .map(Number);
      this.target = undefined;
      await store.updateConfig({}, [LOCAL_TARGET_KEY]);
    }
    this.active = on;
    return localOnly;
  }

  async closeEngine(): Promise<void> {
    await this.engineTcp?.close();
    this.engineTcp = undefined;
  }

  /** Development aid of local mode: the balena CLI builds on the device's engine over TCP 2375. */
  private async exposeEngine(): Promise<void> {
    const { engineTcp } = this.d;
    if (!engineTcp || this.engineTcp) return;
    const socketPath = (this.d.docker.modem as { socketPath?: string }).socketPath;
    if (!socketPath) return this.d.log.warn('--engine-tcp needs an engine on a unix socket');
    const [host, port] = engineTcp.includes(':') ? engineTcp.split(/:(?=\d+$)/) : ['127.0.0.1', engineTcp];
    const { startEngineTcpProxy } = await import('./dev/engineTcpProxy.js');
    this.engineTcp = await startEngineTcpProxy({ socketPath, host: host!, port: Number(port) });
    this.d.log.warn(`LOCAL MODE: the Docker Engine is exposed on ${host}:${this.engineTcp.port}, without authentication`);
  }
}
