// The agent: wires config, store, engine, locks, puller and reconciler, and owns the target.
import fs from 'node:fs';
import fsp from './fsAsync.js';
import path from 'node:path';
import type Docker from 'dockerode';
import { DEFAULT_SETTLE_MS } from '../shared/deployments.js';
import { ValidationError } from '../shared/errors.js';
import { DeviceActions } from './actions/deviceActions.js';
import { LockOverride } from './actions/lockOverride.js';
import { ApiKeys, type KeyScope } from './api/apiKeys.js';
import type { CloudLink } from './cloud/cloudLink.js';
import type { LogShipper } from './logs/logShipper.js';
import type { SettleWatch } from './state/settleWatch.js';
import type { Telemetry } from './telemetry/telemetry.js';
import { telemetrySettings, type TelemetrySettings } from './telemetry/telemetrySettings.js';
import { deviceApiLoader, lazyApi, startApiServer, type ApiServer } from './api/apiServer.js';
import type { TargetState } from '../shared/targetState.js';
import { validateTargetState } from '../shared/validateTarget.js';
import { writeFileAtomic } from './config/atomicFile.js';
import { newUuid, readConfigJson, writeConfigJson, type ConfigJson } from './config/configJson.js';
import { engineErrorMessage, withDeadline } from './engine/deadline.js';
import { createDocker } from './engine/docker.js';
import { SUPERVISED_FILTER } from './engine/labels.js';
import { readCurrentState } from './engine/readState.js';
import { EventLog } from './eventLog.js';
import { healthProblems } from './health.js';
import { createHost, type Host, type HostOptions } from './host/host.js';
import { ImagePuller } from './images/imagePuller.js';
import { UpdateLocks } from './locks/updateLock.js';
import { buildDesiredState, type DesiredState } from './reconciler/desiredState.js';
import { Executor } from './reconciler/executor.js';
import { Reconciler } from './reconciler/reconciler.js';
import type { DeviceIdentity } from './reconciler/serviceEnvironment.js';
import type { ServiceSpec } from './reconciler/serviceSpec.js';
import { reportCurrentState, type AppReport } from './state/currentState.js';
import type { DeviceFacts } from './state/deviceReports.js';
import { openAgentDb, type MigrationProcess } from './store/database.js';
import { AgentStore } from './store/agentStore.js';
import { BALENA_API_VERSION, BOSUN_VERSION } from './version.js';

export interface AgentOptions {
  dataDir: string;
  /** balena-format config.json; default `<dataDir>/config.json` */
  configPath?: string;
  dockerHost?: string;
  /** local mode: a target-state file, applied at start and whenever it changes */
  targetFile?: string;
  /** balena preload file; becomes the target on first boot when no target exists */
  appsJsonPath?: string;
  /** periodic re-check while converged */
  intervalMs?: number;
  /**
   * Only for agents sharing one engine (tests, benchmarks, simulated fleets): the agent then owns
   * only what it created under this scope. A device's agent runs without one.
   */
  engineScope?: string;
  /** pulls fail (for that service) when the engine's disk would drop below this; default 100 MiB */
  minFreeDiskBytes?: number;
  /** device API port: default config.json `listenPort`, else 48484; 0 = any free port; false = no API */
  apiPort?: number | false;
  /** where the device API listens; default all interfaces (containers reach it at their network's gateway) */
  apiAddress?: string;
  /** the host backend; default a sandbox under `<dataDir>/host` (main.ts uses the real one on devices) */
  host?: HostOptions;
  /** local mode (balena CLI development), also on through config.json or SUPERVISOR_LOCAL_MODE */
  localMode?: boolean;
  /** in local mode only: expose the engine's socket on this TCP address (`127.0.0.1:2375`) for the balena CLI */
  engineTcp?: string;
  /** AutoPi's local command API (AutoPi's port is 9000): its port, 0 = any free one; absent = off */
  commandApiPort?: number;
  /** where it listens (and the one Host it answers besides loopback); default 127.0.0.1 */
  commandApiAddress?: string;
  /** a release is deployed once its services ran this long without a restart (ms); default 30 s (src/shared/deployments.ts) */
  settleMs?: number;
  /** sample the device's own metrics as telemetry this often (ms; 0 = off); default config.json `metricsInterval` */
  metricsIntervalMs?: number;
  log?: EventLog;
  /** run pending database migrations in this child process (main.ts: the agent itself) instead of in process */
  migrationProcess?: MigrationProcess;
}

