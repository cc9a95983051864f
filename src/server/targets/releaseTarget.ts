// A release's containers (AutoPi shapes) → the app a device's agent applies (Bosun's target state).
// Pure. AutoPi's release state hands `startup_parameters` to Salt's `docker_container.running` as
// keyword arguments, so they take Salt's forms (lists or comma-separated strings, `"on-failure:3"`,
// `"127.0.0.1:8080:80/udp"`) and docker-py's (dicts) alike. Every problem is a ValidationError
// naming the field of the release (`/containers/1/startup_parameters/binds/0`), so the API can
// refuse a release that cannot become a valid target before anything is stored.
import { Type, type Static } from '@sinclair/typebox';
import { ValidationError } from '../../shared/errors.js';
import { HealthcheckSchema, type AppTarget, type RegistryCredentials, type ServiceTarget, type VolumeTarget } from '../../shared/targetState.js';
import { validateTargetState } from '../../shared/validateTarget.js';

/** A container's name: it becomes the service name (and a DNS name on the app's network). */
export const CONTAINER_NAME_PATTERN = '^[a-zA-Z0-9][a-zA-Z0-9_.-]*$';
export const CONTAINER_NAME_MAX = 63;
/** An image tag, as the engine accepts it. */
export const TAG_PATTERN = '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$';

const NAME_RE = new RegExp(CONTAINER_NAME_PATTERN);
const TAG_RE = new RegExp(TAG_PATTERN);
const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

const StrList = (description: string) =>
  Type.Union([Type.Array(Type.String()), Type.String({ description: `${description}, comma-separated` })], { description });
const PortHostScalar = Type.Union([Type.Integer(), Type.String(), Type.Null()]);
const PortHostTuple = Type.Array(Type.Union([Type.String(), Type.Integer()]), { minItems: 1, maxItems: 2, description: '[host_ip] or [host_ip, host_port]' });

/** The startup parameters a release container may give; anything else is refused by name. */
export const StartupParametersSchema = Type.Object(
  {
    environment: Type.Optional(
      Type.Union(
        [
          Type.Array(Type.String(), { description: '"KEY=VALUE" strings' }),
          Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean()])),
          Type.String({ description: `shell-quoted KEY=VALUE pairs: "A='x y' B=z"` }),
        ],
        { description: 'a list of KEY=VALUE strings, an object, or the string form' },
      ),
    ),
    binds: Type.Optional(
      Type.Union([
        Type.Array(Type.String(), { description: '"/host/path:/container/path[:ro|rw]" or "volume:/container/path[:ro|rw]"' }),
        Type.String({ description: 'the same, comma-separated' }),
        Type.Record(
          Type.String(),
          Type.Union([
            Type.String(),
            Type.Object({ bind: Type.String(), mode: Type.Optional(Type.String()), ro: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
          ]),
          { description: 'docker-py: {"/host": {"bind": "/container", "mode": "ro"}}' },
        ),
      ]),
    ),
    volumes: Type.Optional(StrList('volume specs as in binds; a bare container path only where a bind mounts it')),
    port_bindings: Type.Optional(
      Type.Union([
        Type.Array(Type.String(), { description: 'Salt: "[host_ip:[host_port]:]host_port:container_port[/udp]", port ranges allowed' }),
        Type.String({ description: 'the same, comma-separated' }),
        Type.Record(Type.String(), Type.Union([PortHostScalar, PortHostTuple, Type.Array(Type.Union([PortHostScalar, PortHostTuple]))]), {
          description: 'docker-py: {"80/tcp": 8080, "53/udp": ["127.0.0.1", 53], "9000": [9000, 9001]}',
        }),
      ]),
    ),
    network_mode: Type.Optional(Type.String({ description: 'bridge, host, none, or container:<name> of a container of this release' })),
    restart_policy: Type.Optional(
      Type.Union([
        Type.String({ description: 'no, always, unless-stopped, on-failure[:N]; default no' }),
        Type.Object({ Name: Type.String(), MaximumRetryCount: Type.Optional(Type.Integer({ minimum: 0 })) }, { additionalProperties: false }),
      ]),
    ),
    privileged: Type.Optional(Type.Boolean()),
    command: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())])),
    entrypoint: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())])),
    labels: Type.Optional(Type.Union([Type.Record(Type.String(), Type.String()), Type.Array(Type.String({ description: 'KEY=VALUE or KEY' }))])),
    cap_add: Type.Optional(StrList('capabilities to add')),
    cap_drop: Type.Optional(StrList('capabilities to drop')),
    devices: Type.Optional(StrList('"/dev/host[:/dev/container][:rwm]"')),
    working_dir: Type.Optional(Type.String()),
    user: Type.Optional(Type.Union([Type.String(), Type.Integer({ minimum: 0 })])),
    mem_limit: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.String({ description: 'bytes, or a number with b, k, m or g' })])),
    stop_signal: Type.Optional(Type.String()),
    stop_timeout: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600, description: 'seconds' })),
    healthcheck: Type.Optional(HealthcheckSchema),
    depends_on: Type.Optional(Type.Array(Type.String(), { uniqueItems: true, description: 'containers of this release started before this one' })),
  },
  { additionalProperties: false },
);
export type StartupParameters = Static<typeof StartupParametersSchema>;

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

