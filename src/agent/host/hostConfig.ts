// Host OS configuration the device API may change: hostname and the redsocks transparent proxy.
// Kept as files under a host root, laid out as on balenaOS: `etc/hostname`,
// `mnt/boot/system-proxy/redsocks.conf` and `mnt/boot/system-proxy/no_proxy`.
import fs from '../../shared/fsAsync.js';
import path from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { assertValid } from '../../shared/validate.js';
import { writeFileAtomic } from '../../shared/atomicFile.js';

export const PROXY_TYPES = ['socks4', 'socks5', 'http-connect', 'http-relay'] as const;

const HOST_PATTERN = '^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$';
const CIDR_PATTERN = '^[0-9]{1,3}(\\.[0-9]{1,3}){3}(/[0-9]{1,2})?$|^[0-9a-fA-F:]+(/[0-9]{1,3})?$';

export const ProxySchema = Type.Object(
  {
    type: Type.Optional(Type.Union(PROXY_TYPES.map((t) => Type.Literal(t)))),
    ip: Type.Optional(Type.String({ pattern: HOST_PATTERN, description: 'proxy host name or IP address' })),
    port: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 65535 }), Type.String({ pattern: '^[0-9]{1,5}$' })])),
    login: Type.Optional(Type.String({ pattern: '^[^"\\r\\n\\\\]*$' })),
    password: Type.Optional(Type.String({ pattern: '^[^"\\r\\n\\\\]*$' })),
    noProxy: Type.Optional(Type.Array(Type.String({ pattern: CIDR_PATTERN }))),
  },
  { additionalProperties: false },
);

/** null is accepted too, for both fields, and means "back to the default" (see parseHostConfigPatch). */
const HostConfigPatchSchema = Type.Object(
  {
    network: Type.Object(
      {
        hostname: Type.Optional(
          Type.String({ pattern: '^$|^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$', description: 'a host name label, or "" for the default' }),
        ),
        proxy: Type.Optional(ProxySchema),
      },
      { additionalProperties: false },
    ),
    force: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type HostConfigPatch = Static<typeof HostConfigPatchSchema>;

/** Validates a `PATCH /v1/device/host-config` body; the error names the offending field. */
export function parseHostConfigPatch(body: unknown): HostConfigPatch {
  const net = (body as { network?: Record<string, unknown> } | null)?.network;
  const normalised =
    net && typeof net === 'object'
      ? { ...(body as object), network: { ...net, ...(net.hostname === null ? { hostname: '' } : {}), ...(net.proxy === null ? { proxy: {} } : {}) } }
      : body;
  assertValid(HostConfigPatchSchema, normalised, 'host config');
  return normalised;
}

export interface ProxyConfig {
  type?: string;
  ip?: string;
  port?: number;
  login?: string;
  password?: string;
  noProxy?: string[];
}

export interface HostConfig {
  network: { hostname: string; proxy?: ProxyConfig };
}

const REDSOCKS_KEYS = ['type', 'ip', 'port', 'login', 'password'] as const;

export class HostConfigFiles {
  constructor(
    readonly root: string,
    /** the hostname when none is set: the first 7 characters of the device uuid (as balena) */
    private readonly defaultHostname: string,
  ) {}

  private file(...parts: string[]): string {
    return path.join(this.root, ...parts);
  }

  async read(): Promise<HostConfig> {
    const hostname = (await readText(this.file('etc', 'hostname')))?.trim() || this.defaultHostname;
    const conf = await readText(this.file('mnt', 'boot', 'system-proxy', 'redsocks.conf'));
    const network: HostConfig['network'] = { hostname };
    if (conf) {
      const proxy = parseRedsocks(conf);
      const noProxy = (await readText(this.file('mnt', 'boot', 'system-proxy', 'no_proxy')))
        ?.split('\n')
        .map((l) => l.trim())
        .filter(Boolean);
      if (noProxy?.length) proxy.noProxy = noProxy;
      network.proxy = proxy;
    }
    return { network };
  }

  /** Applies a validated patch: absent fields are left alone, null/empty ones go back to defaults. */
  async apply(patch: HostConfigPatch): Promise<{ hostnameChanged: boolean; proxyChanged: boolean }> {
    const net = patch.network ?? {};
    let hostnameChanged = false;
    let proxyChanged = false;
    if (net.hostname !== undefined) {
      await fs.mkdir(this.file('etc'), { recursive: true });
      await writeFileAtomic(this.file('etc', 'hostname'), `${net.hostname || this.defaultHostname}\n`, 0o644);
      hostnameChanged = true;
    }
    if (net.proxy !== undefined) {
      const dir = this.file('mnt', 'boot', 'system-proxy');
      const proxy = net.proxy ?? {};
      const { noProxy, ...settings } = proxy;
      if (Object.keys(settings).length === 0) {
        await fs.rm(path.join(dir, 'redsocks.conf'), { force: true });
        await fs.rm(path.join(dir, 'no_proxy'), { force: true });
      } else {
        await fs.mkdir(dir, { recursive: true });
        await writeFileAtomic(path.join(dir, 'redsocks.conf'), redsocksConf(settings));
        if (noProxy?.length) await writeFileAtomic(path.join(dir, 'no_proxy'), `${noProxy.join('\n')}\n`);
        else await fs.rm(path.join(dir, 'no_proxy'), { force: true });
      }
      proxyChanged = true;
    }
    return { hostnameChanged, proxyChanged };
  }
}

function redsocksConf(proxy: Omit<Static<typeof ProxySchema>, 'noProxy'>): string {
  const lines = REDSOCKS_KEYS.filter((k) => proxy[k] !== undefined).map((k) =>
    k === 'login' || k === 'password' ? `\t${k} = "${proxy[k]}";` : `\t${k} = ${proxy[k]};`,
  );
  return [
    'base {',
    '\tlog_debug = off;',
    '\tlog_info = on;',
    '\tlog = stderr;',
    '\tdaemon = off;',
    '\tredirector = iptables;',
    '}',
    '',
    'redsocks {',
    ...lines,
    '\tlocal_ip = 127.0.0.1;',
    '\tlocal_port = 12345;',
    '}',
    '',
  ].join('\n');
}

/** The proxy settings of the `redsocks { … }` block (the other keys are the redirector's own). */
export function parseRedsocks(conf: string): ProxyConfig {
  const block = conf.match(/redsocks\s*\{([^}]*)\}/)?.[1] ?? '';
  const proxy: ProxyConfig = {};
  for (const [, key, raw] of block.matchAll(/^\s*(\w+)\s*=\s*(.*?);\s*$/gm)) {
    const value = raw!.replace(/^"(.*)"$/, '$1');
    if (key === 'port') proxy.port = Number(value);
    else if (key === 'type' || key === 'ip' || key === 'login' || key === 'password') proxy[key] = value;
  }
  return proxy;
}

async function readText(file: string): Promise<string | undefined> {
  return fs.readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
}