const LOCAL_TARGET_KEY = 'local_target';

const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'aarch64', arm: 'armv7hf', ia32: 'i386' };

export class Agent {
  readonly log: EventLog;
  readonly docker: Docker;
  config: ConfigJson = {};
  store!: AgentStore;
  locks!: UpdateLocks;
  puller!: ImagePuller;
  executor!: Executor;
  reconciler!: Reconciler;
  apiKeys!: ApiKeys;
  actions!: DeviceActions;
  host!: Host;
  device!: DeviceIdentity;
  /** the target the device applies: the local one in local mode (once pushed), else the managed one */
  private target: TargetState | undefined;
  /** the target from the control plane, a target file or the preload */
  private managed: TargetState | undefined;
  private local: TargetState | undefined;
  private wasLocal = false;
  private desired: DesiredState | undefined;
  /** `appId/service` stopped through the API; held until started, or until the agent restarts */
  private readonly heldStopped = new Set<string>();
  /** `force` of an update or a local target: the locks it overrides, until an apply started after it converges */
  private readonly lockOverride = new LockOverride();
  private api: ApiServer | undefined;
  private commandApi: ApiServer | undefined;
  private engineTcp: { port: number; close(): Promise<void> } | undefined;
  private cloud: CloudLink | undefined;
  /** cloud mode: ships the device's logs to the control plane */
  private logShipper: LogShipper | undefined;
  private telemetrySettings!: TelemetrySettings;
  /** telemetry's disk buffer, upload and device metrics, loaded on first use */
  private telemetryLoad: Promise<Telemetry> | undefined;
  /** watches target releases until they settle; loaded with the first target that has apps */
  private settleWatch: Promise<SettleWatch> | undefined;
  /** the device API (fastify), loaded on first use */
  private readonly deviceApi = deviceApiLoader(this);
  private stopWatching: (() => void) | undefined;
  private events: NodeJS.ReadableStream | undefined;
  private stopped = false;
  private readonly lockRoot: string;

  constructor(readonly opts: AgentOptions) {
    opts.dataDir = path.resolve(opts.dataDir);
    this.log = opts.log ?? new EventLog();
    this.docker = createDocker(opts.dockerHost);
    this.lockRoot = path.join(opts.dataDir, 'locks');
  }

  get configPath(): string {
    return this.opts.configPath ?? path.join(this.opts.dataDir, 'config.json');
  }

