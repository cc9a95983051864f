// Binds the device API's port when the agent starts, but loads the API itself (fastify and the
// routes, several MB of RSS) only when the first request arrives: many devices run apps that never
// call it, and the agent's memory budget is small. Calls relayed over the device link (the
// control plane's supervisor proxy) go through the same handlers, in process.
import http from 'node:http';
import type { Agent } from '../agent.js';
import type { Api } from './apiRequest.js';

export interface ApiServer {
  readonly port: number;
  close(): Promise<void>;
}

/** An API built on first use and kept (a failed build is retried on the next use). */
export function lazyApi(build: () => Promise<Api>): () => Promise<Api> {
  let app: Promise<Api> | undefined;
  return () => {
    app ??= build();
    app.catch(() => (app = undefined));
    return app;
  };
}

/** The device API (balena Supervisor API), over the agent's port (both loaded with the first request). */
export const deviceApiLoader = (agent: Agent) =>
  lazyApi(async () => {
    const [{ buildDeviceApi }, { agentPort }] = await Promise.all([import('./deviceApi.js'), import('./agentPort.js')]);
    return buildDeviceApi(agentPort(agent));
  });

export interface RelayedCall {
  method: string;
  path: string;
  body?: unknown;
}
export interface RelayedAnswer {
  status: number;
  body: string;
  headers: Record<string, string>;
}

/** A call relayed by the control plane (its supervisor proxy): the same handlers as local callers, with `key`. */
export async function relayCall(api: Api, key: string, call: RelayedCall): Promise<RelayedAnswer> {
  const res = await api.inject({
    method: call.method as 'GET',
    url: call.path,
    headers: { authorization: `Bearer ${key}`, ...(call.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(call.body !== undefined ? { payload: JSON.stringify(call.body) } : {}),
  });
  const type = res.headers['content-type'];
  return { status: res.statusCode, body: res.body, headers: type ? { 'content-type': String(type) } : {} };
}

/** `name` is for the log: which API could not be built. */
export async function startApiServer(agent: Agent, name: string, load: () => Promise<Api>, port: number, address: string): Promise<ApiServer> {
  const server = http.createServer((req, res) => {
    load().then(
      (app) => app.routing(req, res),
      (err: Error) => {
        agent.log.error(`${name} could not start: ${err.message}`);
        res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'failed', message: `${name} unavailable` }));
      },
    );
  });
  // Idle keep-alive connections must not pile up: apps poll, and some never close.
  server.keepAliveTimeout = 5_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 15 * 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as { port: number }).port;
  return {
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
