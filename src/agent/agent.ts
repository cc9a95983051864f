// The agent: wires config, store, engine, locks, puller and reconciler, and owns the target.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type Docker from 'dockerode';
import { fromBalenaApps } from '../shared/balenaTarget.js';
import { ValidationError } from '../shared/errors.js';
import type { TargetState } from '../shared/targetState.js';
import { validateTargetState } from '../shared/validateTarget.js';
import { writeFileAtomic } from './config/atomicFile.js';
import { newUuid, readConfigJson, writeConfigJson, type ConfigJson } from './config/configJson.js';
import { engineErrorMessage, withDeadline } from './engine/deadline.js';
import { createDocker } from './engine/docker.js';
import { SUPERVISED_FILTER } from './engine/labels.js';
import { readCurrentState } from './engine/readState.js';
import { EventLog } from './eventLog.js';
import { ImagePuller } from './images/imagePuller.js';
import { UpdateLocks } from './locks/updateLock.js';
import { buildDesiredState, type DesiredState } from './reconciler/desiredState.js';
import { Executor } from './reconciler/executor.js';
import { Reconciler } from './reconciler/reconciler.js';
import type { DeviceIdentity } from './reconciler/serviceEnvironment.js';
import { reportCurrentState, type AppReport } from './state/currentState.js';
import { openAgentDb } from './store/database.js';
import { AgentStore } from './store/agentStore.js';

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
  log?: EventLog;
}

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
  private target: TargetState | undefined;
  private desired: DesiredState | undefined;
  private device!: DeviceIdentity;
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
    if (!this.config.uuid) {
      this.config.uuid = newUuid();
      await writeConfigJson(this.configPath, this.config);
    }
    this.store = await AgentStore.open(await openAgentDb(path.join(dataDir, 'agent.sqlite')));
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
      lockOverride: () => ['1', 'true'].includes(this.target?.config?.SUPERVISOR_OVERRIDE_LOCK ?? ''),
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
    });
    this.device = {
      uuid: this.config.uuid,
      type: this.config.deviceType ?? `generic-${ARCH[process.arch] ?? process.arch}`,
      arch: this.config.deviceArch ?? ARCH[process.arch] ?? process.arch,
      name: this.config.initialDeviceName ?? this.config.uuid.slice(0, 7),
      osVersion: await osVersion(),
    };
    await this.loadInitialTarget();
    this.reconciler.start();
    this.watchEngineEvents();
    this.log.info(`Agent started (device ${this.device.uuid}, data in ${dataDir})`);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stopWatching?.();
    (this.events as { destroy?: () => void } | undefined)?.destroy?.();
    await this.reconciler?.stop();
    await this.store?.db.destroy();
  }

  getTarget(): TargetState | undefined {
    return this.target;
  }

  /** Validates, persists and applies a target; an invalid one is rejected whole and changes nothing. */
  async setTarget(input: unknown, source: string): Promise<TargetState> {
    const target = validateTargetState(input);
    await this.store.setTarget(target, source);
    this.useTarget(target);
    this.reconciler.trigger(`new target from ${source}`);
    return target;
  }

  /** Waits until the engine matches the target (or only waits remain); for tests and tools. */
  async applyNow(): Promise<'converged' | 'waiting'> {
    return this.reconciler.applyOnce();
  }

  async currentState(): Promise<Record<string, AppReport>> {
    const current = await readCurrentState(this.docker, this.opts.engineScope);
    return reportCurrentState(current, this.desired, {
      phase: (a, s) => this.executor.phases.get(`${a}/${s}`),
      progress: (a, s) => this.puller.progress(a, s),
      error: (a, s) => this.executor.serviceErrors.get(`${a}/${s}`),
      applied: this.store.appliedReleases(),
    });
  }

  private useTarget(target: TargetState): void {
    this.target = target;
    const device = { ...this.device, name: target.name ?? this.device.name };
    this.desired = buildDesiredState(target, { device, lockRoot: this.lockRoot, ...(this.opts.engineScope ? { scope: this.opts.engineScope } : {}) });
  }

  private async loadInitialTarget(): Promise<void> {
    const stored = await this.store.getTarget();
    if (stored) this.useTarget(validateTargetState(stored.target));
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
      if (JSON.stringify(json) === JSON.stringify(this.target)) return;
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
