// Host configuration files (hostname, redsocks proxy) and the validation of PATCH bodies.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { ValidationError } from '../../src/shared/errors.js';
import { HostConfigFiles, parseHostConfigPatch, parseRedsocks } from '../../src/agent/host/hostConfig.js';

const tmpRoot = () => fs.mkdtemp(path.join(os.tmpdir(), 'bosun-host-'));

describe('host config', () => {
  test('defaults: the hostname is the short uuid, no proxy', async () => {
    const files = new HostConfigFiles(await tmpRoot(), 'abcdef1');
    assert.deepEqual(await files.read(), { network: { hostname: 'abcdef1' } });
  });

  test('hostname and proxy round-trip through the balenaOS files', async () => {
    const root = await tmpRoot();
    const files = new HostConfigFiles(root, 'abcdef1');
    const patch = parseHostConfigPatch({
      network: {
        hostname: 'cellar',
        proxy: { type: 'http-connect', ip: 'proxy.example.com', port: 8123, login: 'u', password: 'p', noProxy: ['152.10.30.4', '253.1.1.0/16'] },
      },
    });
    await files.apply(patch);
    assert.deepEqual(await files.read(), {
      network: {
        hostname: 'cellar',
        proxy: { type: 'http-connect', ip: 'proxy.example.com', port: 8123, login: 'u', password: 'p', noProxy: ['152.10.30.4', '253.1.1.0/16'] },
      },
    });
    assert.equal(await fs.readFile(path.join(root, 'etc/hostname'), 'utf8'), 'cellar\n');
    const conf = await fs.readFile(path.join(root, 'mnt/boot/system-proxy/redsocks.conf'), 'utf8');
    assert.match(conf, /redsocks \{[^}]*type = http-connect;[^}]*login = "u";/);
    assert.equal(await fs.readFile(path.join(root, 'mnt/boot/system-proxy/no_proxy'), 'utf8'), '152.10.30.4\n253.1.1.0/16\n');
  });

  test('a patch leaves absent fields alone; empty or null values clear to defaults', async () => {
    const files = new HostConfigFiles(await tmpRoot(), 'abcdef1');
    await files.apply(parseHostConfigPatch({ network: { hostname: 'one', proxy: { type: 'socks5', ip: '10.0.0.1', port: 1080 } } }));
    await files.apply(parseHostConfigPatch({ network: { hostname: 'two' } }));
    assert.equal((await files.read()).network.proxy?.type, 'socks5');
    await files.apply(parseHostConfigPatch({ network: { proxy: {} } }));
    assert.deepEqual(await files.read(), { network: { hostname: 'two' } });
    await files.apply(parseHostConfigPatch({ network: { hostname: '' } }));
    assert.equal((await files.read()).network.hostname, 'abcdef1');
    await files.apply(parseHostConfigPatch({ network: { hostname: 'three', proxy: { type: 'socks4', ip: '10.0.0.2', port: 1 } } }));
    await files.apply(parseHostConfigPatch({ network: { hostname: null, proxy: null } }));
    assert.deepEqual(await files.read(), { network: { hostname: 'abcdef1' } });
  });

  test('invalid values are rejected naming the field', () => {
    const field = (body: unknown) => {
      try {
        parseHostConfigPatch(body);
      } catch (e) {
        return (e as ValidationError).field;
      }
      return 'accepted';
    };
    assert.equal(field({ network: { proxy: { type: 'ftp' } } }), '/network/proxy/type');
    assert.equal(field({ network: { proxy: { type: 'socks5', ip: 'bad host!' } } }), '/network/proxy/ip');
    assert.equal(field({ network: { proxy: { port: 70000 } } }), '/network/proxy/port');
    assert.equal(field({ network: { proxy: { noProxy: ['not-an-ip'] } } }), '/network/proxy/noProxy/0');
    assert.equal(field({ network: { hostname: 'has space' } }), '/network/hostname');
    assert.equal(field({ network: { proxy: { login: 'a"b' } } }), '/network/proxy/login');
    assert.equal(field({ hostname: 'x' }), '/network');
    assert.equal(field({ network: { hostname: 'ok' } }), 'accepted');
  });

  test('redsocks.conf written by hand is read back', () => {
    const conf = 'base { log = stderr; }\nredsocks {\n  type = socks5;\n  ip = 192.168.0.199;\n  port = 8123;\n  local_port = 12345;\n}\n';
    assert.deepEqual(parseRedsocks(conf), { type: 'socks5', ip: '192.168.0.199', port: 8123 });
  });
});
