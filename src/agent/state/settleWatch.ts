// Watches each target release until it settles (settle.ts): inspects the containers of apps whose
// release has not settled yet, reads the last lines of those that failed, and asks to be looked at
// again when a verdict can change without an engine event (a settle period ends, a healthcheck
// runs). An applied release seen settled is not inspected again, nor is a running container
// without a healthcheck while no engine event came (what changes its run, a crash or a restart,
// is one). Loaded with the first target.
import type Docker from 'dockerode';
import { readLogs } from '../engine/containerLogs.js';
import { withDeadline } from '../engine/deadline.js';
import type { DesiredApp, DesiredState } from '../reconciler/desiredState.js';
import type { CurrentState } from '../reconciler/types.js';
import {
  appSettle,
  failureText,
  LAST_LINES,
  LAST_LINES_BYTES,
  lastLines,
  serviceSettle,
  type AppSettle,
  type ContainerRun,
  type ServiceSettle,
} from './settle.js';

export interface SettleWatchDeps {
  docker: Docker;
  settleMs: number;
  /** a verdict may have changed: report the state again */
  onRecheck: () => void;
  /** the engine events' generation (engine/engineEvents.ts): an inspect holds until it changes */
  engineGeneration: () => number | undefined;
}

const INSPECT_TIMEOUT_MS = 10_000;

interface Inspected {
  run: ContainerRun;
  tty: boolean;
  /** names this run of the container: its last lines are read once per run */
  runKey: string;
}

export class SettleWatch {
  /** app → its release seen settled */
  private readonly settled = new Map<number, number>();
  /** `appId/service` → the last lines of a failed run */
  private readonly lines = new Map<string, { runKey: string; text: string }>();
  /** container → its last inspect, with the engine events' generation it was made in */
  private readonly runs = new Map<string, { info: Inspected; generation: number }>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;

  constructor(private readonly d: SettleWatchDeps) {}

