// A release's containers (AutoPi shapes) → the app a device's agent applies (Bosun's target state).
// Pure. The startup parameters follow docker-py's container options, as AutoPi's do.
import { parse as shellParse } from 'shell-quote';
import { ValidationError } from '../../shared/errors.js';
import type { AppTarget, RegistryCredentials, ServiceTarget } from '../../shared/targetState.js';

export interface StartupParameters {
  /** `["KEY=VALUE", …]`, `{KEY: VALUE}` or the documented string form `A='x y' B=z` */
  environment?: string[] | Record<string, string> | string;
  binds?: string[];
  /** docker-py: `{"80/tcp": 8080}`, `{"80": "127.0.0.1:8080"}`, `{"53/udp": [53, 5353]}` */
  port_bindings?: Record<string, number | string | (number | string)[]>;
  network_mode?: string;
  /** `"always"` or docker-py's `{"Name": "on-failure", "MaximumRetryCount": 3}` */
  restart_policy?: string | { Name: string; MaximumRetryCount?: number };
  privileged?: boolean;
  command?: string | string[];
  entrypoint?: string | string[];
  labels?: Record<string, string>;
  cap_add?: string[];
  cap_drop?: string[];
  devices?: string[];
  working_dir?: string;
  user?: string;
  volumes?: string[];
  mem_limit?: string | number;
}

export interface ReleaseContainer {
  name: string;
  image: string;
  tag: string;
  required_tags: string[];
  startup_parameters: StartupParameters;
  purge_data: boolean;
  registry: number | null;
}

export interface RegistryRecord extends RegistryCredentials {
  id: number;
}

/** The registry a container pulls through: its own, else the project's default. */
const registryKey = (id: number) => `registry-${id}`;

export function releaseApp(
  release: { id: number; version_hash: string; project: { id: number; name: string; default_registry: number | null } },
  containers: ReleaseContainer[],
  registries: ReadonlyMap<number, RegistryRecord>,
): { app: AppTarget; registries: Record<string, RegistryCredentials> } {
  const services: Record<string, ServiceTarget> = {};
  const used: Record<string, RegistryCredentials> = {};
  containers.forEach((c, i) => {
    const registryId = c.registry ?? release.project.default_registry;
    const registry = registryId !== null ? registries.get(registryId) : undefined;
    if (registryId !== null && !registry) throw new ValidationError(`/containers/${i}/registry`, `no registry ${registryId}`, 'release');
    const host = registry ? registry.url.replace(/^https?:\/\//, '').replace(/\/+$/, '') : '';
    services[c.name] = {
      ...serviceOptions(c.startup_parameters, `/containers/${i}/startup_parameters`),
      image: `${host ? `${host}/` : ''}${c.image}:${c.tag}`,
      ...(c.required_tags.length ? { required_tags: c.required_tags } : {}),
      ...(registry ? { registry: registryKey(registry.id) } : {}),
    };
    if (registry) used[registryKey(registry.id)] = { url: registry.url, username: registry.username, password: registry.password };
  });
  return {
    app: { name: release.project.name, uuid: String(release.project.id), release: { id: release.id, commit: release.version_hash, services } },
    registries: used,
  };
}

function serviceOptions(p: StartupParameters, at: string): Omit<ServiceTarget, 'image'> {
  const out: Omit<ServiceTarget, 'image'> = {};
  if (p.environment !== undefined) out.environment = environment(p.environment, `${at}/environment`);
  const volumes = [...(p.binds ?? []), ...(p.volumes ?? [])];
  if (volumes.length) out.volumes = volumes;
  if (p.port_bindings) out.ports = ports(p.port_bindings);
  if (p.network_mode) out.network_mode = p.network_mode;
  if (p.restart_policy) {
    const r = p.restart_policy;
    out.restart = typeof r === 'string' ? r : r.Name === 'on-failure' && r.MaximumRetryCount ? `on-failure:${r.MaximumRetryCount}` : r.Name;
  }
  for (const key of ['privileged', 'command', 'entrypoint', 'labels', 'cap_add', 'cap_drop', 'devices', 'working_dir', 'user', 'mem_limit'] as const) {
    if (p[key] !== undefined) (out as Record<string, unknown>)[key] = p[key];
  }
  return out;
}

function environment(env: NonNullable<StartupParameters['environment']>, at: string): Record<string, string> {
  const pairs = typeof env === 'string' ? shellParse(env).filter((t): t is string => typeof t === 'string') : Array.isArray(env) ? env : null;
  if (!pairs) return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)]));
  const out: Record<string, string> = {};
  pairs.forEach((pair, i) => {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new ValidationError(typeof env === 'string' ? at : `${at}/${i}`, `expected KEY=VALUE, got ${JSON.stringify(pair)}`, 'release');
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  });
  return out;
}

function ports(bindings: NonNullable<StartupParameters['port_bindings']>): string[] {
  const out: string[] = [];
  for (const [container, hosts] of Object.entries(bindings)) {
    const [port, proto = 'tcp'] = container.split('/');
    for (const host of Array.isArray(hosts) ? hosts : [hosts]) out.push(`${String(host)}:${port}/${proto}`);
  }
  return out;
}
