// What the device API's routes and the commands may ask of the device: a narrow port instead of the
// whole Agent, so that a route reaches the engine, the store and the reconciler only through a named
// operation, and routes can be tested against a fake (test/unit/deviceApiRoutes.test.ts). The agent's
// side is agentPort.ts. Types only: nothing here is loaded at run time.
import type { ContainerInfo } from 'dockerode';
import type { TargetState } from '../../shared/targetState.js';
import type { DeviceActions } from '../actions/deviceActions.js';
import type { DependentsApi } from '../dependent/dependentPort.js';
import type { LogsQuery } from '../engine/containerLogs.js';
import type { Host } from '../host/host.js';
import type { LogLine } from '../logs/logFollower.js';
import type { CurrentContainer } from '../reconciler/types.js';
import type { DeviceIdentity } from '../reconciler/serviceEnvironment.js';
import type { ServiceSpec } from '../reconciler/serviceSpec.js';
import type { AppReport } from '../state/currentState.js';
import type { DeviceFacts } from '../state/deviceReports.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import type { KeyScope } from './apiKeys.js';

/** The agent's log: system messages (kept in its event table) and structured lines. */
export interface DeviceLog {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  readonly logger: { info(fields: object, message: string): void; warn(fields: object, message: string): void };
}

/** What the device API's routes use. */
export interface DevicePort {
  readonly log: DeviceLog;
  /** the device's uuid, type, arch and OS */
  identity(): DeviceIdentity;
  deviceName(): string;
  deviceFacts(): DeviceFacts;
  localMode(): boolean;
  /** which scope a presented API key has, if any */
  authenticate(key: string): KeyScope | undefined;
  /** replaces the caller's key; the old one stops working at once */
  regenerateApiKey(scope: KeyScope): Promise<string>;
  /** why the agent is not healthy (empty when it is) */
  healthProblems(): Promise<string[]>;
  /** the device API's actions on apps, services and the device (update locks honoured unless forced) */
  readonly actions: Pick<
    DeviceActions,
    'containersOf' | 'serviceContainer' | 'restartService' | 'stopService' | 'startService' | 'restartApp' | 'purgeApp' | 'cleanupVolumes' | 'power'
  >;
  readonly host: Pick<Host, 'blink' | 'readConfig' | 'applyConfig'>;
  /** apply now; `force` overrides the locks of the apps `scope` covers until the device converges */
  requestUpdate(force: boolean, scope: KeyScope): void;
  currentState(): Promise<Record<string, AppReport>>;
  /** whether an apply is under way */
  applying(): boolean;
  desiredService(appId: number, service: string): ServiceSpec | undefined;
  desiredServiceNames(appId: number): string[];
  getTarget(): TargetState | undefined;
  /** a target pushed in local mode (balena CLI); `force` overrides every app's update lock */
  setLocalTarget(target: unknown, force: boolean): Promise<void>;
  /** what the services print and the agent's system messages, from now on, until the returned stop */
  followLogs(onLine: (line: LogLine) => void): () => void;
  /** data points an app posted, kept for the control plane */
  recordTelemetry(points: Parameters<Telemetry['record']>[0]): Promise<void>;
  /** the gateway's dependent apps and devices (loaded on first use) */
  dependents(): Promise<DependentsApi>;
}

/** The engine as commands read it: the agent's own containers only. */
export interface EnginePort {
  /** the agent's service containers as the engine lists them (`all`: stopped ones too) */
  listContainers(all: boolean): Promise<ContainerInfo[]>;
  /** the agent's containers, read as the reconciler reads them */
  containers(): Promise<CurrentContainer[]>;
  containerState(id: string): Promise<'running' | 'paused' | 'stopped'>;
  /** what the container printed, chunk by chunk */
  containerLogs(id: string, query: LogsQuery, onChunk: (chunk: Buffer) => void): Promise<void>;
  /** the engine's version; throws when it does not answer */
  version(): Promise<string | undefined>;
}

/** One of the agent's system messages, oldest first. */
export interface LoggedEvent {
  ts: string;
  level: string;
  message: string;
}

/** What the commands use: the device API's port, the engine, the agent's own log. */
export interface CommandPort extends DevicePort {
  readonly engine: EnginePort;
  /** apply the target now; done once converged or only waits remain */
  applyNow(): Promise<'converged' | 'waiting'>;
  /** why the device waits (they name every app) */
  waitReasons(): string[];
  /** the agent's system messages, oldest first */
  events(): Promise<LoggedEvent[]>;
}
