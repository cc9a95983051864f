// Binds the device API's port when the agent starts, but loads the API itself (fastify and the
// routes, about 12 MB of RSS) only when the first request arrives: many devices run apps that
// never call it, and the agent's memory budget is small.
import http from 'node:http';
import type { Agent } from '../agent.js';

export interface ApiServer {
  readonly port: number;
  close(): Promise<void>;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export async function startApiServer(agent: Agent, port: number, address: string): Promise<ApiServer> {
  let handler: Promise<Handler> | undefined;
  const load = async (): Promise<Handler> => {
    const { buildDeviceApi } = await import('./deviceApi.js');
    const app = await buildDeviceApi(agent);
    return (req, res) => app.routing(req, res);
  };
  const server = http.createServer((req, res) => {
    handler ??= load();
    handler.then(
      (h) => h(req, res),
      (err: Error) => {
        handler = undefined;
        agent.log.error(`Device API could not start: ${err.message}`);
        res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'failed', message: 'device API unavailable' }));
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