  async start(): Promise<void> {
    const { dataDir } = this.opts;
    await fsp.mkdir(dataDir, { recursive: true });
    this.config = await readConfigJson(this.configPath);
    this.telemetrySettings = telemetrySettings(this.config, this.configPath, this.opts.metricsIntervalMs);
    if (!this.config.uuid) {
      this.config.uuid = await newUuid();
      await writeConfigJson(this.configPath, this.config);
    }
    this.store = await AgentStore.open(await openAgentDb(path.join(dataDir, 'agent.sqlite'), this.opts.migrationProcess));
    this.log.attach(this.store);
    this.locks = new UpdateLocks(this.lockRoot);
    const stale = await this.locks.removeStaleAgentLocks();
    if (stale) this.log.info(`Removed ${stale} update lock file(s) left by a previous run of the agent`);
    this.puller = new ImagePuller(this.docker, {
      dataRoot: await this.engineDataRoot(),
      ...(this.opts.minFreeDiskBytes !== undefined ? { minFreeBytes: this.opts.minFreeDiskBytes } : {}),
      onSettled: (ref) => this.reconciler.trigger(`pull of ${ref} settled`),
    });
    this.executor = new Executor({
      docker: this.docker,
      scope: this.opts.engineScope,
      puller: this.puller,
      locks: this.locks,
      store: this.store,
      log: this.log,
      lockOverride: (appId) => this.lockOverride.covers(appId) || ['1', 'true'].includes(this.target?.config?.SUPERVISOR_OVERRIDE_LOCK ?? ''),
    });
    this.reconciler = new Reconciler({
      docker: this.docker,
      scope: this.opts.engineScope,
      store: this.store,
      locks: this.locks,
      puller: this.puller,
      executor: this.executor,
      log: this.log,
      desired: () => this.desired,
      intervalMs: this.opts.intervalMs ?? 60_000,
      onApplied: (outcome) => {
        if (outcome === 'converged') this.lockOverride.converged(this.reconciler.status.lastApplyStart);
        this.cloud?.scheduleReport();
      },
    });
    this.device = {
      uuid: this.config.uuid,
      type: this.config.deviceType ?? `generic-${ARCH[process.arch] ?? process.arch}`,
      arch: this.config.deviceArch ?? ARCH[process.arch] ?? process.arch,
      name: this.config.initialDeviceName ?? this.config.uuid.slice(0, 7),
      osVersion: await osVersion(),
    };
    this.host = createHost(this.opts.host ?? { kind: 'sandbox', root: path.join(dataDir, 'host') }, this.device.uuid.slice(0, 7), this.log);
    this.apiKeys = await ApiKeys.load(this.store);
    this.actions = new DeviceActions({
      docker: this.docker,
      scope: this.opts.engineScope,
      reconciler: this.reconciler,
      locks: this.locks,
      store: this.store,
      log: this.log,
      host: this.host,
      desired: () => this.desired,
      holdStopped: (appId, service, hold) => this.holdStopped(appId, service, hold),
    });
    const port = this.opts.apiPort ?? this.config.listenPort ?? 48484;
    if (port !== false) {
      this.api = await startApiServer(this, 'Device API', this.deviceApi, port, this.opts.apiAddress ?? '0.0.0.0');
      this.log.info(`Device API listening on ${this.opts.apiAddress ?? '0.0.0.0'}:${this.api.port}`);
    }
    if (this.opts.commandApiPort !== undefined) await this.startCommandApi(this.opts.commandApiPort, this.opts.commandApiAddress ?? '127.0.0.1');
    await this.loadInitialTarget();
    const endpoint = this.cloudEndpoint();
    if (endpoint) await this.startCloud(endpoint);
    // metrics: recorded from the start; cloud mode: what an earlier run buffered goes up now (else
    // telemetry loads with the first point an app posts)
    const buffered = endpoint ? !!(await this.store.db.selectFrom('telemetry_point').select('id').limit(1).executeTakeFirst()) : false;
    if (buffered || this.telemetrySettings.metricsIntervalMs) await this.telemetry().catch((err: Error) => this.log.error(`Telemetry not started: ${err.message}`));
    this.reconciler.start();
    this.watchEngineEvents();
    this.log.info(`Agent started (device ${this.device.uuid}, data in ${dataDir})`);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stopWatching?.();
    (this.events as { destroy?: () => void } | undefined)?.destroy?.();
    await this.cloud?.stop();
    await this.logShipper?.stop();
    await this.api?.close();
    await (await this.telemetryLoad?.catch(() => undefined))?.stop();
    await this.commandApi?.close();
    await this.engineTcp?.close();
    await this.reconciler?.stop();
    (await this.settleWatch?.catch(() => undefined))?.stop();
    await this.store?.db.destroy();
  }

  getTarget(): TargetState | undefined {
    return this.target;
  }

  /**
   * Validates, persists and applies a target; an invalid one is rejected whole and changes nothing.
   * A `local` target (balena CLI) is accepted only in local mode; a managed target that arrives in
   * local mode is kept and applied when local mode ends. `force` (balena's, of a local target)
   * overrides every app's update lock until the device reaches this target.
   */
  async setTarget(input: unknown, source: string, force = false): Promise<TargetState> {
    const target = validateTargetState(input);
    if (source === 'local') {
      if (!this.localMode()) throw new ValidationError('', 'Target state can only set when device is in local mode', 'request');
      await this.store.updateConfig({ [LOCAL_TARGET_KEY]: JSON.stringify(target) });
      this.local = target;
    } else {
      await this.store.setTarget(target, source);
      this.managed = target;
      if (this.localMode() && this.wasLocal) this.log.info(`Target from ${source} kept: the device is in local mode`);
    }
    await this.activate();
    if (force) this.overrideLocks({ kind: 'device' });
    this.reconciler.trigger(`new target from ${source}`);
    return target;
  }

