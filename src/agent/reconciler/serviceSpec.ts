// Target service → the normalised container configuration the agent creates, and its hash.
// The hash is computed from what the agent asks the engine for (not from what inspect returns),
// so engine-side normalisation (restart policy "no" vs "", default caps, …) can never cause a
// replace loop: a container is replaced only when the agent's own request for it changed.
import path from 'node:path';
import { parse as shellParse } from 'shell-quote';
import stringify from 'safe-stable-stringify';
import { sha256Hex } from '../../shared/sha256.js';
import {
  UPDATE_STRATEGIES,
  type AppTarget,
  type RegistryCredentials,
  type ServiceTarget,
  type TargetState,
  type UpdateStrategy,
} from '../../shared/targetState.js';
import { dependenciesOf } from '../../shared/validateTarget.js';
import { normaliseImageRef, parseImageRef, withTag } from '../engine/imageRef.js';
import { serviceEnvironment, createOnlyEnvironment, type DeviceIdentity, type SupervisorApiInfo } from './serviceEnvironment.js';

export const DEFAULT_HANDOVER_TIMEOUT_MS = 60_000;

export interface Healthcheck {
  test: string[];
  intervalNs: number;
  timeoutNs: number;
  startPeriodNs: number;
  retries: number;
}

/** Everything that decides how a container is created. Two equal configs hash equal. */
export interface ContainerConfig {
  image: string;
  command: string[] | null;
  entrypoint: string[] | null;
  environment: Record<string, string>;
  labels: Record<string, string>;
  workingDir: string | null;
  user: string | null;
  /** host binds, `host:container[:ro]`, sorted */
  binds: string[];
  /** named volumes as engine names, `appId_name:/path[:ro]`, sorted */
  volumes: string[];
  /** `[ip:]hostPort:containerPort/proto`, sorted */
  ports: string[];
  /** `app` = the app's own networks */
  networkMode: 'app' | 'host' | 'none' | 'bridge' | `service:${string}`;
  /** engine network names, first is joined at create time */
  networks: string[];
  restart: string;
  privileged: boolean;
  capAdd: string[];
  capDrop: string[];
  devices: string[];
  memory: number;
  nanoCpus: number;
  healthcheck: Healthcheck | null;
  stopSignal: string | null;
  stopTimeout: number;
}

export interface ServiceSpec {
  /** the engine scope of the agent that owns the container (see LABEL.scope) */
  scope?: string;
  appId: number;
  appUuid: string;
  appName: string;
  releaseId: number;
  commit: string;
  serviceName: string;
  config: ContainerConfig;
  hash: string;
  /** Set only when a container is created; never compared (a device rename must not recreate). */
  createEnv: Record<string, string>;
  running: boolean;
  strategy: UpdateStrategy;
  handoverTimeoutMs: number;
  dependsOn: string[];
  /** image plus its required tags: all must be present before the service is (re)created */
  images: string[];
  /** purge_data: the service's volumes and writable host-folder binds are emptied once per release */
  purgeData: boolean;
  registry?: RegistryCredentials;
}

export interface SpecContext {
  device: DeviceIdentity;
  /** Host folder holding `<appId>/<service>/` lock folders mounted at /tmp/balena. */
  lockRoot: string;
  api?: SupervisorApiInfo;
  scope?: string;
  /** `appId/service` stopped through the device API: held stopped whatever the target says */
  heldStopped?: ReadonlySet<string>;
}

/**
 * Engine names are balena's (`<appId>_<name>`); agents sharing an engine (tests, simulated fleets)
 * prefix their scope, as two of them may run the same app id.
 */
export const engineObjectName = (appId: number, name: string, scope?: string) => `${scope ? `${scope}_` : ''}${appId}_${name}`;
export const lockDirOf = (lockRoot: string, appId: number, service: string) => path.join(lockRoot, String(appId), service);

