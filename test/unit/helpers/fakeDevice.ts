// A fake of the device API's port (src/agent/api/devicePort.ts): two apps, three keys, and a record
// of every action asked of it, so that routes can be tested with fastify's inject() in
// milliseconds, without an agent or an engine. What the real agent does behind the port is tested
// on real parts (test/integration/deviceApi*.test.ts).
import type { ContainerInfo } from 'dockerode';
import type { CommandPort, DevicePort, EnginePort, LoggedEvent } from '../../../src/agent/api/devicePort.js';
import type { KeyScope } from '../../../src/agent/api/keyScope.js';
import { LABEL } from '../../../src/agent/engine/labels.js';
import type { LogLine } from '../../../src/agent/logs/logFollower.js';
import type { CurrentContainer } from '../../../src/agent/reconciler/types.js';
import type { AppReport, ServiceReport } from '../../../src/agent/state/currentState.js';
import { NotFoundError } from '../../../src/shared/errors.js';
import type { TargetState } from '../../../src/shared/targetState.js';

export const DEVICE_KEY = 'device-key';
/** app 1 runs `web`, app 2 runs `db` and `worker` */
export const APP_KEYS: Record<number, string> = { 1: 'app-1-key', 2: 'app-2-key' };
const SERVICES: Record<number, string[]> = { 1: ['web'], 2: ['db', 'worker'] };

/** One call made through the port: its name and arguments. */
export type Call = [name: string, ...args: unknown[]];

const serviceReport = (containerId: string): ServiceReport => ({
  status: 'Running',
  releaseId: 10,
  image: 'registry/img:1',
  imageId: 'sha256:img',
  containerId,
  createdAt: '2026-01-01T00:00:00.000Z',
  downloadProgress: null,
  error: null,
  waiting: null,
});

const appReport = (appId: number): AppReport => ({
  appId,
  appUuid: `uuid-${appId}`,
  appName: `app${appId}`,
  releaseId: 10,
  commit: `commit-${appId}`,
  targetReleaseId: 10,
  targetCommit: `commit-${appId}`,
  updateStatus: 'done',
  settle: null,
  services: Object.fromEntries(SERVICES[appId]!.map((s) => [s, serviceReport(`${s}-container`)])),
});

const container = (appId: number, serviceName: string): CurrentContainer => ({
  id: `${serviceName}-container`,
  name: `${serviceName}_1`,
  appId,
  serviceName,
  releaseId: 10,
  commit: `commit-${appId}`,
  configHash: '',
  configLabel: '',
  dependsOn: [],
  imageId: 'sha256:img',
  state: 'running',
  createdAt: 0,
  networks: [],
  networkMode: 'bridge',
});

export class FakeDevice implements DevicePort {
  readonly calls: Call[] = [];
  local = false;
  problems: string[] = [];
  /** what the next action throws (an engine error, a held lock) */
  failure: Error | undefined;
  /** log lines the next follower gets at once */
  logLines: LogLine[] = [];
  target: TargetState | undefined;
  hostConfig = { network: { hostname: 'bosun', proxy: { type: 'socks5', ip: '10.0.0.1', port: 1080, login: 'me', password: 'secret' } } };

  private record(name: string, ...args: unknown[]): void {
    this.calls.push([name, ...args]);
    if (this.failure) throw this.failure;
  }

  /** The calls by that name. */
  callsOf(name: string): unknown[][] {
    return this.calls.filter(([n]) => n === name).map(([, ...args]) => args);
  }

  readonly log = {
    info: () => {},
    warn: () => {},
    error: () => {},
    logger: { info: () => {}, warn: () => {} },
  };

  identity() {
    return { uuid: 'a1b2c3d4e5f6', type: 'generic-amd64', arch: 'amd64', name: 'a1b2c3d', osVersion: 'Fake OS' };
  }
  deviceName = () => 'fake-device';
  deviceFacts = () => ({ apiPort: 48484, osVersion: 'Fake OS', supervisorVersion: '17.0.0', bosunVersion: '0.1.0', applying: false });
  localMode = () => this.local;
  authenticate(key: string): KeyScope | undefined {
    if (key === DEVICE_KEY) return { kind: 'device' };
    const app = Object.entries(APP_KEYS).find(([, k]) => k === key);
    return app ? { kind: 'app', appId: Number(app[0]) } : undefined;
  }
  regenerateApiKey = async (scope: KeyScope) => {
    this.record('regenerateApiKey', scope);
    return 'new-key';
  };
  healthProblems = async () => this.problems;