  /** Local mode: the device follows targets pushed with the balena CLI instead of its managed target. */
  localMode(): boolean {
    return this.opts.localMode === true || this.config.localMode === true || ['1', 'true'].includes(this.managed?.config?.SUPERVISOR_LOCAL_MODE ?? '');
  }

  /** The API port the agent listens on (the bound one when asked for any free port). */
  apiPort(): number | undefined {
    return this.api?.port;
  }

  /** The local command API's port, when it listens. */
  commandApiPort(): number | undefined {
    return this.commandApi?.port;
  }

  /** Telemetry (its disk buffer, the upload in cloud mode, the device metrics), loaded on first use. */
  telemetry(): Promise<Telemetry> {
    if (!this.telemetryLoad) {
      const endpoint = this.cloudEndpoint();
      const uplink = endpoint ? { endpoint, deviceKey: () => this.config.deviceApiKey } : undefined;
      this.telemetryLoad = import('./telemetry/telemetry.js').then(({ Telemetry }) =>
        Telemetry.start({ db: this.store.db, log: this.log, settings: this.telemetrySettings, dataDir: this.opts.dataDir, ...(uplink ? { uplink } : {}) }),
      );
      this.telemetryLoad.catch(() => (this.telemetryLoad = undefined));
    }
    return this.telemetryLoad;
  }

  /** Cloud mode: the control plane's address (config.json `apiEndpoint`), unless a target file is followed. */
  private cloudEndpoint(): string | undefined {
    return this.config.apiEndpoint && !this.opts.targetFile ? this.config.apiEndpoint.replace(/\/+$/, '') : undefined;
  }

  deviceName(): string {
    return this.target?.name ?? this.device.name;
  }

  deviceFacts(): DeviceFacts {
    return {
      apiPort: this.api?.port ?? 0,
      osVersion: this.device.osVersion,
      supervisorVersion: BALENA_API_VERSION,
      bosunVersion: BOSUN_VERSION,
      applying: this.reconciler.status.applying,
    };
  }

  desiredService(appId: number, service: string): ServiceSpec | undefined {
    return this.desired?.apps.get(appId)?.services.get(service);
  }

  desiredServiceNames(appId: number): string[] {
    return [...(this.desired?.apps.get(appId)?.services.keys() ?? [])];
  }

  /** `POST /v1/update`: apply now; `force` overrides the locks of the apps `scope` covers until the device converges. */
  requestUpdate(force: boolean, scope: KeyScope = { kind: 'device' }): void {
    if (force) this.overrideLocks(scope);
    this.reconciler.trigger(force ? 'forced update requested' : 'update requested');
  }

  /** Locks are overridden from now on (a lock's retry backoff too: the next apply takes them). */
  private overrideLocks(scope: KeyScope): void {
    this.lockOverride.grant(scope);
    if (scope.kind === 'device') this.executor.lockBackoff.clear();
    else this.executor.lockBackoff.delete(scope.appId);
  }

  /** The caller's key is replaced at once; the app's containers get the new one at the next apply. */
  async regenerateApiKey(scope: KeyScope): Promise<string> {
    const key = await this.apiKeys.regenerate(scope);
    this.log.info(scope.kind === 'app' ? `API key of app ${scope.appId} regenerated` : 'Device API key regenerated');
    await this.activate();
    this.reconciler.trigger('API key regenerated');
    return key;
  }

  /** Why the agent is not healthy (empty when it is); see health.ts. */
  healthProblems(): Promise<string[]> {
    return healthProblems(this.docker, this.reconciler.status, this.opts.intervalMs ?? 60_000, this.target !== undefined);
  }

  private holdStopped(appId: number, service: string, hold: boolean): void {
    const key = `${appId}/${service}`;
    if (hold === this.heldStopped.has(key)) return;
    if (hold) this.heldStopped.add(key);
    else this.heldStopped.delete(key);
    this.rebuildDesired();
  }

