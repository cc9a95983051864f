// The device link in cloud mode: registers the device with its provisioning key (once), long-polls
// its target state and hands each new one to the agent, and reports the current state back — only
// what changed, throttled, retried with backoff and jitter. Offline, the agent keeps applying the
// last target it had (it is persisted); the link just keeps trying.
import { BOSUN_VERSION } from '../../shared/version.js';
import type { AppReportPatch, CommandResultBody, DeviceCommand, StateReport, SupervisorPayload, UnikReport } from '../../shared/deviceLink.js';
import type { CommandResult } from '../../shared/executeCommand.js';
import type { AppReport } from '../state/currentState.js';
import { request, type HttpAnswer } from './httpClient.js';

export interface CloudLinkDeps {
  endpoint: string;
  /** the device key; registration happens first when there is none */
  deviceKey(): string | undefined;
  register(): Promise<void>;
  setTarget(target: unknown): Promise<void>;
  currentState(): Promise<Record<string, AppReport>>;
  /** the UniK images and instances (undefined: the UniK API is off) */
  unikState?(): Promise<UnikReport | undefined>;
  /** a gateway: what changed on its dependent devices, and how to mark it sent (undefined: none loaded) */
  dependentReport?(): Promise<{ patch: NonNullable<StateReport['dependent_devices']>; ack(): void }> | undefined;
  /** runs a device API call relayed by the control plane (supervisor proxy) */
  deviceApiCall(call: { method: string; path: string; body?: unknown }): Promise<{ status: number; body: string; headers: Record<string, string> }>;
  /** runs a module command of the control plane's execute API (never throws: a failure is its result) */
  executeCommand(payload: unknown): Promise<CommandResult>;
  log: { info(m: string): void; warn(m: string): void };
  /** how long one long poll may wait on the server (s) */
  waitS?: number;
  /** at most one report per this many ms */
  reportEveryMs?: number;
}

const MAX_BACKOFF_MS = 5 * 60_000;

/** Exponential backoff with full jitter: many devices coming back at once do not arrive together. */
export const backoffMs = (attempt: number, base = 1000) => Math.round(Math.random() * Math.min(MAX_BACKOFF_MS, base * 2 ** attempt));

export class CloudLink {
  private stopped = false;
  private readonly abort = new AbortController();
  private etag: string | undefined;
  /** per app, the JSON of what the server was last told */
  private reported = new Map<string, string>();
  /** the JSON of the UniK part the server was last told */
  private reportedUnik: string | undefined;
  private reportTimer: NodeJS.Timeout | undefined;
  private reporting: Promise<void> | undefined;
  private lastReportAt = 0;
  private reportFailures = 0;

  constructor(private readonly d: CloudLinkDeps) {}

  start(): void {
    void this.pollLoop();
    void this.commandLoop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    clearTimeout(this.reportTimer);
    await this.reporting;
  }

  /** Something changed on the device: report it soon (throttled). */
  scheduleReport(): void {
    if (this.stopped || this.reportTimer) return;
    const wait = Math.max(0, this.lastReportAt + (this.d.reportEveryMs ?? 2000) - Date.now());
    this.reportTimer = setTimeout(() => {
      this.reportTimer = undefined;
      this.reporting = this.report();
    }, wait);
    this.reportTimer.unref();
  }

  private headers(): Record<string, string> {
    return { authorization: `Bearer ${this.d.deviceKey() ?? ''}` };
  }

