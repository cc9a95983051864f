// Who is asking, before any key is looked at, for the device API and the local command API:
// - a browser on another origin (a web page the device's user has open: CSRF) is refused on every
//   route, whatever the mode: its requests carry `Origin` (or `Sec-Fetch-Site`, or a `Referer`)
//   naming another site. The balena CLI, curl and apps' HTTP clients send none of these.
// - DNS rebinding (a page whose own domain now resolves to the device) is same-origin, but its
//   requests name that domain in `Host`: where a request is accepted without a key (local mode,
//   the command API on loopback), the Host must name the device as the LAN or the device reaches it.
import type { IncomingHttpHeaders } from 'node:http';
import net from 'node:net';
import { BosunError } from '../../shared/errors.js';

/** A request refused for where it comes from (403). */
export class ForbiddenRequest extends BosunError {
  override name = 'ForbiddenRequest';
  readonly statusCode = 403;
}

/** The key of a request: `?apikey=`, or `Authorization: Bearer|ApiKey|APIToken <key>` (AutoPi's cloud scheme). */
export function presentedKey(query: unknown, headers: IncomingHttpHeaders): string | undefined {
  const q = (query as Record<string, unknown> | undefined)?.apikey;
  if (typeof q === 'string' && q) return q;
  return headers.authorization?.match(/^(?:Bearer|ApiKey|APIToken)\s+(\S+)$/i)?.[1];
}

/** The host of a `Host` header or URL authority (`name`, `1.2.3.4`, `::1`), lower case; undefined if it is not one. */
export function hostOf(authority: string | undefined): string | undefined {
  if (!authority) return undefined;
  try {
    const { hostname, username, password, pathname } = new URL(`http://${authority}`);
    if (username || password || pathname !== '/') return undefined;
    return hostname
      .replace(/^\[(.*)\]$/, '$1')
      .replace(/\.$/, '')
      .toLowerCase();
  } catch {
    return undefined;
  }
}

/** `host[:port]` as URL normalises it (default port dropped), for comparing origins. */
function authorityOf(url: string): string | undefined {
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.host : undefined;
  } catch {
    return undefined;
  }
}

/** Why the request comes from a browser page of another origin; undefined when it does not. */
export function crossOriginReason(headers: IncomingHttpHeaders): string | undefined {
  const site = headers['sec-fetch-site'];
  if (typeof site === 'string' && site !== 'same-origin' && site !== 'none') return `Sec-Fetch-Site: ${site}`;
  const origin = headers.origin ?? headers.referer;
  if (origin === undefined) return undefined;
  const own = headers.host ? authorityOf(`http://${headers.host}`) : undefined;
  const theirs = authorityOf(origin);
  if (!own || theirs !== own) return `${headers.origin !== undefined ? 'Origin' : 'Referer'} ${origin}`;
  return undefined;
}

/** Throws ForbiddenRequest for a request a browser sent from another origin. */
export function assertSameOrigin(headers: IncomingHttpHeaders): void {
  const why = crossOriginReason(headers);
  if (why) throw new ForbiddenRequest(`cross-origin requests are refused (${why}): call the device API from a program, not from a web page`);
}

const isLoopbackIp = (host: string): boolean => {
  if (net.isIPv4(host)) return host.startsWith('127.');
  if (!net.isIPv6(host)) return false;
  if (host === '::1') return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(host);
  return !!mapped && mapped[1]!.startsWith('127.');
};

/**
 * Local mode waives the key for requests addressed to the device the way the LAN reaches it: by IP
 * address, as localhost, by its mDNS `<name>.local` or a bare host name (`balena push <ip>` and
 * `balena push <name>.local` send those). A public domain name is what DNS rebinding would send.
 */
export function isLanHost(hostHeader: string | undefined): boolean {
  const host = hostOf(hostHeader);
  if (!host) return false;
  return net.isIP(host) !== 0 || host === 'localhost' || host.endsWith('.localhost') || host.endsWith('.local') || !host.includes('.');
}

/**
 * The local command API answers only requests addressed to loopback (`localhost`, 127.0.0.0/8,
 * ::1), or to the address it was told to listen on (any IP address when that is all interfaces).
 */
export function isCommandApiHost(hostHeader: string | undefined, listenAddress: string): boolean {
  const host = hostOf(hostHeader);
  if (!host) return false;
  if (host === 'localhost' || isLoopbackIp(host)) return true;
  const listen = listenAddress.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (listen === '0.0.0.0' || listen === '::') return net.isIP(host) !== 0;
  return host === listen;
}
