// One compose service → one release container: each supported key converted onto the container's
// startup parameters, every other key refused by name with what to do instead.
import type { StartupParameters } from '../targets/releaseSchema.js';
import { bool, fail, isObj, key, list, type Obj, scalar, str, stringMap, strings } from './composeValues.js';
import { parseEnvFile } from './envFile.js';

export interface ComposeContainer {
  name: string;
  image: string;
  tag: string;
  startup_parameters: StartupParameters;
}

/** What a service's keys are checked against: the file's declared volumes, the request's env_file contents. */
export interface ServiceContext {
  volumes: Set<string>;
  envFiles: Readonly<Record<string, string>>;
}

const SERVICE_HINT: Record<string, string> = {
  build: 'not supported: build and push the image, then name it in "image"',
  container_name: 'not supported: containers are named after the service',
  deploy: 'not supported: a release runs one container per service on each device',
  profiles: 'not supported: every service of the file is deployed',
  extends: 'not supported: send one self-contained file',
};

/** Each supported key of a service, converted onto the container. */
const SERVICE_KEYS: Record<string, (v: unknown, at: string, out: ComposeContainer, ctx: ServiceContext) => void> = {
  image: (v, at, out) => Object.assign(out, imageOf(str(v, at), at)),
  command: (v, at, out) => setArgv(out, 'command', v, at),
  entrypoint: (v, at, out) => setArgv(out, 'entrypoint', v, at),
  environment: (v, at, out) => {
    out.startup_parameters.environment = { ...(out.startup_parameters.environment as Record<string, string>), ...environment(v, at) };
  },
  env_file: (v, at, out, ctx) => {
    // environment wins over env_file whatever their order in the file
    const own = out.startup_parameters.environment as Record<string, string> | undefined;
    out.startup_parameters.environment = { ...envFiles(v, at, ctx), ...own };
  },
  ports: (v, at, out) => {
    out.startup_parameters.port_bindings = list(v, at).map((p, i) => port(p, key(at, i)));
  },
  volumes: (v, at, out, ctx) => {
    out.startup_parameters.binds = list(v, at).map((m, i) => mount(m, key(at, i), ctx));
  },
  networks: (v, at) => {
    const names = Array.isArray(v) ? v : isObj(v) ? Object.keys(v) : fail(at, 'a list or mapping of network names');
    names.forEach((n, i) => {
      if (n !== 'default') fail(Array.isArray(v) ? key(at, i) : key(at, String(n)), 'only the default network is supported');
      if (isObj(v) && v.default !== null && !(isObj(v.default) && Object.keys(v.default).length === 0))
        fail(key(at, 'default'), 'network options are not supported');
    });
  },
  network_mode: (v, at, out) => {
    out.startup_parameters.network_mode = str(v, at);
  },
  restart: (v, at, out) => {
    out.startup_parameters.restart_policy = str(v, at);
  },
  labels: (v, at, out) => {
    out.startup_parameters.labels = Array.isArray(v) ? strings(v, at) : stringMap(v, at);
  },
  depends_on: (v, at, out) => {
    out.startup_parameters.depends_on = dependsOn(v, at);
  },
  healthcheck: (v, at, out) => {
    out.startup_parameters.healthcheck = healthcheck(v, at);
  },
  privileged: (v, at, out) => {
    out.startup_parameters.privileged = bool(v, at);
  },
  devices: (v, at, out) => {
    out.startup_parameters.devices = list(v, at).map((d, i) => device(d, key(at, i)));
  },
  cap_add: (v, at, out) => {
    out.startup_parameters.cap_add = strings(v, at);
  },
  cap_drop: (v, at, out) => {
    out.startup_parameters.cap_drop = strings(v, at);
  },
  working_dir: (v, at, out) => {
    out.startup_parameters.working_dir = str(v, at);
  },
  user: (v, at, out) => {
    out.startup_parameters.user = typeof v === 'number' ? String(v) : str(v, at);
  },
  mem_limit: (v, at, out) => {
    out.startup_parameters.mem_limit = typeof v === 'number' ? v : str(v, at);
  },
  stop_signal: (v, at, out) => {
    out.startup_parameters.stop_signal = str(v, at);
  },
  stop_grace_period: (v, at, out) => {
    out.startup_parameters.stop_timeout = seconds(v, at);
  },
};

/** The order keys are applied in: environment after env_file, so that it wins. */
const ORDER = Object.keys(SERVICE_KEYS).sort((a, b) => (a === 'environment' ? 1 : b === 'environment' ? -1 : 0));