  private async pollLoop(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        if (!this.d.deviceKey()) await this.d.register();
        const waitS = this.d.waitS ?? 60;
        const answer = await request(`${this.d.endpoint}/device/v1/state?wait=${this.etag ? waitS : 0}`, {
          headers: { ...this.headers(), ...(this.etag ? { 'if-none-match': this.etag } : {}) },
          timeoutMs: (waitS + 30) * 1000,
          signal: this.abort.signal,
        });
        if (answer.status === 200) {
          await this.d.setTarget(JSON.parse(answer.body));
          this.etag = answer.headers.etag;
          // a new target starts new deployments: the server hears the whole state once, changed or not
          this.reported.clear();
          this.scheduleReport();
        } else if (answer.status !== 304) {
          throw new Error(describe(answer));
        }
        if (failures) this.d.log.info('Connection to the server restored');
        failures = 0;
      } catch (err) {
        if (this.stopped) return;
        const delay = backoffMs(failures++);
        this.d.log.warn(
          `Target state from ${this.d.endpoint} not fetched: ${(err as Error).message}; ` +
            `retrying in ${Math.ceil(delay / 1000)} s (the device keeps running its last target)`,
        );
        await sleep(delay, this.abort.signal);
      }
    }
  }

  /**
   * Commands the control plane queued for this device (it never connects to the device itself):
   * long-polled beside the target, run as they come, their results posted back.
   */
  private async commandLoop(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        if (!this.d.deviceKey()) {
          await sleep(1000, this.abort.signal);
          continue;
        }
        const waitS = this.d.waitS ?? 60;
        const answer = await request(`${this.d.endpoint}/device/v1/commands?wait=${waitS}`, {
          headers: this.headers(),
          timeoutMs: (waitS + 30) * 1000,
          signal: this.abort.signal,
        });
        if (answer.status === 200) for (const command of JSON.parse(answer.body) as DeviceCommand[]) void this.run(command);
        else if (answer.status !== 204) throw new Error(describe(answer));
        failures = 0;
      } catch (err) {
        if (this.stopped) return;
        const delay = backoffMs(failures++);
        this.d.log.warn(`Commands from ${this.d.endpoint} not fetched: ${(err as Error).message}; retrying in ${Math.ceil(delay / 1000)} s`);
        await sleep(delay, this.abort.signal);
      }
    }
  }

  private async run(command: DeviceCommand): Promise<void> {
    let result: CommandResultBody;
    if (command.kind === 'supervisor') {
      const { method, path, body } = command.payload as SupervisorPayload;
      result = await this.d
        .deviceApiCall({ method, path, ...(body !== undefined ? { body } : {}) })
        .catch((err: Error) => ({ status: 503, body: JSON.stringify({ status: 'failed', message: err.message }) }));
    } else if (command.kind === 'execute') {
      result = await this.d.executeCommand(command.payload);
    } else {
      result = { error: `this agent does not run ${command.kind} commands` };
    }
    for (let attempt = 0; attempt < 5 && !this.stopped; attempt++) {
      try {
        const answer = await request(`${this.d.endpoint}/device/v1/commands/${command.id}/result`, {
          method: 'POST',
          headers: this.headers(),
          body: result,
          timeoutMs: 30_000,
          signal: this.abort.signal,
        });
        if (answer.status < 300 || answer.status === 404) return; // 404: it expired meanwhile
        throw new Error(describe(answer));
      } catch (err) {
        this.d.log.warn(`Result of command ${command.id} not delivered: ${(err as Error).message}`);
        await sleep(backoffMs(attempt), this.abort.signal);
      }
    }
  }

  /** Sends the apps whose state changed since the last report the server accepted. */
  private async report(): Promise<void> {
    if (this.stopped || !this.d.deviceKey()) return;
    this.lastReportAt = Date.now();
    const apps: NonNullable<StateReport['apps']> = {};
    const sent = new Map<string, string>();
    for (const [appId, a] of Object.entries(await this.d.currentState())) {
      const summary: AppReportPatch = {
        releaseId: a.releaseId,
        targetReleaseId: a.targetReleaseId,
        updateStatus: a.updateStatus,
        settle: a.settle,
        services: Object.fromEntries(
          Object.entries(a.services).map(([n, s]) => [n, { status: s.status, downloadProgress: s.downloadProgress, error: s.error }]),
        ),
      };
      const json = JSON.stringify(summary);
      if (this.reported.get(appId) !== json) apps[appId] = summary;
      sent.set(appId, json);
    }
    // an app the device no longer runs leaves the server's view too
    for (const appId of this.reported.keys()) if (!sent.has(appId)) apps[appId] = null;
    const unik = await this.d.unikState?.().catch((err: Error) => void this.d.log.warn(`UniK state not read: ${err.message}`));
    const unikJson = unik ? JSON.stringify(unik) : undefined;
    const unikChanged = unikJson !== undefined && unikJson !== this.reportedUnik;
    const dependent = await this.d.dependentReport?.();
    const dependentChanged = !!dependent && Object.keys(dependent.patch).length > 0;
    if (!Object.keys(apps).length && this.reported.size && !unikChanged && !dependentChanged) return;
    try {
      const answer = await request(`${this.d.endpoint}/device/v1/state`, {
        method: 'PATCH',
        headers: this.headers(),
        body: {
          agent_version: BOSUN_VERSION,
          apps,
          ...(unikChanged ? { unik } : {}),
          ...(dependentChanged ? { dependent_devices: dependent.patch } : {}),
        } satisfies StateReport,
        timeoutMs: 30_000,
        signal: this.abort.signal,
      });
      if (answer.status >= 300) throw new Error(describe(answer));
      this.reported = sent;
      if (unikChanged) this.reportedUnik = unikJson;
      dependent?.ack();
      this.reportFailures = 0;
    } catch (err) {
      if (this.stopped) return;
      const delay = backoffMs(this.reportFailures++, 2000);
      this.d.log.warn(`State report not sent: ${(err as Error).message}; retrying in ${Math.ceil(delay / 1000)} s`);
      this.lastReportAt = Date.now() + delay - (this.d.reportEveryMs ?? 2000);
      this.scheduleReport();
    }
  }
}

/** An answer that is not the expected one, for the agent's log: its status and the server's `detail`. */
export function describe(a: HttpAnswer): string {
  let detail = a.body.slice(0, 200);
  try {
    detail = (JSON.parse(a.body) as { detail?: string }).detail ?? detail;
  } catch {
    /* not JSON */
  }
  return `the server answered ${a.status}${detail ? `: ${detail}` : ''}`;
}

/** Waits `ms`, or less when `signal` aborts. */
export const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
