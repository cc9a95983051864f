// The device's current state as the device API and the control plane get it: the engine read now,
// what a plan made now would still do, what the executor and the puller are doing, and each target
// release's settle verdict (settleWatch.ts, loaded with the first target that has apps).
import type Docker from 'dockerode';
import { readCurrentState } from '../engine/readState.js';
import type { ImagePuller } from '../images/imagePuller.js';
import type { DesiredState } from '../reconciler/desiredState.js';
import type { Executor } from '../reconciler/executor.js';
import type { Reconciler } from '../reconciler/reconciler.js';
import type { AgentStore } from '../store/agentStore.js';
import { reportCurrentState, type AppReport } from './currentState.js';
import type { SettleWatch } from './settleWatch.js';

export interface StateReportDeps {
  docker: Docker;
  scope: string | undefined;
  store: AgentStore;
  puller: ImagePuller;
  executor: Executor;
  reconciler: Reconciler;
  desired: () => DesiredState | undefined;
  settleMs: number;
  /** a settle verdict may have changed: report the state again */
  onRecheck: () => void;
  /** the engine events' generation (engine/engineEvents.ts) */
  engineGeneration: () => number | undefined;
}

export class StateReport {
  private settleWatch: Promise<SettleWatch> | undefined;

  constructor(private readonly d: StateReportDeps) {}

  /**
   * `sinceLastApply`: the reconciler's last read and plan are used while still current (no apply,
   * action, trigger or engine event since), sparing the engine a read and the agent a plan; the
   * control plane's reports, which follow every apply, take it. The device API reads afresh.
   */
  async read(sinceLastApply = false): Promise<Record<string, AppReport>> {
    const { docker, scope, store, puller, executor, reconciler } = this.d;
    const last = sinceLastApply ? reconciler.currentRead() : undefined;
    const current = last?.current ?? (await readCurrentState(docker, scope));
    const desired = this.d.desired();
    const applied = store.appliedReleases();
    const planned = last?.steps ?? (await reconciler.pendingSteps(current));
    const downloading = (appId: number) => [...(desired?.apps.get(appId)?.services.keys() ?? [])].some((s) => puller.progress(appId, s) !== null);
    const settle = desired?.apps.size ? await (await this.settleWatcher()).check(current, desired, applied, downloading) : undefined;
    return reportCurrentState(current, desired, {
      phase: (a, s) => executor.phase(a, s),
      progress: (a, s) => puller.progress(a, s),
      error: (a, s) => executor.errors.get(a, s),
      applied,
      planned,
      settle: (a) => settle?.get(a),
    });
  }

  async stop(): Promise<void> {
    (await this.settleWatch?.catch(() => undefined))?.stop();
  }

  private settleWatcher(): Promise<SettleWatch> {
    this.settleWatch ??= import('./settleWatch.js').then(
      ({ SettleWatch }) =>
        new SettleWatch({
          docker: this.d.docker,
          settleMs: this.d.settleMs,
          onRecheck: this.d.onRecheck,
          engineGeneration: this.d.engineGeneration,
        }),
    );
    return this.settleWatch;
  }
}
