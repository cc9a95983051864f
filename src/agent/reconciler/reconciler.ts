// The control loop: read actual state → plan → execute, repeated until the plan is empty;
// then wait for a trigger (new target, engine event, pull done), the periodic interval, or, while
// waits remain, the earliest time one of them is to be looked at again (its retryAt). A wait held
// only by an app's update lock is looked at on the lock files: no engine read while the lock is held.
import type Docker from 'dockerode';
import { engineErrorMessage } from '../engine/deadline.js';
import { readCurrentState, readStartedAt } from '../engine/readState.js';
import type { EventLog } from '../eventLog.js';
import type { ImagePuller } from '../images/imagePuller.js';
import type { UpdateLocks } from '../locks/updateLock.js';
import type { AgentStore } from '../store/agentStore.js';
import type { DesiredState } from './desiredState.js';
import type { Executor } from './executor.js';
import { plan, POLL_MS } from './plan.js';
import type { CurrentContainer, CurrentState, PlanContext, Step } from './types.js';

export interface ReconcilerDeps {
  docker: Docker;
  scope: string | undefined;
  store: AgentStore;
  locks: UpdateLocks;
  puller: ImagePuller;
  executor: Executor;
  log: EventLog;
  /** undefined until a target exists: the agent never applies an empty target by default */
  desired: () => DesiredState | undefined;
  /** images the agent pulled for something else than a service (a gateway's dependent apps): cleanup keeps them */
  keepImages?: () => ReadonlySet<string> | undefined;
  /** periodic re-check when converged */
  intervalMs: number;
  /** told after every apply of the loop */
  onApplied?: (outcome: ApplyOutcome) => void;
  /** the engine events' generation: the last apply's read stays current until it changes (undefined: never) */
  engineGeneration?: () => number | undefined;
}

/** What the last apply read from the engine and planned, when it ended with nothing left to do now. */
export interface LastRead {
  desired: DesiredState;
  current: CurrentState;
  steps: Step[];
  generation: number;
}

export type ApplyOutcome = 'converged' | 'waiting';

/** Upper bound of plan/execute rounds in one apply; each round makes progress or waits. */
const MAX_ROUNDS = 50;

/** A wait of the last apply: when to look again, and the app whose lock alone holds it until then. */
interface Requeue {
  retryAt: number;
  lockOf?: number | undefined;
}

export class Reconciler {
  private running = false;
  /** set when the device goes down (reboot, shutdown): nothing is applied any more */
  private halted = false;
  private wake: (() => void) | undefined;
  private pending = false;
  private loopDone: Promise<void> | undefined;
  private applying: Promise<unknown> = Promise.resolve();
  private previousWaits = new Set<string>();
  /** the last apply's waits (empty when it converged) */
  private waits: Requeue[] = [];
  private loggedWaits = new Set<string>();
  private lastRead: LastRead | undefined;
  /** for health checks and the device API */
  readonly status = {
    applying: false,
    lastApplyStart: 0,
    lastApplyEnd: 0,
    lastOutcome: undefined as ApplyOutcome | undefined,
    lastError: undefined as string | undefined,
    engineReachable: true,
    waitReasons: [] as string[],
  };

