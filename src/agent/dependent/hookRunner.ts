// Sends the hooks owed to gateway apps (dependent_hook rows), each when due: at once when queued,
// then with a doubling, capped backoff while it fails or (an update answered 202) until the gateway
// app reports the commit. Rows are the queue, so hooks survive restarts; there is at most one per
// device and kind (bounded by the devices). Calls time out and run a few at a time, off the agent's
// other work.
import { request } from '../cloud/httpClient.js';
import type { DependentStore, StoredHook } from './dependentStore.js';
import { HOOK_BACKOFF, HOOK_METHOD, hookDelayMs, hookOutcome, hookUrl, MAX_ONE_SHOT_ATTEMPTS, type Backoff, type UpdateHookBody } from './hookPlan.js';

/** What a hook row's body holds: the device's dependent app and its gateway app (whose hook address it goes to), and (an update) what is sent. */
export interface HookBody {
  appId: number;
  /** known when queued; a deleted dependent app is in no target any more */
  gateway?: number;
  send?: UpdateHookBody;
}

export interface HookRunnerDeps {
  store: DependentStore;
  /** the hook address the gateway app set */
  address(hook: HookBody): string;
  /** the commit the gateway app last reported for the device */
  reportedCommit(uuid: string): Promise<string | null | undefined>;
  log: { info(m: string): void; logger: { warn(fields: object, m: string): void } };
  timeoutMs?: number;
  backoff?: Backoff;
}

const MAX_IN_FLIGHT = 4;

export class HookRunner {
  private readonly inFlight = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private again = false;
  private stopped = false;
  private readonly sends = new Set<Promise<void>>();
  /** hooks whose last attempt failed before its retry was recorded (the database): not before `until`, unless queued anew since */
  private readonly holdOff = new Map<string, { until: number; dueAt: number }>();

  constructor(private readonly d: HookRunnerDeps) {}

  /** Looks at the queue now (a hook was queued, or one ended). */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.pass()
      .catch((err: Error) => this.d.log.logger.warn({ err }, 'Dependent device hooks not sent'))
      .finally(() => {
        this.running = false;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await Promise.all(this.sends);
  }

  private async pass(): Promise<void> {
    const hooks = await this.d.store.hooks();
    const now = Date.now();
    let next = Infinity;
    for (const h of hooks) {
      const key = `${h.uuid}/${h.kind}`;
      if (this.inFlight.has(key)) continue;
      // a hook queued anew (a new target) since its attempt failed goes at once: its row's due time moved
      const held = this.holdOff.get(key);
      const due = Math.max(h.dueAt, held?.dueAt === h.dueAt ? held.until : 0);
      if (due > now) {
        next = Math.min(next, due);
        continue;
      }
      this.holdOff.delete(key);
      if (this.inFlight.size >= MAX_IN_FLIGHT) break; // the next to end kicks again
      this.inFlight.add(key);
      const send = this.send(h)
        .catch((err: Error) => {
          this.holdOff.set(key, { until: Date.now() + (this.d.backoff ?? HOOK_BACKOFF).maxMs, dueAt: h.dueAt });
          this.d.log.logger.warn({ err }, `Dependent device hook of ${key} not sent`);
        })
        .finally(() => {
          this.inFlight.delete(key);
          this.sends.delete(send);
          this.kick();
        });
      this.sends.add(send);
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    if (next < Infinity && !this.stopped) {
      this.timer = setTimeout(() => this.kick(), Math.max(0, next - Date.now()));
      this.timer.unref();
    }
  }

  private async send(h: StoredHook): Promise<void> {
    const body = h.body as HookBody;
    let status: number | undefined;
    let why = '';
    let url = this.d.address(body);
    try {
      // the address is the gateway app's own setting: one that is no URL fails like a hook server that does not answer
      url = hookUrl(url, h.uuid, h.kind);
      const answer = await request(url, {
        method: HOOK_METHOD[h.kind],
        ...(body.send ? { body: body.send } : {}),
        timeoutMs: this.d.timeoutMs ?? 10_000,
      });
      status = answer.status;
      why = `answered ${status}`;
    } catch (err) {
      why = (err as Error).message;
    }
    const outcome = hookOutcome(h.kind, status, h.kind === 'update' ? await this.d.reportedCommit(h.uuid) : undefined, body.send?.commit);
    const what = `${HOOK_METHOD[h.kind]} ${url}${body.send ? ` (commit ${body.send.commit})` : ''}`;
    if (outcome === 'done') {
      await this.d.store.endHook(h);
      this.d.log.info(`Dependent device hook ${what}: ${why}`);
      return;
    }
    const attempts = h.attempts + 1;
    if (h.kind !== 'update' && attempts >= MAX_ONE_SHOT_ATTEMPTS) {
      await this.d.store.endHook(h);
      this.d.log.info(`Dependent device hook ${what} given up after ${attempts} attempts: ${why}`);
      return;
    }
    const delay = hookDelayMs(attempts, this.d.backoff ?? HOOK_BACKOFF);
    await this.d.store.retryHook(h, attempts, Date.now() + delay);
    this.d.log.logger.warn({ url, attempts }, `Dependent device hook ${what}: ${why}; again in ${Math.ceil(delay / 1000)} s`);
  }
}
