// The Engine API client. Unix socket (or tcp for development); docker-modem's ssh transport is
// never used and is left out of the agent bundle.
import Docker from 'dockerode';

export function createDocker(host = process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock'): Docker {
  if (host.startsWith('unix://')) return new Docker({ socketPath: host.slice('unix://'.length) });
  if (host.startsWith('/')) return new Docker({ socketPath: host });
  const url = new URL(host.replace(/^tcp:/, 'http:'));
  return new Docker({ host: url.hostname, port: Number(url.port || 2375), protocol: 'http' });
}

export type { Docker };
