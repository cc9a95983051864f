// A Compose Specification file → a release's containers (the AutoPi model of services/releases.ts),
// so a compose release and a container-list release are one thing from there on. Pure. Every key
// is either converted or refused by name (`services.web.ports[1]`): nothing is silently dropped.
// Variables are not interpolated (the server has no shell environment): `$$` is a literal `$`,
// and any other `$VAR` or `${VAR}` is refused. env_file contents come with the request (`env_files`).
// Here the document (parsing, top-level keys); each service's keys: composeService.ts.
import { parseDocument } from 'yaml';
import { ValidationError } from '../../shared/errors.js';
import { type ComposeContainer, serviceContainer } from './composeService.js';
import { fail, isObj, key, type Obj } from './composeValues.js';

/** The largest compose file taken (bytes). */
export const COMPOSE_MAX_BYTES = 256 * 1024;
/** YAML aliases resolved at most (a "billion laughs" file is refused, not expanded). */
const MAX_ALIASES = 100;

/** The compose text, parsed with YAML 1.2's core schema, duplicate keys and alias bombs refused. */
export function parseCompose(text: string): Obj {
  if (Buffer.byteLength(text) > COMPOSE_MAX_BYTES) fail('compose', `larger than ${COMPOSE_MAX_BYTES / 1024} KiB`);
  let doc: unknown;
  try {
    const parsed = parseDocument(text, { uniqueKeys: true, merge: true, prettyErrors: true, strict: true });
    const first = parsed.errors[0];
    if (first) fail('compose', `not valid YAML: ${first.message.split('\n')[0]}`);
    doc = parsed.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (err) {
    if (err instanceof ValidationError) throw err;
    fail('compose', `not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (!isObj(doc)) fail('compose', 'a compose file is a mapping with "services"');
  return literals(doc, '') as Obj;
}

/** Every string with `$$` made `$`; a `$VAR` or `${VAR}` (which compose would take from a shell) refused. */
function literals(v: unknown, path: string): unknown {
  if (typeof v === 'string') {
    if (/\$(?!\$)(?=[{A-Za-z_])/.test(v.replace(/\$\$/g, ''))) {
      fail(path || 'compose', `${JSON.stringify(v)} uses a variable: the server does not interpolate; write the value, or $$ for a literal $`);
    }
    return v.replace(/\$\$/g, '$');
  }
  if (Array.isArray(v)) return v.map((x, i) => literals(x, key(path, i)));
  if (isObj(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, literals(x, path ? key(path, k) : k)]));
  return v;
}

/** The containers of a compose file, in the order of its services. `envFiles`: env_file contents by the path the file names. */
export function composeContainers(text: string, envFiles: Readonly<Record<string, string>> = {}): ComposeContainer[] {
  const doc = parseCompose(text);
  for (const k of Object.keys(doc)) {
    if (k === 'services' || k === 'volumes' || k === 'networks' || k === 'version' || k.startsWith('x-')) continue;
    fail(k, TOP_LEVEL_HINT[k] ?? 'not supported by Bosun');
  }
  const volumes = declaredVolumes(doc.volumes);
  declaredNetworks(doc.networks);
  if (doc.version !== undefined && typeof doc.version !== 'string' && typeof doc.version !== 'number') fail('version', 'a string');
  if (!isObj(doc.services)) fail('services', doc.services === undefined ? 'required: a mapping of service names to services' : 'a mapping of service names');
  return Object.entries(doc.services).map(([name, svc]) => {
    const at = key('services', name);
    if (!isObj(svc)) fail(at, 'a mapping (image, command, …)');
    return serviceContainer(name, svc, at, { volumes, envFiles });
  });
}

const TOP_LEVEL_HINT: Record<string, string> = {
  name: 'not supported: the project is the one the release is created in',
  secrets: 'not supported: Bosun has no secrets store yet',
  configs: 'not supported: mount a host file with volumes instead',
  include: 'not supported: send one compose file',
};

function declaredVolumes(v: unknown): Set<string> {
  if (v === undefined || v === null) return new Set();
  if (!isObj(v)) fail('volumes', 'a mapping of volume names');
  for (const [name, opts] of Object.entries(v)) {
    if (opts !== null && !(isObj(opts) && Object.keys(opts).length === 0)) {
      fail(key('volumes', name), 'volume options (driver, external, name, labels) are not supported: the app gets a local volume of that name');
    }
  }
  return new Set(Object.keys(v));
}

function declaredNetworks(v: unknown): void {
  if (v === undefined || v === null) return;
  if (!isObj(v)) fail('networks', 'a mapping of network names');
  for (const [name, opts] of Object.entries(v)) {
    if (name !== 'default') fail(key('networks', name), 'only the default network is supported: every service of a release shares the app network');
    if (opts !== null && !(isObj(opts) && Object.keys(opts).length === 0)) fail(key('networks', name), 'network options are not supported');
  }
}

/** Compose keys by the startup parameter they became. */
const COMPOSE_KEY: Record<string, string> = { binds: 'volumes', port_bindings: 'ports', restart_policy: 'restart', stop_timeout: 'stop_grace_period' };

/**
 * The compose path of a release field (`/containers/1/startup_parameters/port_bindings/0` →
 * `services.web.ports[0]`), for the errors the release's own checks find in converted containers.
 */
export function composePath(pointer: string, containers: readonly { name: string }[]): string {
  const [, , index, field, param, ...rest] = pointer.split('/');
  const c = index !== undefined && /^\d+$/.test(index) ? containers[Number(index)] : undefined;
  if (!c) return 'services';
  let path = key('services', c.name);
  if (field === 'image' || field === 'tag' || field === 'required_tags') return key(path, 'image');
  if (field !== 'startup_parameters' || param === undefined) return path;
  path = key(path, COMPOSE_KEY[param] ?? param);
  for (const part of rest) path = key(path, /^\d+$/.test(part) ? Number(part) : part.replace(/~1/g, '/').replace(/~0/g, '~'));
  return path;
}