  /**
   * The verdict of each app of `desired`. Before its release is applied (another service's image
   * cannot be pulled, say), only its failures count: they may be why it does not get there. An app
   * that is `downloading` is left for later: its state is reported every few seconds meanwhile.
   */
  async check(
    current: CurrentState,
    desired: DesiredState | undefined,
    applied: ReadonlyMap<number, { releaseId: number }>,
    downloading: (appId: number) => boolean,
  ): Promise<Map<number, AppSettle>> {
    this.forgetGone(desired, current);
    const verdicts = new Map<number, AppSettle>();
    for (const [appId, app] of desired?.apps ?? []) {
      const isApplied = applied.get(appId)?.releaseId === app.releaseId;
      if (isApplied && this.settled.get(appId) === app.releaseId) {
        verdicts.set(appId, { state: 'settled', failures: new Map(), recheckAt: undefined });
        continue;
      }
      if (!isApplied && downloading(appId)) continue;
      const verdict = await this.checkApp(current, appId, app);
      if (isApplied && verdict.state === 'settled') this.settled.set(appId, app.releaseId);
      verdicts.set(appId, verdict);
    }
    return verdicts;
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async checkApp(current: CurrentState, appId: number, app: DesiredApp): Promise<AppSettle> {
    const now = Date.now();
    const services = new Map<string, ServiceSettle>();
    const inspected = new Map<string, { id: string; info: Inspected }>();
    // One container at a time, all within one deadline: concurrent inspects each open a connection
    // to the engine, and the last check comes when the settle period ends, while the agent idles
    // (about 0.3 MB of RSS in cloud mode, BENCHMARKS.md §3).
    const deadline = now + INSPECT_TIMEOUT_MS;
    for (const [name, spec] of app.services) {
      if (!spec.running) continue;
      const container = current.containers.find((c) => c.appId === appId && c.serviceName === name && c.configHash === spec.hash);
      const info = container && (this.stillCurrent(container) ?? (await this.inspect(container.id, deadline - Date.now())));
      if (container && info) inspected.set(name, { id: container.id, info });
      services.set(name, info ? serviceSettle(info.run, now, this.d.settleMs) : { state: 'settling', recheckAt: undefined });
    }
    const verdict = appSettle(services);
    for (const [name, reason] of verdict.failures) {
      const c = inspected.get(name);
      if (c) verdict.failures.set(name, failureText(reason, await this.lastLinesOf(`${appId}/${name}`, c.id, c.info)));
    }
    if (verdict.recheckAt !== undefined) this.recheckAt(verdict.recheckAt);
    return verdict;
  }

  /** The last inspect of a running container without a healthcheck, when no engine event came since. */
  private stillCurrent(container: { id: string; state: string }): Inspected | undefined {
    const known = this.runs.get(container.id);
    const stable = known && container.state === 'running' && known.info.run.status === 'running' && known.info.run.health === undefined;
    return stable && known.generation === this.d.engineGeneration() ? known.info : undefined;
  }

  private async inspect(id: string, timeoutMs: number): Promise<Inspected | undefined> {
    if (timeoutMs <= 0) return undefined; // the engine is slow: the next look decides
    const generation = this.d.engineGeneration();
    try {
      const c = await withDeadline((d) => this.d.docker.getContainer(id).inspect({ ...d }), timeoutMs);
      const s = c.State;
      const health = s.Health;
      const info: Inspected = {
        run: {
          status: s.Status,
          exitCode: s.ExitCode,
          oomKilled: s.OOMKilled,
          restartCount: c.RestartCount,
          startedAt: Date.parse(s.StartedAt) || 0,
          health: health?.Status,
          healthOutput: health?.Log?.at(-1)?.Output,
        },
        tty: c.Config.Tty,
        runKey: `${c.RestartCount}/${s.StartedAt}/${s.FinishedAt}`,
      };
      if (generation !== undefined) this.runs.set(id, { info, generation });
      return info;
    } catch {
      return undefined; // gone meanwhile, or the engine is slow: the next look decides
    }
  }

  /** The failed run's last lines, read once per run (bounded: LAST_LINES, LAST_LINES_BYTES). */
  private async lastLinesOf(key: string, id: string, info: Inspected): Promise<string> {
    const known = this.lines.get(key);
    if (known?.runKey === info.runKey) return known.text;
    let kept = Buffer.alloc(0);
    try {
      await readLogs(
        this.d.docker,
        id,
        { tail: LAST_LINES, tty: info.tty },
        (chunk) => {
          kept = Buffer.concat([kept, chunk]);
          if (kept.length > 4 * LAST_LINES_BYTES) kept = kept.subarray(kept.length - 4 * LAST_LINES_BYTES);
        },
        INSPECT_TIMEOUT_MS,
      );
    } catch {
      return ''; // its error still says why it failed
    }
    const text = lastLines(kept.toString('utf8'));
    this.lines.set(key, { runKey: info.runKey, text });
    return text;
  }

  private recheckAt(at: number): void {
    if (at >= this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    // (a little after: the run must have lasted the whole period when it is looked at)
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerAt = Infinity;
        this.d.onRecheck();
      },
      Math.max(0, at - Date.now()) + 100,
    );
    this.timer.unref();
  }

  /** Apps, services and containers no longer there are forgotten (the maps stay as small as the target). */
  private forgetGone(desired: DesiredState | undefined, current: CurrentState): void {
    const ids = new Set(current.containers.map((c) => c.id));
    for (const id of this.runs.keys()) if (!ids.has(id)) this.runs.delete(id);
    for (const appId of this.settled.keys()) if (!desired?.apps.has(appId)) this.settled.delete(appId);
    for (const key of this.lines.keys()) {
      const [appId, service] = key.split('/');
      if (!desired?.apps.get(Number(appId))?.services.has(service!)) this.lines.delete(key);
    }
  }
}
