// A release container's `startup_parameters` → the options of its service in the target. Salt's
// `docker_container.running` keyword arguments, so Salt's forms and docker-py's alike; every
// refusal names the field.
import type { ServiceTarget, VolumeTarget } from '../../shared/targetState.js';
import { portBindings } from './portBindings.js';
import { escapePointer, fail, list } from './releaseField.js';
import { fullyQualifiedName, type StartupParameters } from './releaseSchema.js';
import { shellWords } from './shellWords.js';

export interface Ctx {
  /** pointer of the container's startup_parameters */
  at: string;
  self: string;
  /** container name → index */
  names: ReadonlyMap<string, number>;
  releaseId: number;
  /** named volumes the release's binds use, declared on the app */
  volumes: Record<string, VolumeTarget>;
}

type ServiceOptions = Omit<ServiceTarget, 'image'>;

export function serviceOptions(p: StartupParameters, ctx: Ctx): ServiceOptions {
  const out: ServiceOptions = {};
  const at = ctx.at;
  if (p.environment !== undefined) out.environment = environment(p.environment, `${at}/environment`);
  const mounts = [...binds(p.binds, `${at}/binds`, ctx), ...volumeSpecs(p, ctx)];
  if (mounts.length) out.volumes = mounts;
  if (p.port_bindings !== undefined) {
    const ports = portBindings(p.port_bindings, `${at}/port_bindings`);
    if (ports.length) out.ports = ports;
  }
  if (p.network_mode !== undefined) out.network_mode = networkMode(p.network_mode, `${at}/network_mode`, ctx);
  // Docker's (and so AutoPi's) default is not to restart; Bosun's own default would be "always".
  out.restart = p.restart_policy === undefined ? 'no' : restartPolicy(p.restart_policy, `${at}/restart_policy`);
  if (p.privileged !== undefined) out.privileged = p.privileged;
  if (p.command !== undefined) out.command = p.command;
  if (p.entrypoint !== undefined) out.entrypoint = p.entrypoint;
  if (p.labels !== undefined) out.labels = labels(p.labels, `${at}/labels`);
  for (const key of ['cap_add', 'cap_drop'] as const) {
    if (p[key] !== undefined) {
      const caps = list(p[key]);
      caps.forEach((cap, i) => {
        if (!/^[A-Za-z_]+$/.test(cap)) fail(`${at}/${key}${Array.isArray(p[key]) ? `/${i}` : ''}`, `"${cap}" is not a capability`);
      });
      if (caps.length) out[key] = caps;
    }
  }
  if (p.devices !== undefined) {
    const devices = list(p.devices);
    devices.forEach((d, i) => {
      if (!/^\/[^:]+(:\/[^:]+)?(:[rwm]+)?$/.test(d))
        fail(`${at}/devices${Array.isArray(p.devices) ? `/${i}` : ''}`, `"${d}" is not "/dev/host[:/dev/container][:rwm]"`);
    });
    if (devices.length) out.devices = devices;
  }
  if (p.working_dir !== undefined) {
    if (!p.working_dir.startsWith('/')) fail(`${at}/working_dir`, 'must be an absolute path');
    out.working_dir = p.working_dir;
  }
  if (p.user !== undefined) {
    const user = String(p.user);
    if (!/^[^\s:]+(:[^\s:]+)?$/.test(user)) fail(`${at}/user`, `"${user}" is not user[:group]`);
    out.user = user;
  }
  if (p.mem_limit !== undefined) out.mem_limit = memLimit(p.mem_limit, `${at}/mem_limit`);
  if (p.stop_signal !== undefined) {
    if (!/^(SIG)?[A-Z0-9]+$/.test(p.stop_signal)) fail(`${at}/stop_signal`, `"${p.stop_signal}" is not a signal name like SIGTERM`);
    out.stop_signal = p.stop_signal;
  }
  if (p.stop_timeout !== undefined) out.stop_grace_period = p.stop_timeout;
  if (p.healthcheck !== undefined) out.healthcheck = p.healthcheck;
  if (p.depends_on !== undefined) {
    p.depends_on.forEach((dep, i) => {
      if (!ctx.names.has(dep)) fail(`${at}/depends_on/${i}`, `no container "${dep}" in this release`);
      if (dep === ctx.self) fail(`${at}/depends_on/${i}`, 'a container cannot depend on itself');
    });
    if (p.depends_on.length) out.depends_on = p.depends_on;
  }
  return out;
}

function environment(env: NonNullable<StartupParameters['environment']>, at: string): Record<string, string> {
  const out: Record<string, string> = {};
  const put = (key: string, value: string, field: string) => {
    if (!key || key.includes('=') || /[\s\0]/.test(key)) fail(field, `"${key}" is not a variable name`);
    out[key] = value;
  };
  if (typeof env === 'object' && !Array.isArray(env)) {
    for (const [k, v] of Object.entries(env)) put(k, String(v), `${at}/${escapePointer(k)}`);
    return out;
  }
  const pairs = typeof env === 'string' ? shellWords(env, at) : env;
  pairs.forEach((pair, i) => {
    const field = typeof env === 'string' ? at : `${at}/${i}`;
    const eq = pair.indexOf('=');
    if (eq <= 0) fail(field, `expected KEY=VALUE, got ${JSON.stringify(pair)}`);
    put(pair.slice(0, eq), pair.slice(eq + 1), field);
  });
  return out;
}

