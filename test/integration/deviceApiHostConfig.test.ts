// The device API's host configuration: hostname and proxy through PATCH and GET, the host files
// they write, and invalid values refused whole. Runs its own agent on the real engine.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { show, assertFailed, assertOk, deploy, readIf } from './deviceApiFixture.js';

// (empty and null clear to defaults; invalid fields are 400)
test('host-config: PATCH hostname and proxy round-trips through GET and the host files', async (t) => {
  const d = await deploy(t, {});
  const { api } = d;
  const key = await api.deviceKey();
  const uuid = d.agent.config.uuid!;
  const hostDir = path.join(d.dataDir, 'host');
  const hostnameFile = path.join(hostDir, 'etc', 'hostname');
  const redsocksFile = path.join(hostDir, 'mnt', 'boot', 'system-proxy', 'redsocks.conf');
  const noProxyFile = path.join(hostDir, 'mnt', 'boot', 'system-proxy', 'no_proxy');
  const get = async () => {
    const r = await api.call('GET', '/v1/device/host-config', { key });
    assert.equal(r.status, 200, show(r));
    return r.body as { network: { hostname: string; proxy?: Record<string, unknown> } };
  };
  const patch = (body: unknown) => api.call('PATCH', '/v1/device/host-config', { key, json: body });

  const proxy = { type: 'socks5', ip: '192.168.0.199', port: 8123, login: 'user', password: 'secret', noProxy: ['152.10.30.4', '253.1.1.0/16'] };
  assertOk(await patch({ network: { hostname: 'bosun-test-host', proxy } }));
  let got = await get();
  assert.equal(got.network.hostname, 'bosun-test-host');
  const p = got.network.proxy!;
  assert.ok(p, JSON.stringify(got));
  assert.equal(p.type, 'socks5');
  assert.equal(p.ip, '192.168.0.199');
  assert.equal(Number(p.port), 8123);
  assert.equal(p.login, 'user');
  assert.ok(!('password' in p), `the proxy password is never answered: ${JSON.stringify(got)}`);
  assert.ok(!JSON.stringify(got).includes('secret'));
  assert.deepEqual(p.noProxy, proxy.noProxy);
  assert.equal((await readIf(hostnameFile))?.trim(), 'bosun-test-host');
  const conf = (await readIf(redsocksFile)) ?? '';
  assert.match(conf, /\btype\s*=\s*socks5\s*;/);
  assert.match(conf, /\bip\s*=\s*192\.168\.0\.199\s*;/);
  assert.match(conf, /\bport\s*=\s*8123\s*;/);
  assert.match(conf, /\blogin\s*=\s*"?user"?\s*;/);
  assert.match(conf, /\bpassword\s*=\s*"?secret"?\s*;/);
  assert.deepEqual(
    ((await readIf(noProxyFile)) ?? '')
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean),
    proxy.noProxy,
  );

  // Absent fields are left as they are.
  assertOk(await patch({ network: { hostname: 'second-host' } }));
  got = await get();
  assert.equal(got.network.hostname, 'second-host');
  assert.deepEqual(got.network.proxy, p);
  assertOk(await patch({ network: { proxy: { ...proxy, port: 8124 } } }));
  got = await get();
  assert.equal(got.network.hostname, 'second-host');
  assert.equal(Number(got.network.proxy?.port), 8124);
  assert.match((await readIf(redsocksFile)) ?? '', /\bport\s*=\s*8124\s*;/);

  // Invalid values are refused whole, naming the field; nothing changes.
  const before = await get();
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ proxy: { ...proxy, type: 'ftp' } }, /\btype\b/],
    [{ proxy: { ...proxy, ip: 42 } }, /\bip\b/],
    [{ proxy: { ...proxy, ip: 'my proxy' } }, /\bip\b/],
    [{ proxy: { ...proxy, port: 70000 } }, /\bport\b/],
    [{ proxy: { ...proxy, port: 'eighty' } }, /\bport\b/],
    [{ proxy: { ...proxy, noProxy: '1.2.3.4' } }, /noProxy/],
    [{ proxy: { ...proxy, noProxy: [42] } }, /noProxy/],
    [{ hostname: 42 }, /hostname/],
  ];
  for (const [network, field] of bad) {
    // A valid hostname beside the invalid field: the request is refused whole.
    assertFailed(await patch({ network: { hostname: 'must-not-be-applied', ...network } }), 400, field);
  }
  assertFailed(await api.call('PATCH', '/v1/device/host-config', { key, raw: '{"network": {' }), 400);
  assert.deepEqual(await get(), before);
  assert.equal((await readIf(hostnameFile))?.trim(), 'second-host');

  // Empty values clear to the defaults: the first 7 characters of the uuid, and no proxy.
  assertOk(await patch({ network: { hostname: '' } }));
  got = await get();
  assert.equal(got.network.hostname, uuid.slice(0, 7));
  assert.equal((await readIf(hostnameFile))?.trim(), uuid.slice(0, 7));
  assert.equal(Number(got.network.proxy?.port), 8124, 'the proxy is untouched');
  assertOk(await patch({ network: { proxy: {} } }));
  got = await get();
  assert.ok(got.network.proxy === undefined || Object.keys(got.network.proxy).length === 0, JSON.stringify(got));
  assert.equal(got.network.hostname, uuid.slice(0, 7));
  assert.ok(!((await readIf(redsocksFile)) ?? '').includes('192.168.0.199'), 'redsocks.conf no longer names the proxy');
  assert.equal(((await readIf(noProxyFile)) ?? '').trim(), '');

  // null clears too.
  assertOk(await patch({ network: { hostname: 'third-host', proxy } }));
  assert.equal((await get()).network.hostname, 'third-host');
  assertOk(await patch({ network: { hostname: null, proxy: null } }));
  got = await get();
  assert.equal(got.network.hostname, uuid.slice(0, 7));
  assert.ok(got.network.proxy === undefined || Object.keys(got.network.proxy).length === 0, JSON.stringify(got));
});
