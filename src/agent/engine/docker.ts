// The Engine API client. Unix socket (or tcp for development); docker-modem's ssh transport is
// never used and is left out of the agent bundle.
import http from 'node:http';
import Docker from 'dockerode';

export function createDocker(host = process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock'): Docker {
  if (host.startsWith('unix://')) return overUnixSocket(host.slice('unix://'.length));
  if (host.startsWith('/')) return overUnixSocket(host);
  const url = new URL(host.replace(/^tcp:/, 'http:'));
  return new Docker({ host: url.hostname, port: Number(url.port || 2375), protocol: 'http' });
}

function overUnixSocket(socketPath: string): Docker {
  // Requests over the socket carry the host name `localhost`, and Node's http agent asks
  // `net.isIP('localhost')` on each one to derive a TLS server name: that compiles the IPv6
  // regular expression, whose bytecode (~100 KB under --lite-mode) then stays in the heap. A server
  // name means nothing to plain http (https has its own global agent), so http's is empty.
  (http.globalAgent as http.Agent & { options: { servername?: string } }).options.servername = '';
  return new Docker({ socketPath });
}

export type { Docker };