export interface ReleaseInfo {
  id: number;
  version_hash: string;
  /** containers the device stops before the deployment: removed on success, restarted on failure */
  remove_containers?: string[];
  project: { id: number; name: string; default_registry: number | null };
}

/** The name of a container on the device in AutoPi's scheme (`deployment-<name>-<release id>`). */
export const fullyQualifiedName = (name: string, releaseId: number) => `deployment-${name}-${releaseId}`;

const registryKey = (id: number) => `registry-${id}`;

/** The release's app; the registries its containers pull through (their own, else the project's default). */
export function releaseApp(
  release: ReleaseInfo,
  containers: ReleaseContainer[],
  registries: ReadonlyMap<number, RegistryRecord>,
): { app: AppTarget; registries: Record<string, RegistryCredentials> } {
  const names = new Map<string, number>();
  containers.forEach((c, i) => {
    if (!NAME_RE.test(c.name) || c.name.length > CONTAINER_NAME_MAX) {
      fail(
        `/containers/${i}/name`,
        `"${c.name}" is not a valid name: up to ${CONTAINER_NAME_MAX} letters, digits, "_", "." or "-", starting with a letter or digit`,
      );
    }
    const twin = names.get(c.name);
    if (twin !== undefined) fail(`/containers/${i}/name`, `"${c.name}" is also the name of /containers/${twin}`);
    names.set(c.name, i);
  });
  const services: Record<string, ServiceTarget> = {};
  const volumes: Record<string, VolumeTarget> = {};
  const used: Record<string, RegistryCredentials> = {};
  containers.forEach((c, i) => {
    const at = `/containers/${i}`;
    const registryId = c.registry ?? release.project.default_registry;
    const registry = registryId !== null ? registries.get(registryId) : undefined;
    if (registryId !== null && !registry) {
      fail(`${at}/registry`, c.registry !== null ? `no registry ${registryId}` : `the project's default registry ${registryId} does not exist`);
    }
    const ctx: Ctx = { at: `${at}/startup_parameters`, self: c.name, names, releaseId: release.id, volumes };
    services[c.name] = {
      ...serviceOptions(c.startup_parameters, ctx),
      image: imageReference(c, registry, at),
      ...(c.required_tags.length ? { required_tags: requiredTags(c.required_tags, `${at}/required_tags`) } : {}),
      ...(registry ? { registry: registryKey(registry.id) } : {}),
      ...(c.purge_data ? { purge_data: true } : {}),
    };
    if (registry) used[registryKey(registry.id)] = { url: registry.url, username: registry.username, password: registry.password };
  });
  return {
    app: {
      name: release.project.name,
      uuid: String(release.project.id),
      release: {
        id: release.id,
        commit: release.version_hash,
        services,
        ...(Object.keys(volumes).length ? { volumes } : {}),
        ...(release.remove_containers?.length ? { remove_containers: release.remove_containers } : {}),
      },
    },
    registries: used,
  };
}

