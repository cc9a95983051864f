// The development TCP proxy to the engine's unix socket (what `balena push` talks to on 2375).
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { createDocker } from '../../src/agent/engine/docker.js';
import { startEngineTcpProxy } from '../../src/agent/dev/engineTcpProxy.js';

const dockerHost = process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
const socketPath = dockerHost.startsWith('unix://') ? dockerHost.slice('unix://'.length) : dockerHost;
const docker = createDocker();

function get(port: number, path: string, agent?: http.Agent): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

test('GET /version through the proxy answers like the engine itself', async (t) => {
  if (!dockerHost.startsWith('unix://') && !dockerHost.startsWith('/')) return t.skip('engine is not on a unix socket');
  const proxy = await startEngineTcpProxy({ socketPath, port: 0 });
  t.after(() => proxy.close());
  assert.ok(proxy.port > 0 && proxy.port !== 2375);
  const res = await get(proxy.port, '/version');
  assert.equal(res.status, 200);
  const direct = (await docker.version()) as { Version: string; ApiVersion: string };
  const viaProxy = JSON.parse(res.body) as { Version: string; ApiVersion: string };
  assert.equal(viaProxy.Version, direct.Version);
  assert.equal(viaProxy.ApiVersion, direct.ApiVersion);

  // Keep-alive: several requests on one connection, and many connections at once.
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => keepAlive.destroy());
  for (let i = 0; i < 3; i++) assert.equal((await get(proxy.port, '/_ping', keepAlive)).body, 'OK');
  const many = await Promise.all(Array.from({ length: 20 }, () => get(proxy.port, '/_ping')));
  assert.deepEqual(new Set(many.map((r) => r.body)), new Set(['OK']));
});

test('a client that half-closes after its request still gets the whole response', async (t) => {
  if (!dockerHost.startsWith('unix://') && !dockerHost.startsWith('/')) return t.skip('engine is not on a unix socket');
  const proxy = await startEngineTcpProxy({ socketPath, port: 0 });
  t.after(() => proxy.close());
  const raw = await new Promise<string>((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port: proxy.port, allowHalfOpen: true }, () => {
      s.end('GET /version HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n');
    });
    let data = '';
    s.setEncoding('utf8');
    s.on('data', (c: string) => (data += c));
    s.on('end', () => resolve(data));
    s.on('error', reject);
  });
  assert.match(raw, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(raw, /"ApiVersion"/);
});

test('a streaming call (GET /events) passes events as they happen, and close() ends it and frees the port', async (t) => {
  if (!dockerHost.startsWith('unix://') && !dockerHost.startsWith('/')) return t.skip('engine is not on a unix socket');
  const proxy = await startEngineTcpProxy({ socketPath, port: 0 });
  let closed = false;
  t.after(() => (closed ? undefined : proxy.close()));
  const name = `bosun-proxy-test-${process.pid}`;
  t.after(() =>
    docker
      .getNetwork(name)
      .remove()
      .catch(() => {}),
  );

  const since = Math.floor(Date.now() / 1000) - 1;
  const filters = encodeURIComponent(JSON.stringify({ type: ['network'], network: [name] }));
  const req = http.get({ host: '127.0.0.1', port: proxy.port, path: `/events?since=${since}&filters=${filters}` });
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => req.on('response', resolve).on('error', reject));
  assert.equal(res.statusCode, 200);
  res.setEncoding('utf8');
  let buffered = '';
  const gotEvent = (action: string) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (buffered.split('\n').some((l) => l.includes(`"Action":"${action}"`) && l.includes(name))) {
          res.off('data', onData);
          resolve();
        }
      };
      const onData = (c: string) => {
        buffered += c;
        check();
      };
      res.on('data', onData);
      check();
    });

  // The response is still open (no `until`): events created now must arrive through the proxy.
  const created = gotEvent('create');
  await docker.createNetwork({ Name: name, Labels: { 'io.bosun.scope': `test-${process.pid}` } });
  await created;
  const destroyed = gotEvent('destroy');
  await docker.getNetwork(name).remove();
  await destroyed;

  // close() drops the open stream and resolves; the port is then free to listen on again.
  const ended = new Promise<void>((resolve) => res.on('close', () => resolve()));
  res.on('error', () => {});
  req.on('error', () => {});
  await proxy.close();
  closed = true;
  await ended;
  await new Promise<void>((resolve, reject) => {
    const again = net.createServer();
    again.once('error', reject);
    again.listen(proxy.port, '127.0.0.1', () => again.close(() => resolve()));
  });
});

test('listening on a port in use rejects; an engine that is not there drops the client connection', async (t) => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const port = (blocker.address() as net.AddressInfo).port;
  await assert.rejects(startEngineTcpProxy({ socketPath, port }), /EADDRINUSE/);

  const proxy = await startEngineTcpProxy({ socketPath: `/tmp/bosun-no-such-engine-${process.pid}.sock`, port: 0 });
  t.after(() => proxy.close());
  await assert.rejects(get(proxy.port, '/version'), /socket hang up|ECONNRESET/);
});