  readonly actions: DevicePort['actions'] = {
    containersOf: async (appId) => {
      if (!SERVICES[appId]) throw new NotFoundError(`Application ID does not exist: ${appId}`);
      return SERVICES[appId].map((s) => container(appId, s));
    },
    serviceContainer: async (appId, service) => container(appId, service),
    restartService: async (...a) => this.record('restartService', ...a),
    stopService: async (...a) => {
      this.record('stopService', ...a);
      return `${a[1]}-container`;
    },
    startService: async (...a) => {
      this.record('startService', ...a);
      return `${a[1]}-container`;
    },
    restartApp: async (...a) => this.record('restartApp', ...a),
    purgeApp: async (...a) => this.record('purgeApp', ...a),
    cleanupVolumes: async (covered) => {
      this.record('cleanupVolumes');
      return [1, 2].filter(covered).map((id) => `${id}_data`);
    },
    power: async (action, force) => this.record('power', action, force),
  };

  readonly host: DevicePort['host'] = {
    blink: () => this.record('blink'),
    readConfig: async () => structuredClone(this.hostConfig),
    applyConfig: async (patch) => this.record('applyConfig', patch),
  };

  requestUpdate = (force: boolean, scope: KeyScope) => this.record('requestUpdate', force, scope);
  currentState = async () => ({ '1': appReport(1), '2': appReport(2) });
  applying = () => false;
  desiredService = () => undefined;
  desiredServiceNames = (appId: number) => SERVICES[appId] ?? [];
  getTarget = () => this.target;
  setLocalTarget = async (target: unknown, force: boolean) => this.record('setLocalTarget', target, force);
  followLogs(onLine: (line: LogLine) => void): () => void {
    for (const line of this.logLines) onLine(line);
    return () => this.record('stopFollowing');
  }
  recordTelemetry = async (points: unknown) => this.record('recordTelemetry', points);
  dependents = async (): Promise<never> => {
    throw new NotFoundError('the fake device is no gateway');
  };
}

/** The commands' port: the fake device with a fake engine (the containers above) and event log. */
export class FakeCommandDevice extends FakeDevice implements CommandPort {
  engineDown: Error | undefined;
  readonly logs: Record<string, string> = { 'web-container': 'web line 1\nweb line 2\n', 'db-container': 'db line\n' };
  readonly eventRows: LoggedEvent[] = [
    { ts: '2026-01-01T00:00:00.000Z', level: 'info', message: 'Agent started' },
    { ts: '2026-01-01T00:00:01.000Z', level: 'error', message: 'Failed to pull image' },
  ];

  private engineUp(): void {
    if (this.engineDown) throw this.engineDown;
  }

  readonly engine: EnginePort = {
    listContainers: async () => {
      this.engineUp();
      return Object.entries(SERVICES).flatMap(([appId, services]) =>
        services.map(
          (s) => ({ Id: `${s}-container`, Names: [`/${s}_1`], Labels: { [LABEL.appId]: appId, [LABEL.serviceName]: s } }) as unknown as ContainerInfo,
        ),
      );
    },
    containers: async () => {
      this.engineUp();
      return Object.entries(SERVICES).flatMap(([appId, services]) => services.map((s) => container(Number(appId), s)));
    },
    containerState: async () => 'running',
    containerLogs: async (id, _query, onChunk) => {
      this.engineUp();
      onChunk(Buffer.from(this.logs[id] ?? ''));
    },
    version: async () => {
      this.engineUp();
      return '27.0.0';
    },
  };

  applyNow = async () => 'waiting' as const;
  waitReasons = () => ['app 2 holds its update lock'];
  events = async () => this.eventRows;
}