export function buildServiceSpec(appId: number, app: AppTarget, serviceName: string, svc: ServiceTarget, target: TargetState, ctx: SpecContext): ServiceSpec {
  const image = normaliseImageRef(svc.image);
  const labels = svc.labels ?? {};
  const networkMode = (svc.network_mode ?? 'app') as ContainerConfig['networkMode'];
  const lockDir = lockDirOf(ctx.lockRoot, appId, serviceName);
  const config: ContainerConfig = {
    image,
    command: toArgv(svc.command),
    entrypoint: toArgv(svc.entrypoint),
    environment: {
      ...serviceEnvironment({ appId, app, serviceName, device: ctx.device, api: ctx.api, hostNetwork: networkMode === 'host' }),
      ...(svc.environment ?? {}),
    },
    labels,
    workingDir: svc.working_dir ?? null,
    user: svc.user ?? null,
    binds: [`${lockDir}:/tmp/balena`, `${lockDir}:/tmp/resin`, ...(svc.volumes ?? []).filter((v) => v.startsWith('/'))].sort(),
    volumes: (svc.volumes ?? [])
      .filter((v) => !v.startsWith('/'))
      .map((v) => {
        const [name, ...rest] = v.split(':');
        return [engineObjectName(appId, name!, ctx.scope), ...rest].join(':');
      })
      .sort(),
    ports: (svc.ports ?? []).map(normalisePort).sort(),
    networkMode,
    networks: networkMode === 'app' ? (svc.networks ?? ['default']).map((n) => engineObjectName(appId, n, ctx.scope)) : [],
    restart: svc.restart ?? 'always',
    privileged: svc.privileged ?? false,
    capAdd: [...(svc.cap_add ?? [])].sort(),
    capDrop: [...(svc.cap_drop ?? [])].sort(),
    devices: (svc.devices ?? []).map(normaliseDevice).sort(),
    memory: parseMemory(svc.mem_limit),
    nanoCpus: svc.cpus ? Math.round(svc.cpus * 1e9) : 0,
    healthcheck: svc.healthcheck ? normaliseHealthcheck(svc.healthcheck) : null,
    stopSignal: svc.stop_signal ?? null,
    stopTimeout: svc.stop_grace_period ?? 10,
  };
  const strategyLabel = labels['io.balena.update.strategy'] as UpdateStrategy | undefined;
  const timeoutLabel = Number(labels['io.balena.update.handover-timeout']);
  const registry = svc.registry !== undefined ? target.registries?.[svc.registry] : registryFor(image, target.registries);
  return {
    ...(ctx.scope ? { scope: ctx.scope } : {}),
    appId,
    appUuid: app.uuid ?? String(appId),
    appName: app.name,
    releaseId: app.release.id,
    commit: app.release.commit,
    serviceName,
    config,
    hash: hashConfig(config),
    createEnv: createOnlyEnvironment(ctx.device),
    running: (svc.running ?? true) && !ctx.heldStopped?.has(`${appId}/${serviceName}`),
    strategy: svc.update_strategy ?? (UPDATE_STRATEGIES.includes(strategyLabel!) ? strategyLabel! : 'download-then-kill'),
    handoverTimeoutMs: svc.handover_timeout ?? (timeoutLabel >= 0 ? timeoutLabel : DEFAULT_HANDOVER_TIMEOUT_MS),
    dependsOn: dependenciesOf(svc),
    images: [image, ...(svc.required_tags ?? []).map((t) => withTag(image, t))],
    purgeData: svc.purge_data ?? false,
    ...(registry ? { registry } : {}),
  };
}

function hashConfig(config: ContainerConfig): string {
  return sha256Hex(stringify(config)!);
}

/** The config with environment values replaced by digests: safe to keep in a label and to diff. */
export function redactConfig(config: ContainerConfig): ContainerConfig {
  const environment: Record<string, string> = {};
  for (const [k, v] of Object.entries(config.environment)) {
    environment[k] = sha256Hex(v).slice(0, 12);
  }
  return { ...config, environment };
}