  /** Waits until the engine matches the target (or only waits remain); for tests and tools. */
  async applyNow(): Promise<'converged' | 'waiting'> {
    const asked = Date.now();
    const outcome = await this.reconciler.applyOnce();
    if (outcome === 'converged') this.lockOverride.converged(asked);
    return outcome;
  }

  async currentState(): Promise<Record<string, AppReport>> {
    const current = await readCurrentState(this.docker, this.opts.engineScope);
    const desired = this.desired;
    const applied = this.store.appliedReleases();
    const planned = await this.reconciler.pendingSteps(current);
    const downloading = (appId: number) => [...(desired?.apps.get(appId)?.services.keys() ?? [])].some((s) => this.puller.progress(appId, s) !== null);
    const settle = desired?.apps.size ? await (await this.settleWatcher()).check(current, desired, applied, downloading) : undefined;
    return reportCurrentState(current, desired, {
      phase: (a, s) => this.executor.phases.get(`${a}/${s}`),
      progress: (a, s) => this.puller.progress(a, s),
      error: (a, s) => this.executor.errors.get(a, s),
      applied,
      planned,
      settle: (a) => settle?.get(a),
    });
  }

  private settleWatcher(): Promise<SettleWatch> {
    this.settleWatch ??= import('./state/settleWatch.js').then(
      ({ SettleWatch }) => new SettleWatch({ docker: this.docker, settleMs: this.opts.settleMs ?? DEFAULT_SETTLE_MS, onRecheck: () => this.cloud?.scheduleReport() }),
    );
    return this.settleWatch;
  }

  /** Chooses the target to apply (local or managed), makes sure its apps have API keys, builds the desired state. */
  private async activate(): Promise<void> {
    const local = this.localMode();
    if (local && !this.wasLocal) {
      this.log.warn('LOCAL MODE: the device follows targets pushed with the balena CLI; the device API needs no key');
      await this.exposeEngine();
    } else if (!local && this.wasLocal) {
      await this.leaveLocalMode();
    }
    this.wasLocal = local;
    this.target = local ? (this.local ?? this.managed) : this.managed;
    if (this.target) await this.apiKeys.ensureApps(Object.keys(this.target.apps).map(Number));
    this.rebuildDesired();
  }

