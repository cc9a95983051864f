// The agent: the coordinator. It wires config, store, engine, locks, puller and reconciler (startup.ts),
// owns the target (from a file, the preload, the cloud: targets/; or pushed in local mode: localMode.ts)
// and is what the device API and the commands ask.
import fsp from '../shared/fsAsync.js';
import path from 'node:path';
import type Docker from 'dockerode';
import { ValidationError } from '../shared/errors.js';
import { DeviceActions } from './actions/deviceActions.js';
import { LockOverride } from './actions/lockOverride.js';
import type { AgentOptions } from './agentOptions.js';
import { ApiKeys, type KeyScope } from './api/apiKeys.js';
import type { CloudLink } from './cloud/cloudLink.js';
import type { Dependents } from './dependent/dependents.js';
import { DependentsLoader } from './dependent/dependentsLoader.js';
import type { LogShipper } from './logs/logShipper.js';
import type { Telemetry } from './telemetry/telemetry.js';
import { telemetrySettings, type TelemetrySettings } from './telemetry/telemetrySettings.js';
import { deviceApiLoader, relayCall, startApiServer, type ApiServer, type RelayedAnswer, type RelayedCall } from './api/apiServer.js';
import type { TargetState } from '../shared/targetState.js';
import { validateTargetState } from '../shared/validateTarget.js';
import type { ConfigJson } from './config/configJson.js';
import { createDocker } from './engine/docker.js';
import { EngineEvents } from './engine/engineEvents.js';
import { EventLog } from './eventLog.js';
import { healthProblems } from './health.js';
import { LocalMode } from './localMode.js';
import { buildController } from './controller.js';
import { deviceIdentity, loadConfig, openLocks, startCommandApi, startUnik } from './startup.js';
import type { Unik } from './unik/unikServer.js';
import type { UnikReport } from '../shared/deviceLink.js';
import { followTargetFile } from './targets/fileTarget.js';
import { preload } from './targets/preload.js';
import { createHost, type Host } from './host/host.js';
import type { ImagePuller } from './images/imagePuller.js';
import type { UpdateLocks } from './locks/updateLock.js';
import { buildDesiredState, type DesiredState } from './reconciler/desiredState.js';
import type { Executor } from './reconciler/executor.js';
import type { Reconciler } from './reconciler/reconciler.js';
import type { DeviceIdentity } from './reconciler/serviceEnvironment.js';
import type { ServiceSpec } from './reconciler/serviceSpec.js';
import type { AppReport } from './state/currentState.js';
import type { StateReport } from './state/stateReport.js';
import type { DeviceFacts } from './state/deviceReports.js';
import { openAgentDb } from './store/database.js';
import { AgentStore } from './store/agentStore.js';
import { BALENA_API_VERSION, BOSUN_VERSION } from '../shared/version.js';