  constructor(private readonly d: ReconcilerDeps) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.loop();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loopDone;
  }

  trigger(reason: string): void {
    this.d.log.logger.debug({ reason }, 'apply triggered');
    this.lastRead = undefined; // something changed: the next read is fresh
    this.pending = true;
    this.wake?.();
  }

  /** One apply: plan and execute until converged or only waits remain. Applies never overlap. */
  applyOnce(): Promise<ApplyOutcome> {
    return this.exclusive(() => this.apply());
  }

  /** Runs `fn` between applies (device API actions): no apply starts until it is done. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.applying.then(() => {
      this.lastRead = undefined; // whatever runs now may change the engine
      return fn();
    });
    this.applying = run.catch(() => undefined);
    return run;
  }

  /** The device is going down: the loop ends and nothing more is applied. */
  halt(): void {
    this.halted = true;
    this.running = false;
    this.wake?.();
  }

  private async apply(): Promise<ApplyOutcome> {
    const desired = this.d.desired();
    if (!desired || this.halted) return 'converged';
    this.status.applying = true;
    this.status.lastApplyStart = Date.now();
    try {
      for (let round = 0; round < MAX_ROUNDS; round++) {
        const generation = this.d.engineGeneration?.();
        const current = await readCurrentState(this.d.docker, this.d.scope);
        this.status.engineReachable = true;
        // Only an apply prunes the record of handover starts: no step runs between its read of the engine and this.
        this.d.executor.forgetGoneHandovers(current);
        const steps = plan(current, desired, await this.context(current));
        this.d.executor.errors.retain(steps);
        const actionable = steps.filter((s) => s.action !== 'noop' && !this.d.executor.backedOff(s));
        this.reportWaits(steps);
        this.waits = this.requeues(steps);
        if (actionable.length === 0) {
          if (generation !== undefined) this.lastRead = { desired, current, steps, generation };
          return steps.length === 0 ? 'converged' : 'waiting';
        }
        this.d.log.logger.debug({ steps: actionable.map(describeStep) }, 'executing');
        await this.d.executor.run(actionable, current);
      }
      this.waits = [{ retryAt: Date.now() + POLL_MS }];
      return 'waiting';
    } finally {
      this.status.applying = false;
      this.status.lastApplyEnd = Date.now();
    }
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (this.running) {
      this.pending = false;
      let delay = this.d.intervalMs;
      try {
        const outcome = await this.applyOnce();
        this.status.lastOutcome = outcome;
        this.d.onApplied?.(outcome);
        this.status.lastError = undefined;
        failures = 0;
        if (outcome === 'waiting') delay = this.requeueAfter();
      } catch (err) {
        this.waits = [];
        failures++;
        const message = engineErrorMessage(err);
        this.status.lastError = message;
        if (isEngineDown(err)) this.status.engineReachable = false;
        delay = Math.min(500 * 2 ** failures, 60_000);
        this.d.log.error(`Apply failed: ${message}; retrying in ${Math.ceil(delay / 1000)} s`);
      }
      while (!this.pending && this.running) {
        await this.sleep(delay);
        const next = this.pending || !this.running ? undefined : await this.recheckLocks();
        if (next === undefined) break;
        delay = next;
      }
    }
  }

  /** The waits of a plan: a wait's own retryAt; a failed step's, its backoff's end. */
  private requeues(steps: Step[]): Requeue[] {
    return steps.flatMap((s): Requeue[] => {
      if (s.action === 'noop') return [{ retryAt: s.retryAt, lockOf: s.lock ? s.appId : undefined }];
      const retryAt = this.d.executor.retryAt(s);
      return retryAt !== undefined && retryAt > Date.now() ? [{ retryAt }] : [];
    });
  }

  /** How long the loop sleeps: until the earliest wait is due (RequeueAfter), at most the interval. */
  private requeueAfter(): number {
    const earliest = Math.min(...this.waits.map((w) => w.retryAt));
    return Math.min(this.d.intervalMs, Math.max(1, earliest - Date.now()));
  }

  /**
   * Woken by time: when every wait now due is on an update lock its app still holds (the lock
   * files say so), a plan would change nothing. Those waits move to their new retry time and the
   * loop sleeps again (the new delay) without reading the engine; undefined: apply.
   */
  private async recheckLocks(): Promise<number | undefined> {
    const now = Date.now();
    const due = this.waits.filter((w) => w.retryAt <= now);
    if (due.length === 0 || due.some((w) => w.lockOf === undefined)) return undefined;
    const { executor } = this.d;
    for (const appId of new Set(due.map((w) => w.lockOf!))) {
      if (!(await this.exclusive(() => executor.lockStillHeld(appId)))) return undefined;
    }
    const locks = executor.backoffs().locks;
    for (const w of due) w.retryAt = locks.get(w.lockOf!) ?? now;
    return this.requeueAfter();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.wake = undefined;
        resolve();
      }
      this.wake = done;
    });
  }

  /**
   * The last apply's read of the engine and its plan, while they are still what a read and a plan
   * made now would give: the same target, no apply or action since, and no engine event.
   */
  currentRead(): LastRead | undefined {
    const r = this.lastRead;
    return r && r.generation === this.d.engineGeneration?.() && r.desired === this.d.desired() ? r : undefined;
  }

  /**
   * What a plan made now would do (for reports: an app is done only when none of it is its own).
   * Errors of steps it no longer holds are dropped, as in an apply.
   */
  async pendingSteps(current: CurrentState): Promise<Step[]> {
    const desired = this.d.desired();
    if (!desired) return [];
    const steps = plan(current, desired, await this.context(current));
    this.d.executor.errors.retain(steps);
    return steps;
  }

  private async context(current: CurrentState): Promise<PlanContext> {
    const { store, locks, puller, executor } = this.d;
    const handovers = await this.handovers(current);
    const backoffs = executor.backoffs();
    return {
      now: Date.now(),
      downloading: puller.downloading(),
      pullBackoff: puller.backoff(),
      serviceBackoff: backoffs.services,
      locksHeld: locks.heldByAgent(),
      lockBackoff: backoffs.locks,
      handoverComplete: handovers.complete,
      startedAt: handovers.startedAt,
      stoppedByAgent: store.stoppedContainers(),
      trackedImages: store.trackedImages(),
      keepImages: this.d.keepImages?.() ?? new Set(),
      appliedReleases: new Map([...store.appliedReleases()].map(([app, r]) => [app, r.releaseId])),
      initialContainers: store.initialContainers(),
      failedReleases: executor.failedReleases(),
      purgedData: store.purgedData(),
    };
  }

  /**
   * Only services with two containers are mid-handover; only they need a look at the disk and at
   * when their containers started running (the agent's record of its start, else the engine's).
   */
  private async handovers(current: CurrentState): Promise<{ complete: Set<string>; startedAt: Map<string, number> }> {
    const { executor, locks, docker } = this.d;
    const byService = new Map<string, CurrentContainer[]>();
    for (const c of current.containers) {
      const key = `${c.appId}/${c.serviceName}`;
      byService.set(key, [...(byService.get(key) ?? []), c]);
    }
    const complete = new Set<string>();
    const startedAt = new Map<string, number>();
    for (const [key, containers] of byService) {
      if (containers.length < 2) continue;
      const [appId, service] = key.split('/');
      if (await locks.handoverComplete(Number(appId), service!)) complete.add(key);
      for (const c of containers) {
        const at = executor.handoverStart(c.id) ?? (await readStartedAt(docker, c.id));
        if (at !== undefined) startedAt.set(c.id, at);
      }
    }
    return { complete, startedAt };
  }

  /** A wait is logged once, when it outlasts a round (most resolve within the same apply). */
  private reportWaits(steps: Step[]): void {
    const reasons = steps.flatMap((s) => (s.action === 'noop' ? [s.reason] : []));
    this.status.waitReasons = reasons;
    const logged = new Set<string>();
    for (const r of reasons) {
      if (this.loggedWaits.has(r) || (this.previousWaits.has(r) && !r.startsWith('downloading '))) {
        if (!this.loggedWaits.has(r)) this.d.log.info(r);
        logged.add(r);
      }
    }
    this.previousWaits = new Set(reasons);
    this.loggedWaits = logged;
  }
}

function describeStep(s: Step): string {
  switch (s.action) {
    case 'create':
      return `create ${s.service.serviceName}${s.start ? ' and start' : ''}`;
    case 'createNetwork':
      return `createNetwork ${s.network.engineName}`;
    case 'createVolume':
      return `createVolume ${s.volume.engineName}`;
    default:
      return 'serviceName' in s && s.serviceName ? `${s.action} ${s.serviceName}` : s.action;
  }
}

function isEngineDown(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ECONNREFUSED' || code === 'ENOENT' || code === 'EPIPE' || code === 'ECONNRESET';
}