/** Where a field of the target's service comes from in the release (for errors of the whole-target check). */
const RELEASE_FIELD: Record<string, string> = {
  image: 'image',
  required_tags: 'required_tags',
  registry: 'registry',
  volumes: 'startup_parameters/binds',
  ports: 'startup_parameters/port_bindings',
  restart: 'startup_parameters/restart_policy',
  depends_on: 'startup_parameters/network_mode',
  stop_grace_period: 'startup_parameters/stop_timeout',
  purge_data: 'purge_data',
};

/**
 * releaseApp, then the check a device's whole target gets (schema and cross-references), so that
 * a release the API accepts can always become part of a valid target. Errors name the release's field.
 */
export function validateReleaseApp(
  release: ReleaseInfo,
  containers: ReleaseContainer[],
  registries: ReadonlyMap<number, RegistryRecord>,
): ReturnType<typeof releaseApp> {
  const out = releaseApp(release, containers, registries);
  try {
    validateTargetState({ apps: { [String(Math.max(1, release.project.id))]: out.app }, registries: out.registries });
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    const m = err.field.match(/^\/apps\/[^/]+\/release\/services\/([^/]+)(?:\/([^/]+)(\/.*)?)?/);
    const index = m ? containers.findIndex((c) => c.name === m[1]) : -1;
    if (index < 0) fail('/containers', err.reason);
    fail(`/containers/${index}${releaseField(containers[index]!, m![2], m![3])}`, err.reason);
  }
  return out;
}

/** The release field a target service field came from (`/startup_parameters/healthcheck/interval`). */
function releaseField(c: ReleaseContainer, key: string | undefined, rest = ''): string {
  if (!key) return '';
  if (key === 'depends_on' && c.startup_parameters.depends_on) return `/startup_parameters/depends_on${rest}`;
  const mapped = RELEASE_FIELD[key];
  // fields of the same name have the same shape below; renamed ones do not (ports expand ranges)
  return mapped ? `/${mapped}` : `/startup_parameters/${key}${rest}`;
}

function fail(field: string, reason: string): never {
  throw new ValidationError(field, reason, 'release');
}

// ---- image -------------------------------------------------------------------------------------

const HOST_RE = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?$/;
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const isHostComponent = (s: string) => s.includes('.') || s.includes(':') || s === 'localhost';

/**
 * `<registry host>/<image>:<tag>`: an image that names no registry host of its own is pulled
 * through the container's registry. A tag of the form `sha256:<hex>` pins a digest.
 */
function imageReference(c: ReleaseContainer, registry: RegistryRecord | undefined, at: string): string {
  const image = c.image;
  if (!image || image.length > 255) fail(`${at}/image`, 'an image name of 1 to 255 characters is required');
  if (image.includes('@') || image.lastIndexOf(':') > image.lastIndexOf('/')) fail(`${at}/image`, `"${image}": give the tag in "tag", not in the image`);
  const parts = image.split('/');
  const ownHost = parts.length > 1 && isHostComponent(parts[0]!);
  if (ownHost && !HOST_RE.test(parts[0]!)) fail(`${at}/image`, `"${parts[0]}" is not a registry host`);
  for (const part of ownHost ? parts.slice(1) : parts) {
    if (!PATH_COMPONENT_RE.test(part)) fail(`${at}/image`, `"${image}" is not an image name: lowercase letters and digits, separated by "/", ".", "_" or "-"`);
  }
  const tag = c.tag;
  const digest = DIGEST_RE.test(tag);
  if (!digest && !TAG_RE.test(tag)) fail(`${at}/tag`, `"${tag}" is not a tag: up to 128 letters, digits, "_", "." or "-" (or sha256:<digest>)`);
  let prefix = '';
  if (registry && !ownHost) {
    const host = registryHost(registry.url);
    // (the url is not echoed: one stored before urls were checked may hold credentials)
    if (!host) fail(`${at}/registry`, `registry ${registry.id} has no usable address: correct its url`);
    prefix = `${host}/`;
  }
  return `${prefix}${image}${digest ? '@' : ':'}${tag}`;
}

