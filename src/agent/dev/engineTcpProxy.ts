// Development only, opt-in: expose the device's Docker Engine on TCP (default 127.0.0.1:2375).
//
// Why this exists: `balena push <device-ip>` builds the images on the device's own engine and always
// talks to it on TCP port 2375 (plain HTTP, no TLS; the CLI has no option for another port or a
// socket). balenaOS development images run dockerd with `-H tcp://0.0.0.0:2375`; a Bosun device runs
// on whatever engine the user has, and dockerd listens only on its unix socket by default. Rather than
// asking people to change their dockerd flags (and restart the engine, and remember to undo it), the
// agent can forward a TCP port to the engine's socket while it runs in local mode. It works with any
// engine, including the user's own, and goes away with the agent.
//
// It is a byte-level forwarder: every accepted connection gets its own connection to the unix socket
// and the two are piped both ways (so HTTP keep-alive, chunked streams such as `/events` or
// `/build` progress, and hijacked connections such as attach all pass unchanged). Half-close is
// forwarded (a client that ends its request body still receives the response), an error on either
// side destroys both, and nothing is buffered beyond the streams' own high-water marks: `pipe`
// applies backpressure in both directions.
//
// Security: anyone who can reach this port controls the engine, i.e. is root on the device. It binds
// to loopback unless told otherwise and must never be on in production mode.
import net from 'node:net';

export interface EngineTcpProxyOptions {
  /** Path of the engine's unix socket, e.g. /var/run/docker.sock. */
  socketPath: string;
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** TCP port (default 2375; 0 picks a free one). */
  port?: number;
}

export interface EngineTcpProxy {
  /** The port actually listened on. */
  port: number;
  /** Stops listening and drops every open connection. */
  close(): Promise<void>;
}

export function startEngineTcpProxy(opts: EngineTcpProxyOptions): Promise<EngineTcpProxy> {
  const host = opts.host ?? '127.0.0.1';
  const sockets = new Set<net.Socket>();

  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    const upstream = net.connect({ path: opts.socketPath, allowHalfOpen: true });
    sockets.add(client);
    sockets.add(upstream);

    const teardown = () => {
      client.destroy();
      upstream.destroy();
    };
    // An error on either side ends the pair; `close` fires once a socket is fully shut either way.
    client.on('error', teardown);
    upstream.on('error', teardown);
    client.on('close', () => {
      sockets.delete(client);
      // The client is gone both ways: nothing can read what the engine still sends.
      upstream.destroy();
    });
    upstream.on('close', () => {
      sockets.delete(upstream);
      // The engine is gone: flush what it sent to the client, then close (a client keeping its
      // sending half open would otherwise hold the connection forever).
      if (client.destroyed) return;
      if (client.writableFinished) client.destroy();
      else {
        client.once('finish', () => client.destroy());
        client.end();
      }
    });

    // pipe() forwards data with backpressure and, on 'end', ends the other side's writable half:
    // half-close passes through in both directions.
    client.pipe(upstream);
    upstream.pipe(client);
  });

  return new Promise((resolve, reject) => {
    const onListenError = (err: Error) => reject(err);
    server.once('error', onListenError);
    server.listen(opts.port ?? 2375, host, () => {
      server.off('error', onListenError);
      // Accept errors after listening (e.g. EMFILE) must not crash the agent.
      server.on('error', () => {});
      const address = server.address() as net.AddressInfo;
      let closing: Promise<void> | undefined;
      resolve({
        port: address.port,
        close: () =>
          (closing ??= new Promise<void>((done) => {
            server.close(() => done());
            for (const s of sockets) s.destroy();
            sockets.clear();
          })),
      });
    });
  });
}