export type { AgentOptions } from './agentOptions.js';

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
  private readonly local: LocalMode;
  private desired: DesiredState | undefined;
  /** `appId/service` stopped through the API; held until started, or until the agent restarts */
  private readonly heldStopped = new Set<string>();
  /** `force` of an update or a local target: the locks it overrides, until an apply started after it converges */
  private readonly lockOverride = new LockOverride();
  private api: ApiServer | undefined;
  private commandApi: ApiServer | undefined;
  /** the UniK API and its providers, when on */
  private unik: Unik | undefined;
  private cloud: CloudLink | undefined;
  /** cloud mode: ships the device's logs to the control plane */
  private logShipper: LogShipper | undefined;
  private telemetrySettings!: TelemetrySettings;
  /** telemetry's disk buffer, upload and device metrics, loaded on first use */
  private telemetryLoad: Promise<Telemetry> | undefined;
  /** a gateway's dependent apps and devices, loaded when there are any */
  private readonly gateway: DependentsLoader;
  /** the current state as reported (device API, control plane) */
  private stateReport: StateReport | undefined;
  /** the device API (fastify), loaded on first use */
  private readonly deviceApi = deviceApiLoader(this);
  private stopWatching: (() => void) | undefined;
  private readonly events: EngineEvents;
  private stopped = false;
  private readonly lockRoot: string;

  constructor(readonly opts: AgentOptions) {
    opts.dataDir = path.resolve(opts.dataDir);
    this.log = opts.log ?? new EventLog();
    this.docker = createDocker(opts.dockerHost);
    this.lockRoot = path.join(opts.dataDir, 'locks');
    this.local = new LocalMode({ docker: this.docker, log: this.log, engineTcp: opts.engineTcp });
    this.events = new EngineEvents(this.docker, opts.engineScope, () => this.reconciler.trigger('engine event'));
    this.gateway = new DependentsLoader(this, {
      endpoint: () => this.cloudEndpoint(),
      shipLog: async (line) => (await this.logShipper?.ship(line)) ?? false,
      reportChanged: () => this.cloud?.scheduleReport(),
    });
  }

  get configPath(): string {
    return this.opts.configPath ?? path.join(this.opts.dataDir, 'config.json');
  }

  async start(): Promise<void> {
    const { dataDir } = this.opts;
    await fsp.mkdir(dataDir, { recursive: true });
    const config = await loadConfig(this.configPath);
    this.config = config;
    this.telemetrySettings = telemetrySettings(config, this.configPath, this.opts.metricsIntervalMs);
    this.store = await AgentStore.open(await openAgentDb(path.join(dataDir, 'agent.sqlite'), this.opts.migrationProcess));
    this.log.attach(this.store);
    this.locks = await openLocks(this.lockRoot, this.log);
    ({
      puller: this.puller,
      executor: this.executor,
      reconciler: this.reconciler,
      stateReport: this.stateReport,
    } = await buildController({
      docker: this.docker,
      opts: this.opts,
      store: this.store,
      locks: this.locks,
      log: this.log,
      desired: () => this.desired,
      lockOverride: (appId) => this.lockOverride.covers(appId) || ['1', 'true'].includes(this.target?.config?.SUPERVISOR_OVERRIDE_LOCK ?? ''),
      keepImages: () => this.gateway.loaded?.keepImages(),
      onApplied: (outcome, reconciler) => {
        if (outcome === 'converged') this.lockOverride.converged(reconciler.status.lastApplyStart);
        this.cloud?.scheduleReport();
      },
      onRecheck: () => this.cloud?.scheduleReport(),
      engineGeneration: () => this.events.generation,
    }));
    this.device = await deviceIdentity(config);
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
    if (this.opts.commandApiPort !== undefined)
      this.commandApi = await startCommandApi(this, this.opts.commandApiPort, this.opts.commandApiAddress ?? '127.0.0.1');
    this.unik = await startUnik(this, () => this.cloud?.scheduleReport());
    await this.loadInitialTarget();
    const endpoint = this.cloudEndpoint();
    if (endpoint) await this.startCloud(endpoint);
    // metrics: recorded from the start; cloud mode: what an earlier run buffered goes up now (else
    // telemetry loads with the first point an app posts)
    const buffered = endpoint ? !!(await this.store.db.selectFrom('telemetry_point').select('id').limit(1).executeTakeFirst()) : false;
    if (buffered || this.telemetrySettings.metricsIntervalMs)
      await this.telemetry().catch((err: Error) => this.log.error(`Telemetry not started: ${err.message}`));
    await this.gateway.started(this.store.db);
    this.reconciler.start();
    this.events.watch();
    this.log.info(`Agent started (device ${this.device.uuid}, data in ${dataDir})`);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stopWatching?.();
    this.events.stop();
    await this.cloud?.stop();
    await this.logShipper?.stop();
    await this.api?.close();
    await (await this.telemetryLoad?.catch(() => undefined))?.stop();
    await this.gateway.stop();
    await this.commandApi?.close();
    await this.unik?.close();
    await this.local.closeEngine();
    await this.reconciler?.stop();
    await this.stateReport?.stop();
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
      await this.local.save(this.store, target);
    } else {
      await this.store.setTarget(target, source);
      this.managed = target;
      if (this.localMode() && this.local.wasActive) this.log.info(`Target from ${source} kept: the device is in local mode`);
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

  /** The UniK API's port, when it listens. */
  unikPort(): number | undefined {
    return this.unik?.port;
  }

  /** The UniK images and instances for the state report; undefined when the UniK API is off. */
  async unikReport(): Promise<UnikReport | undefined> {
    return this.unik?.report();
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

  /** The gateway's dependent apps and devices (dependent/dependents.ts), loaded on first use. */
  dependents(): Promise<Dependents> {
    return this.gateway.get();
  }

  /** What changed on the dependent devices for the next state report (none before they are loaded). */
  dependentsReport(): ReturnType<Dependents['reportPatch']> | undefined {
    return this.gateway.loaded?.reportPatch();
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
    this.executor.overrideLocks(scope.kind === 'app' ? scope.appId : undefined);
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

  /** Per app and service: status, release, progress, errors, waits, settle (state/stateReport.ts: `sinceLastApply`). */
  currentState(sinceLastApply = false): Promise<Record<string, AppReport>> {
    return this.stateReport!.read(sinceLastApply);
  }

  /** Chooses the target to apply (local or managed), makes sure its apps have API keys, builds the desired state. */
  private async activate(): Promise<void> {
    const local = this.localMode();
    const localOnly = await this.local.switch(local, this.store, this.managed);
    this.target = local ? (this.local.target ?? this.managed) : this.managed;
    if (this.target) await this.apiKeys.ensureApps(Object.keys(this.target.apps).map(Number));
    this.rebuildDesired();
    await this.gateway.targetChanged(this.target);
    // what only local mode created goes: the next apply removes its apps, then here their volumes
    if (localOnly.length) {
      void this.reconciler
        .applyOnce()
        .then(() => this.actions.removeVolumes((id) => localOnly.includes(id)))
        .catch((err: Error) => this.log.warn(`Cleanup after local mode: ${err.message}`));
    }
  }

  /** A device API call relayed by the control plane (its supervisor proxy), with the device's own key. */
  async deviceApiCall(call: RelayedCall): Promise<RelayedAnswer> {
    return relayCall(await this.deviceApi(), this.apiKeys.deviceKey(), call);
  }

  /** Cloud mode: follow the control plane at `endpoint` (registering first if this device is new). */
  private async startCloud(endpoint: string): Promise<void> {
    const cloudMode = await import('./targets/cloud.js');
    this.cloud = cloudMode.startCloudLink(this, endpoint);
    this.logShipper = await cloudMode.startLogShipper(this, endpoint);
    this.log.info(`Following the control plane at ${endpoint}`);
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
    await this.local.load(this.store, this.localMode());
    await this.activate();
    if (this.opts.targetFile) {
      const setTarget = (input: unknown, source: string) => this.setTarget(input, source);
      this.stopWatching = await followTargetFile(this.opts.targetFile, { current: () => this.managed, setTarget, log: this.log });
    } else if (!stored) {
      await preload(this.opts.appsJsonPath ?? path.join(this.opts.dataDir, 'apps.json'), (input, source) => this.setTarget(input, source), this.log);
    }
    if (!this.target) this.log.info('No target state yet: nothing is applied until one arrives');
  }
}