const VOLUME_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** `source:/container/path[:ro|rw]`; a source that is not an absolute path is a named volume of the app. */
function mountSpec(spec: string, field: string, ctx: Ctx): string {
  const parts = spec.split(':');
  const [source, target, mode] = parts;
  if (parts.length < 2 || parts.length > 3) fail(field, `"${spec}" is not "source:/container/path[:ro|rw]"`);
  if (!target!.startsWith('/')) fail(field, `"${spec}": the container path must be absolute`);
  if (mode !== undefined && mode !== 'ro' && mode !== 'rw') fail(field, `"${spec}": the mode is ro or rw`);
  if (!source!.startsWith('/')) {
    if (!VOLUME_NAME_RE.test(source!)) fail(field, `"${spec}": the source is an absolute host path or a volume name`);
    ctx.volumes[source!] = {};
  }
  return spec;
}

function binds(b: StartupParameters['binds'], at: string, ctx: Ctx): string[] {
  if (b === undefined) return [];
  if (typeof b === 'object' && !Array.isArray(b)) {
    // docker-py: {"/host": "/container"} or {"/host": {"bind": "/container", "mode": "ro"}}
    return Object.entries(b).map(([source, v]) => {
      const field = `${at}/${escapePointer(source)}`;
      const target = typeof v === 'string' ? v : v.bind;
      const mode = typeof v === 'string' ? undefined : (v.mode ?? (v.ro ? 'ro' : undefined));
      return mountSpec(`${source}:${target}${mode ? `:${mode}` : ''}`, field, ctx);
    });
  }
  return list(b).map((spec, i) => mountSpec(spec, Array.isArray(b) ? `${at}/${i}` : at, ctx));
}

/**
 * Salt's and docker-py's `volumes` name the container paths that are volumes; one a bind already
 * mounts is redundant. An anonymous volume has no place in a target (its data would be lost at
 * every update), so a bare path nothing mounts is refused.
 */
function volumeSpecs(p: StartupParameters, ctx: Ctx): string[] {
  if (p.volumes === undefined) return [];
  const at = `${ctx.at}/volumes`;
  const bound = new Set(binds(p.binds, '', { ...ctx, volumes: {} }).map((s) => s.split(':')[1]));
  const out: string[] = [];
  list(p.volumes).forEach((spec, i) => {
    const field = Array.isArray(p.volumes) ? `${at}/${i}` : at;
    if (!spec.includes(':')) {
      if (!spec.startsWith('/')) fail(field, `"${spec}" is not a container path or "source:/container/path"`);
      if (!bound.has(spec)) fail(field, `"${spec}": anonymous volumes are not supported; mount a host path or a named volume with binds ("data:${spec}")`);
      return;
    }
    out.push(mountSpec(spec, field, ctx));
  });
  return out;
}

function networkMode(mode: string, field: string, ctx: Ctx): string {
  if (mode === 'bridge' || mode === 'host' || mode === 'none') return mode;
  const m = mode.match(/^(?:container|service):(.+)$/);
  if (m) {
    // another container of this release, by name or by its fully qualified name
    const name = [...ctx.names.keys()].find((n) => n === m[1] || fullyQualifiedName(n, ctx.releaseId) === m[1]);
    if (name === undefined) fail(field, `"${mode}": no container "${m[1]}" in this release`);
    if (name === ctx.self) fail(field, 'a container cannot join its own network namespace');
    return `service:${name}`;
  }
  return fail(field, `"${mode}" is not bridge, host, none or container:<name of a container of this release>`);
}

function restartPolicy(r: NonNullable<StartupParameters['restart_policy']>, field: string): string {
  if (typeof r === 'string') {
    if (r === '') return 'no';
    if (!/^(no|always|unless-stopped|on-failure(:\d+)?)$/.test(r)) fail(field, `"${r}" is not no, always, unless-stopped or on-failure[:N]`);
    return r;
  }
  const name = r.Name === '' ? 'no' : r.Name;
  if (!['no', 'always', 'unless-stopped', 'on-failure'].includes(name)) fail(`${field}/Name`, `"${r.Name}" is not no, always, unless-stopped or on-failure`);
  return name === 'on-failure' && r.MaximumRetryCount ? `on-failure:${r.MaximumRetryCount}` : name;
}

function labels(l: NonNullable<StartupParameters['labels']>, at: string): Record<string, string> {
  const entries = Array.isArray(l)
    ? l.map((s, i): [string, string, string] => {
        const eq = s.indexOf('=');
        return eq < 0 ? [s, '', `${at}/${i}`] : [s.slice(0, eq), s.slice(eq + 1), `${at}/${i}`];
      })
    : Object.entries(l).map(([k, v]): [string, string, string] => [k, v, `${at}/${escapePointer(k)}`]);
  const out: Record<string, string> = {};
  for (const [k, v, field] of entries) {
    if (!k || /\s/.test(k)) fail(field, `"${k}" is not a label name`);
    out[k] = v;
  }
  return out;
}

const MIN_MEMORY = 6 * 1024 * 1024; // the engine's own minimum
const MEMORY_UNITS: Record<string, number> = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

function memLimit(v: string | number, field: string): string | number {
  if (typeof v === 'number') {
    if (v < MIN_MEMORY) fail(field, `${v} bytes is below the engine's minimum of 6 MiB`);
    return v;
  }
  const m = v
    .trim()
    .toLowerCase()
    .match(/^(\d+)([bkmg]?)b?$/);
  if (!m) fail(field, `"${v}" is not a memory size like 512m or 1g`);
  if (Number(m[1]) * MEMORY_UNITS[m[2] || 'b']! < MIN_MEMORY) fail(field, `"${v}" is below the engine's minimum of 6 MiB`);
  return `${m[1]}${m[2]}`;
}