  /**
   * A device API call relayed by the control plane (its supervisor proxy): the same handlers as
   * local callers, with the device's own key.
   */
  async deviceApiCall(call: { method: string; path: string; body?: unknown }): Promise<{ status: number; body: string; headers: Record<string, string> }> {
    const app = await this.deviceApi();
    const res = await app.inject({
      method: call.method as 'GET',
      url: call.path,
      headers: { authorization: `Bearer ${this.apiKeys.deviceKey()}`, ...(call.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(call.body !== undefined ? { payload: JSON.stringify(call.body) } : {}),
    });
    const type = res.headers['content-type'];
    return { status: res.statusCode, body: res.body, headers: type ? { 'content-type': String(type) } : {} };
  }

  /** Cloud mode: follow the control plane at `endpoint` (registering first if this device is new). */
  private async startCloud(endpoint: string): Promise<void> {
    const [{ CloudLink }, { registerDevice }] = await Promise.all([import('./cloud/cloudLink.js'), import('./cloud/registration.js')]);
    this.cloud = new CloudLink({
      endpoint,
      deviceKey: () => this.config.deviceApiKey,
      register: async () => {
        if (!this.config.apiKey) throw new Error('config.json has an apiEndpoint but neither a deviceApiKey nor a provisioning apiKey');
        const { deviceId, deviceKey } = await registerDevice(endpoint, this.config.apiKey, { uuid: this.device.uuid, type: this.device.type, name: this.device.name });
        const { apiKey: _provisioning, ...rest } = this.config;
        this.config = { ...rest, deviceApiKey: deviceKey, deviceId, registered_at: Date.now() };
        await writeConfigJson(this.configPath, this.config);
        this.log.info(`Registered with ${endpoint} as device ${deviceId}`);
      },
      setTarget: async (target) => {
        await this.setTarget(target, 'cloud');
      },
      currentState: () => this.currentState(),
      deviceApiCall: (call) => this.deviceApiCall(call),
      executeCommand: async (payload) => (await import('./commands/registry.js')).commandResult(this, payload),
      log: this.log,
      ...(this.config.appUpdatePollInterval ? { waitS: Math.min(300, Math.round(this.config.appUpdatePollInterval / 1000)) } : {}),
    });
    this.cloud.start();
    await this.startLogShipper(endpoint);
    this.log.info(`Following the control plane at ${endpoint}`);
  }

  /** Cloud mode: what the services print and the agent's own messages go to the control plane too (loaded only then). */
  private async startLogShipper(endpoint: string): Promise<void> {
    const { LogShipper } = await import('./logs/logShipper.js');
    this.logShipper = await LogShipper.start({
      endpoint,
      deviceKey: () => this.config.deviceApiKey,
      docker: this.docker,
      scope: this.opts.engineScope,
      log: this.log,
      db: this.store.db,
    });
  }

  /**
   * AutoPi's local command API: the port is bound now, the API (fastify, the commands) loaded on
   * its first request. A port taken by something else leaves it off; the agent runs on.
   */
  private async startCommandApi(port: number, address: string): Promise<void> {
    const load = lazyApi(async () => (await import('./commands/localCommandApi.js')).buildLocalCommandApi(this, address));
    try {
      this.commandApi = await startApiServer(this, 'Local command API', load, port, address);
      this.log.info(`Local command API listening on ${address}:${this.commandApi.port}`);
    } catch (err) {
      this.log.error(`Local command API not started on ${address}:${port}: ${(err as Error).message}`);
    }
  }

  /** Development aid of local mode: the balena CLI builds on the device's engine over TCP 2375. */
  private async exposeEngine(): Promise<void> {
    if (!this.opts.engineTcp || this.engineTcp) return;
    const socketPath = (this.docker.modem as { socketPath?: string }).socketPath;
    if (!socketPath) return this.log.warn('--engine-tcp needs an engine on a unix socket');
    const [host, port] = this.opts.engineTcp.includes(':') ? this.opts.engineTcp.split(/:(?=\d+$)/) : ['127.0.0.1', this.opts.engineTcp];
    const { startEngineTcpProxy } = await import('./dev/engineTcpProxy.js');
    this.engineTcp = await startEngineTcpProxy({ socketPath, host: host!, port: Number(port) });
    this.log.warn(`LOCAL MODE: the Docker Engine is exposed on ${host}:${this.engineTcp.port}, without authentication`);
  }

  /** Back to the managed target: what only local mode created goes (the next apply removes its apps, here its volumes). */
  private async leaveLocalMode(): Promise<void> {
    this.log.warn('Local mode ended: back to the managed target');
    await this.engineTcp?.close();
    this.engineTcp = undefined;
    const localOnly = Object.keys(this.local?.apps ?? {}).filter((id) => !this.managed?.apps[id]).map(Number);
    this.local = undefined;
    await this.store.updateConfig({}, [LOCAL_TARGET_KEY]);
    if (localOnly.length) {
      this.target = this.managed;
      this.rebuildDesired();
      void this.reconciler.applyOnce().then(() => this.actions.removeVolumes((id) => localOnly.includes(id))).catch((err: Error) => this.log.warn(`Cleanup after local mode: ${err.message}`));
    }
  }

  private rebuildDesired(): void {
    const target = this.target;
    if (!target) return;
    const device = { ...this.device, name: target.name ?? this.device.name };
    const api = this.api ? { port: this.api.port, keyForApp: (id: number) => this.apiKeys.keyForApp(id) } : undefined;
    this.desired = buildDesiredState(target, {
      device,
      lockRoot: this.lockRoot,
      heldStopped: this.heldStopped,
      ...(api ? { api } : {}),
      ...(this.opts.engineScope ? { scope: this.opts.engineScope } : {}),
    });
  }

  private async loadInitialTarget(): Promise<void> {
    const stored = await this.store.getTarget();
    if (stored) this.managed = validateTargetState(stored.target);
    const localJson = (await this.store.configValues()).get(LOCAL_TARGET_KEY);
    if (localJson) this.local = validateTargetState(JSON.parse(localJson));
    // A device that starts in local mode says so; one whose local mode ended while it was down cleans up.
    this.wasLocal = this.local !== undefined && !this.localMode();
    await this.activate();
    if (this.opts.targetFile) {
      await this.applyTargetFile(this.opts.targetFile);
      this.stopWatching = watchFile(this.opts.targetFile, () => void this.applyTargetFile(this.opts.targetFile!));
    } else if (!stored) {
      await this.preload();
    }
    if (!this.target) this.log.info('No target state yet: nothing is applied until one arrives');
  }

  private async applyTargetFile(file: string): Promise<void> {
    try {
      const json = JSON.parse(await fsp.readFile(file, 'utf8')) as unknown;
      if (JSON.stringify(json) === JSON.stringify(this.managed)) return;
      await this.setTarget(json, 'file');
      this.log.info(`Target state loaded from ${file}`);
    } catch (err) {
      this.log.error(`Target state in ${file} rejected, keeping the current one: ${(err as Error).message}`);
    }
  }

  /** balena preload: apps.json becomes the first target, then is renamed so it is used once. */
  private async preload(): Promise<void> {
    const file = this.opts.appsJsonPath ?? path.join(this.opts.dataDir, 'apps.json');
    let text: string;
    try {
      text = await fsp.readFile(file, 'utf8');
    } catch {
      return;
    }
    try {
      const json = JSON.parse(text) as { apps?: unknown };
      const dropped: string[] = [];
      const { fromBalenaApps } = await import('../shared/balenaTarget.js');
      const target = isBosunTarget(json) ? json : fromBalenaApps(json as Parameters<typeof fromBalenaApps>[0], dropped);
      if (dropped.length) this.log.warn(`Preload: unsupported compose keys ignored: ${dropped.join(', ')}`);
      await this.setTarget(target, 'preload');
      await fsp.rename(file, `${file}.preloaded`);
      await writeFileAtomic(file, '{}\n');
      this.log.info(`Preloaded apps from ${file}`);
    } catch (err) {
      const msg = err instanceof ValidationError ? err.message : `not usable (${(err as Error).message})`;
      this.log.error(`Preload file ${file} rejected: ${msg}`);
    }
  }

  private async engineDataRoot(): Promise<string | undefined> {
    try {
      // @types/dockerode lacks info()'s options; dockerode takes an abortSignal there as everywhere.
      const info = (await withDeadline((d) => (this.docker.info as (o: object) => Promise<unknown>).call(this.docker, d), 10_000)) as { DockerRootDir?: string };
      return info.DockerRootDir;
    } catch (err) {
      this.log.warn(`Engine not reachable yet: ${engineErrorMessage(err)}`);
      return undefined;
    }
  }

  /** Engine events wake the loop at once: a container that died or was removed by hand. */
  private watchEngineEvents(): void {
    if (this.stopped) return;
    const retry = () => {
      this.events = undefined;
      if (!this.stopped) setTimeout(() => this.watchEngineEvents(), 1000).unref();
    };
    this.docker.getEvents({ filters: { type: ['container'], event: ['die', 'destroy'], ...SUPERVISED_FILTER } }).then(
      (stream) => {
        if (this.stopped) {
          (stream as unknown as { destroy(): void }).destroy();
          return;
        }
        this.events = stream;
        stream.on('data', () => this.reconciler.trigger('engine event'));
        stream.on('error', retry);
        stream.on('end', retry);
      },
      retry,
    );
  }
}

function isBosunTarget(json: { apps?: unknown }): json is TargetState {
  const apps = json.apps as Record<string, { release?: unknown }> | undefined;
  return !!apps && Object.values(apps).every((a) => typeof a === 'object' && a !== null && 'release' in a);
}

function watchFile(file: string, onChange: () => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  const listener = () => {
    clearTimeout(timer);
    timer = setTimeout(onChange, 200);
  };
  fs.watchFile(file, { interval: 1000 }, listener);
  return () => {
    clearTimeout(timer);
    fs.unwatchFile(file, listener);
  };
}

async function osVersion(): Promise<string | undefined> {
  const text = await fsp.readFile('/etc/os-release', 'utf8').catch(() => '');
  return text.match(/^PRETTY_NAME="?([^"\n]*)"?/m)?.[1];
}
