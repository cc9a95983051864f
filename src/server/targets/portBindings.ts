// Port bindings of a release container, in Salt's forms (`"127.0.0.1:8080:80/udp"`, ranges) and
// docker-py's (`{"80/tcp": 8080}`) → the target's `ports`.
import { escapePointer, fail, list } from './releaseField.js';
import type { StartupParameters } from './releaseSchema.js';

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

export function portBindings(pb: NonNullable<StartupParameters['port_bindings']>, at: string): string[] {
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