/** The container of service `name` (at `at` in the file): unknown keys refused, the rest applied in ORDER. */
export function serviceContainer(name: string, svc: Obj, at: string, ctx: ServiceContext): ComposeContainer {
  for (const k of Object.keys(svc)) {
    if (!(k in SERVICE_KEYS) && !k.startsWith('x-')) fail(key(at, k), SERVICE_HINT[k] ?? 'not supported by Bosun');
  }
  if (svc.image === undefined) fail(key(at, 'image'), 'required: the image to run (Bosun does not build)');
  const out: ComposeContainer = { name, image: '', tag: 'latest', startup_parameters: {} };
  // Compose's default restart policy is "no", as Docker's (and the release model's).
  for (const k of ORDER) {
    if (svc[k] !== undefined && svc[k] !== null) SERVICE_KEYS[k]!(svc[k], key(at, k), out, ctx);
  }
  return out;
}

/** `acme/web:1.0`, `registry.example.com:5000/acme/web`, `web@sha256:…` → image and tag. */
function imageOf(ref: string, at: string): { image: string; tag: string } {
  const digest = ref.indexOf('@');
  if (digest >= 0) {
    const image = ref.slice(0, digest);
    if (image.lastIndexOf(':') > image.lastIndexOf('/')) fail(at, `"${ref}": give a tag or a digest, not both`);
    return { image, tag: ref.slice(digest + 1) };
  }
  const colon = ref.lastIndexOf(':');
  if (colon > ref.lastIndexOf('/')) return { image: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { image: ref, tag: 'latest' };
}

function setArgv(out: ComposeContainer, k: 'command' | 'entrypoint', v: unknown, at: string): void {
  out.startup_parameters[k] = typeof v === 'string' ? v : strings(v, at);
}

function environment(v: unknown, at: string): Record<string, string> {
  if (Array.isArray(v)) {
    return Object.fromEntries(
      v.map((pair, i) => {
        const s = str(pair, key(at, i));
        const eq = s.indexOf('=');
        if (eq < 0) fail(key(at, i), `"${s}" has no value: the server cannot take it from a shell; write ${s}=<value>`);
        return [s.slice(0, eq), s.slice(eq + 1)];
      }),
    );
  }
  if (!isObj(v)) fail(at, 'a mapping or a list of KEY=VALUE');
  return Object.fromEntries(
    Object.entries(v).map(([k, x]) => {
      if (x === null) fail(key(at, k), 'has no value: the server cannot take it from a shell; give one');
      return [k, scalar(x, key(at, k))];
    }),
  );
}

function envFiles(v: unknown, at: string, ctx: ServiceContext): Record<string, string> {
  const files = typeof v === 'string' ? [v] : list(v, at);
  const out: Record<string, string> = {};
  files.forEach((f, i) => {
    const here = typeof v === 'string' ? at : key(at, i);
    let path: string;
    let required = true;
    if (isObj(f)) {
      for (const k of Object.keys(f)) if (k !== 'path' && k !== 'required') fail(key(here, k), 'not supported');
      path = str(f.path, key(here, 'path'));
      if (f.required !== undefined) required = bool(f.required, key(here, 'required'));
    } else path = str(f, here);
    const content = Object.hasOwn(ctx.envFiles, path) ? ctx.envFiles[path] : undefined;
    if (content === undefined) {
      if (required) fail(here, `"${path}" is not in the request's env_files: send its content there, keyed "${path}"`);
      return;
    }
    Object.assign(
      out,
      parseEnvFile(content, (line, reason) => fail(here, `${path} line ${line}: ${reason}`)),
    );
  });
  return out;
}

const PORT_KEYS = new Set(['target', 'published', 'host_ip', 'protocol', 'mode']);

/** Short syntax as is (it is Salt's too); the long syntax written in it. */
function port(p: unknown, at: string): string {
  if (typeof p === 'number') return String(p);
  if (typeof p === 'string') return p;
  if (!isObj(p)) fail(at, 'a port ("8080:80") or a mapping with target');
  for (const k of Object.keys(p)) if (!PORT_KEYS.has(k)) fail(key(at, k), 'not supported');
  if (p.mode !== undefined && p.mode !== 'host' && p.mode !== 'ingress') fail(key(at, 'mode'), 'host or ingress');
  const target = typeof p.target === 'number' ? p.target : fail(key(at, 'target'), 'required: the container port, a number');
  const published = p.published === undefined || p.published === null ? '' : scalar(p.published, key(at, 'published'));
  const ip = p.host_ip === undefined ? '' : str(p.host_ip, key(at, 'host_ip'));
  const proto = p.protocol === undefined ? '' : `/${str(p.protocol, key(at, 'protocol'))}`;
  const host = ip ? `${ip.includes(':') && !ip.startsWith('[') ? `[${ip}]` : ip}:${published}:` : published ? `${published}:` : '';
  return `${host}${target}${proto}`;
}

const MOUNT_KEYS = new Set(['type', 'source', 'target', 'read_only']);

/** `source:/path[:ro|rw]`; a named volume must be declared at the top level, as compose wants. */
function mount(m: unknown, at: string, ctx: ServiceContext): string {
  let source: string;
  let rest: string;
  if (typeof m === 'string') {
    const colon = m.indexOf(':');
    if (colon < 0) fail(at, `"${m}" is an anonymous volume, whose data an update would lose: name it ("data:${m}") and declare it under volumes`);
    source = m.slice(0, colon);
    rest = m.slice(colon);
  } else if (isObj(m)) {
    for (const k of Object.keys(m)) if (!MOUNT_KEYS.has(k)) fail(key(at, k), 'not supported');
    if (m.type !== 'volume' && m.type !== 'bind') fail(key(at, 'type'), 'volume or bind');
    source = str(m.source, key(at, 'source'));
    rest = `:${str(m.target, key(at, 'target'))}${m.read_only === undefined ? '' : bool(m.read_only, key(at, 'read_only')) ? ':ro' : ''}`;
  } else return fail(at, 'a "source:/path[:ro]" string or a mapping');
  if (source.startsWith('.') || source.startsWith('~')) fail(at, `"${source}" is relative to a machine the device is not: give an absolute host path`);
  if (!source.startsWith('/') && !ctx.volumes.has(source)) fail(at, `volume "${source}" is not declared under the top-level volumes`);
  return `${source}${rest}`;
}

function device(d: unknown, at: string): string {
  if (typeof d === 'string') return d;
  if (!isObj(d)) fail(at, 'a "/dev/host[:/dev/container][:rwm]" string');
  for (const k of Object.keys(d)) if (k !== 'source' && k !== 'target' && k !== 'permissions') fail(key(at, k), 'not supported');
  const source = str(d.source, key(at, 'source'));
  const target = d.target === undefined ? '' : `:${str(d.target, key(at, 'target'))}`;
  return `${source}${target}${d.permissions === undefined ? '' : `:${str(d.permissions, key(at, 'permissions'))}`}`;
}

function dependsOn(v: unknown, at: string): string[] {
  if (Array.isArray(v)) return strings(v, at);
  if (!isObj(v)) fail(at, 'a list or mapping of service names');
  return Object.entries(v).map(([name, opts]) => {
    const here = key(at, name);
    if (opts === null) return name;
    if (!isObj(opts)) fail(here, 'a mapping (condition)');
    for (const k of Object.keys(opts)) if (k !== 'condition' && k !== 'required') fail(key(here, k), 'not supported');
    if (opts.condition !== undefined && opts.condition !== 'service_started') {
      fail(key(here, 'condition'), 'only service_started is supported: a service starts after the services it depends on');
    }
    if (opts.required !== undefined && opts.required !== true) fail(key(here, 'required'), 'only true is supported');
    return name;
  });
}

const HEALTHCHECK_KEYS = new Set(['test', 'interval', 'timeout', 'retries', 'start_period', 'disable']);

function healthcheck(v: unknown, at: string): NonNullable<StartupParameters['healthcheck']> {
  if (!isObj(v)) fail(at, 'a mapping (test, interval, timeout, retries, start_period)');
  for (const k of Object.keys(v)) if (!HEALTHCHECK_KEYS.has(k)) fail(key(at, k), 'not supported');
  if (v.disable === true) return { test: ['NONE'] };
  if (v.disable !== undefined && v.disable !== false) fail(key(at, 'disable'), 'true or false');
  if (v.test === undefined) fail(key(at, 'test'), 'required');
  const out: NonNullable<StartupParameters['healthcheck']> = { test: typeof v.test === 'string' ? v.test : strings(v.test, key(at, 'test')) };
  for (const k of ['interval', 'timeout', 'start_period'] as const) {
    if (v[k] === undefined) continue;
    const d = str(v[k], key(at, k));
    if (!/^(\d+(ms|s|m|h))+$/.test(d)) fail(key(at, k), `"${d}" is not a duration in whole units like 10s, 500ms or 1m30s`);
    out[k] = d;
  }
  if (v.retries !== undefined) {
    if (!Number.isInteger(v.retries) || (v.retries as number) < 0) fail(key(at, 'retries'), 'a whole number of at least 0');
    out.retries = v.retries as number;
  }
  return out;
}

const UNIT_SECONDS: Record<string, number> = { h: 3600, m: 60, s: 1 };

/** `1m30s`, `10s`, or a number of seconds → whole seconds. */
function seconds(v: unknown, at: string): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  const s = typeof v === 'string' ? v : '';
  if (!/^(\d+[hms])+$/.test(s)) fail(at, `${JSON.stringify(v)} is not a duration in whole seconds like 10s or 1m30s`);
  return [...s.matchAll(/(\d+)([hms])/g)].reduce((sum, [, n, unit]) => sum + Number(n) * UNIT_SECONDS[unit!]!, 0);
}