/** Human-readable list of what differs between two redacted configs (env values never shown). */
export function describeConfigChange(from: ContainerConfig | undefined, to: ContainerConfig): string[] {
  if (!from) return ['configuration (previous one unknown)'];
  const changes: string[] = [];
  for (const key of Object.keys(to) as (keyof ContainerConfig)[]) {
    if (key === 'environment') {
      const envChanges = diffKeys(from.environment ?? {}, to.environment);
      if (envChanges.length) changes.push(`environment (${envChanges.join(', ')})`);
    } else if (stringify(from[key]) !== stringify(to[key])) {
      changes.push(key === 'image' ? `image (${String(from.image)} → ${to.image})` : key);
    }
  }
  return changes;
}

function diffKeys(a: Record<string, string>, b: Record<string, string>): string[] {
  const out: string[] = [];
  for (const k of Object.keys(b)) {
    if (!(k in a)) out.push(`${k} added`);
    else if (a[k] !== b[k]) out.push(`${k} changed`);
  }
  for (const k of Object.keys(a)) if (!(k in b)) out.push(`${k} removed`);
  return out;
}

function toArgv(v: string[] | string | null | undefined): string[] | null {
  if (v === undefined || v === null) return null;
  if (Array.isArray(v)) return v;
  // Globs stay literal (as in a compose file), comments go, operators stay as words.
  // `$VAR` stays literal: the container's shell (if any) expands it, not the agent.
  return shellParse(v, (name) => `$${name}`).flatMap((t) => (typeof t === 'string' ? [t] : 'comment' in t ? [] : 'pattern' in t ? [t.pattern] : [t.op]));
}

function normalisePort(p: string): string {
  const [spec, proto = 'tcp'] = p.split('/');
  // The IP part is lazy: `8080:80` is host:container, not ip:container.
  const parts = spec!.match(/^(?:(\[[^\]]+\]|[0-9.]+):)??(?:(\d*):)?(\d+)$/)!;
  const [, ip, host, container] = parts;
  return `${ip ? `${ip}:` : ''}${host ?? ''}:${container}/${proto}`;
}

function normaliseDevice(d: string): string {
  const [host, ...rest] = d.split(':');
  // `/dev/x:rw` gives permissions, not a container path.
  const container = rest[0]?.startsWith('/') ? rest.shift() : host;
  return `${host}:${container}:${rest[0] ?? 'rwm'}`;
}

const MEMORY_UNITS: Record<string, number> = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };
function parseMemory(v: number | string | undefined): number {
  if (v === undefined) return 0;
  if (typeof v === 'number') return v;
  const m = v.match(/^(\d+)([bkmg]?)$/)!;
  return Number(m[1]) * MEMORY_UNITS[m[2] || 'b']!;
}

const DURATION_UNITS: Record<string, number> = { ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
export function durationNs(v: number | string | undefined, defaultNs: number): number {
  if (v === undefined) return defaultNs;
  if (typeof v === 'number') return v * 1e6;
  let total = 0;
  for (const [, n, unit] of v.matchAll(/(\d+)(ms|s|m|h)/g)) total += Number(n) * DURATION_UNITS[unit!]!;
  return total;
}

function normaliseHealthcheck(h: NonNullable<ServiceTarget['healthcheck']>): Healthcheck {
  const test = typeof h.test === 'string' ? ['CMD-SHELL', h.test] : h.test;
  return {
    test,
    intervalNs: durationNs(h.interval, 30e9),
    timeoutNs: durationNs(h.timeout, 30e9),
    startPeriodNs: durationNs(h.start_period, 0),
    retries: h.retries ?? 3,
  };
}

export function registryFor(image: string, registries: TargetState['registries']): RegistryCredentials | undefined {
  const host = parseImageRef(image).registry;
  // Docker Hub goes by several names; parseImageRef maps them all to ''.
  return Object.values(registries ?? {}).find((r) => parseImageRef(`${r.url.replace(/^https?:\/\//, '').replace(/\/.*$/, '')}/x`).registry === host);
}