/** `https://registry.example.com:5000/v2/` → `registry.example.com:5000`; a namespace path is kept. */
export function registryHost(url: string): string | undefined {
  const host = url
    .trim()
    .replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')
    .replace(/\/+$/, '')
    .replace(/\/v[12]$/, '');
  const [first, ...path] = host.split('/');
  if (!first || !HOST_RE.test(first) || !path.every((p) => PATH_COMPONENT_RE.test(p))) return undefined;
  return host;
}

function requiredTags(tags: string[], at: string): string[] {
  tags.forEach((t, i) => {
    if (!TAG_RE.test(t)) fail(`${at}/${i}`, `"${t}" is not a tag`);
  });
  return tags;
}

// ---- startup parameters ------------------------------------------------------------------------

interface Ctx {
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

function serviceOptions(p: StartupParameters, ctx: Ctx): ServiceOptions {
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

/** Salt takes a list or a comma-separated string. */
const list = (v: string[] | string): string[] =>
  Array.isArray(v)
    ? v.map((s) => s.trim())
    : v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
const escapePointer = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

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

/**
 * Words of a POSIX shell-quoted string, as Python's shlex.split: whitespace separates words,
 * '…' is literal, "…" is literal but for \" and \\, a backslash outside quotes escapes the next
 * character. Nothing is expanded: `$HOME`, `*`, `;` and `#` stay as written.
 */
export function shellWords(s: string, at: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (/\s/.test(ch)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (ch === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) fail(at, 'unterminated single quote');
      word = (word ?? '') + s.slice(i + 1, end);
      i = end;
    } else if (ch === '"') {
      word ??= '';
      for (i++; ; i++) {
        if (i >= s.length) fail(at, 'unterminated double quote');
        const c = s[i]!;
        if (c === '"') break;
        if (c === '\\' && (s[i + 1] === '"' || s[i + 1] === '\\')) word += s[++i];
        else word += c;
      }
    } else if (ch === '\\') {
      if (i + 1 >= s.length) fail(at, 'a trailing backslash escapes nothing');
      word = (word ?? '') + s[++i];
    } else {
      word = (word ?? '') + ch;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
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

const IPV4_RE = /^\d{1,3}(?:\.\d{1,3}){3}$/;
const IPV6_RE = /^\[?[0-9a-fA-F]*:[0-9a-fA-F:]*\]?$/;
const isIp = (s: string) => IPV4_RE.test(s) || IPV6_RE.test(s);
const bracketed = (ip: string) => (ip.includes(':') && !ip.startsWith('[') ? `[${ip}]` : ip);
const MAX_PORTS = 1024;

function portNumber(v: string | number, field: string, what: string): number {
  const n = typeof v === 'number' ? v : /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 65535) fail(field, `${JSON.stringify(v)} is not a ${what} port (1-65535)`);
  return n;
}

/** The target's port form: `[ip:][hostPort]:containerPort/proto`, or `containerPort/proto` for a random host port. */
function portEntry(container: number, proto: string, host: { ip?: string; port?: number }): string {
  if (host.ip) return `${bracketed(host.ip)}:${host.port ?? ''}:${container}/${proto}`;
  return host.port !== undefined ? `${host.port}:${container}/${proto}` : `${container}/${proto}`;
}

function portBindings(pb: NonNullable<StartupParameters['port_bindings']>, at: string): string[] {
  const out: string[] = [];
  const push = (entry: string, field: string) => {
    if (out.length >= MAX_PORTS) fail(field, `more than ${MAX_PORTS} port bindings`);
    out.push(entry);
  };
  if (typeof pb === 'object' && !Array.isArray(pb)) {
    // docker-py: {"80/tcp": 8080, "53/udp": ["127.0.0.1", 53], "9000": [9000, 9001], "22": null}
    for (const [key, value] of Object.entries(pb)) {
      const field = `${at}/${escapePointer(key)}`;
      const m = key.match(/^(\d+)(?:\/(tcp|udp|sctp))?$/);
      if (!m) fail(field, `"${key}" is not a container port ("80", "80/tcp", "53/udp")`);
      const container = portNumber(m[1]!, field, 'container');
      const proto = m[2] ?? 'tcp';
      if (Array.isArray(value) && !isTuple(value)) {
        for (const [i, h] of value.entries()) push(portEntry(container, proto, dockerPyHost(h, `${field}/${i}`)), field);
      } else push(portEntry(container, proto, dockerPyHost(value, field)), field);
    }
    return out;
  }
  list(pb).forEach((spec, i) => {
    const field = Array.isArray(pb) ? `${at}/${i}` : at;
    for (const entry of saltPorts(spec, field)) push(entry, field);
  });
  return out;
}

/** `["127.0.0.1", 8080]` or `["127.0.0.1"]` is one (ip, port) binding; other lists are several bindings. */
const isTuple = (v: unknown[]): boolean =>
  v.length >= 1 && v.length <= 2 && typeof v[0] === 'string' && isIp(v[0]) && (v.length === 1 || typeof v[1] === 'number' || /^\d+$/.test(String(v[1])));

function dockerPyHost(h: unknown, field: string): { ip?: string; port?: number } {
  if (h === null || h === '') return {};
  if (typeof h === 'number') return { port: portNumber(h, field, 'host') };
  if (Array.isArray(h)) {
    if (!isTuple(h)) fail(field, `${JSON.stringify(h)} is not [host_ip] or [host_ip, host_port]`);
    return { ip: h[0] as string, ...(h.length === 2 ? { port: portNumber(h[1] as string | number, field, 'host') } : {}) };
  }
  const s = String(h);
  if (/^\d+$/.test(s)) return { port: portNumber(s, field, 'host') };
  if (isIp(s)) return { ip: s };
  const m = s.match(/^(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):(\d*)$/);
  if (!m) fail(field, `"${s}" is not a host port, "host_ip:host_port" or "host_ip:"`);
  return { ip: m[1]!, ...(m[2] ? { port: portNumber(m[2], field, 'host') } : {}) };
}

/** Salt: `[host_ip:[host_port]:]container_port`, `host_port:container_port`, `/udp`, ranges `5000-5002:5000-5002`. */
function saltPorts(spec: string, field: string): string[] {
  const m = spec.match(/^(?:(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?(?:(\d+(?:-\d+)?)?:)?(\d+(?:-\d+)?)(?:\/(tcp|udp|sctp))?$/);
  if (!m) fail(field, `"${spec}" is not "[host_ip:[host_port]:]container_port[/udp]"`);
  const [, ip, hostSpec, containerSpec, proto = 'tcp'] = m;
  const range = (r: string, what: string): number[] => {
    const [a, b = a] = r.split('-');
    const from = portNumber(a!, field, what);
    const to = portNumber(b!, field, what);
    if (to < from) fail(field, `"${r}" is not a port range`);
    if (to - from >= MAX_PORTS) fail(field, `"${r}": more than ${MAX_PORTS} ports`);
    return Array.from({ length: to - from + 1 }, (_, k) => from + k);
  };
  const containers = range(containerSpec!, 'container');
  const hosts = hostSpec ? range(hostSpec, 'host') : undefined;
  if (hosts && hosts.length !== containers.length) fail(field, `"${spec}": the host and container ranges differ in length`);
  return containers.map((c, k) => portEntry(c, proto, { ...(ip ? { ip } : {}), ...(hosts ? { port: hosts[k]! } : {}) }));
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
