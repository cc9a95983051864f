// Who may call the device API and the local command API before any key is looked at (browsers of
// other origins, DNS rebinding), how keys are presented, and whose locks a `force` overrides.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LockOverride } from '../../src/agent/actions/lockOverride.js';
import { assertAppAccess, assertDeviceScope, coversApp, forceFor } from '../../src/agent/api/keyScope.js';
import { crossOriginReason, hostOf, isCommandApiHost, isLanHost, presentedKey } from '../../src/agent/api/requestGuard.js';
import { UnauthorizedError } from '../../src/shared/errors.js';

describe('cross-origin requests', () => {
  test('what programs send is not cross-origin: no Origin (the balena CLI sends sec-fetch-mode only), or the own origin', () => {
    assert.equal(crossOriginReason({ host: '127.0.0.1:48484', 'sec-fetch-mode': 'cors' }), undefined);
    assert.equal(crossOriginReason({ host: '192.168.1.5:48484', origin: 'http://192.168.1.5:48484' }), undefined);
    assert.equal(crossOriginReason({ host: 'dev.local', origin: 'http://dev.local:80', 'sec-fetch-site': 'same-origin' }), undefined);
    assert.equal(crossOriginReason({ host: '10.0.0.2:48484', referer: 'http://10.0.0.2:48484/page' }), undefined);
    assert.equal(crossOriginReason({ host: 'x', 'sec-fetch-site': 'none' }), undefined);
  });

  test('a page of another origin is: another host or port in Origin or Referer, Origin null, or Sec-Fetch-Site', () => {
    assert.match(crossOriginReason({ host: '192.168.1.5:48484', origin: 'http://evil.example' })!, /Origin http:\/\/evil\.example/);
    assert.match(crossOriginReason({ host: '192.168.1.5:48484', origin: 'http://192.168.1.5:8080' })!, /Origin/);
    assert.match(crossOriginReason({ host: '192.168.1.5:48484', origin: 'null' })!, /Origin null/);
    assert.match(crossOriginReason({ host: '192.168.1.5:48484', referer: 'https://evil.example/x' })!, /Referer/);
    assert.match(crossOriginReason({ host: '192.168.1.5:48484', 'sec-fetch-site': 'cross-site' })!, /cross-site/);
    assert.match(crossOriginReason({ host: '192.168.1.5:48484', 'sec-fetch-site': 'same-site' })!, /same-site/);
    assert.match(crossOriginReason({ origin: 'http://192.168.1.5:48484' })!, /Origin/, 'no Host to compare with');
  });
});

describe('Host checks', () => {
  test('hostOf reads a Host header', () => {
    assert.equal(hostOf('127.0.0.1:9000'), '127.0.0.1');
    assert.equal(hostOf('[::1]:9000'), '::1');
    assert.equal(hostOf('Dev.Local.'), 'dev.local');
    assert.equal(hostOf(undefined), undefined);
    assert.equal(hostOf('a@b'), undefined);
    assert.equal(hostOf('a/b'), undefined);
  });

  test('local mode waives the key for IP addresses, localhost, <name>.local and bare names; not for a (rebound) domain', () => {
    for (const h of ['127.0.0.1:48484', '192.168.1.5:48484', '[fe80::1]:48484', 'localhost:48484', 'a1b2c3d.local', 'mydevice', 'dev.localhost'])
      assert.equal(isLanHost(h), true, h);
    for (const h of ['evil.example:48484', 'rebind.attacker.net', 'device.local.evil.example', '', undefined]) assert.equal(isLanHost(h), false, String(h));
  });

  test('the command API answers loopback, or its configured address (any IP address when it listens on all)', () => {
    for (const h of ['127.0.0.1:9000', 'localhost:9000', '[::1]:9000', '127.0.0.2']) assert.equal(isCommandApiHost(h, '127.0.0.1'), true, h);
    for (const h of ['192.168.1.5:9000', 'evil.example:9000', 'mydevice.local:9000', undefined])
      assert.equal(isCommandApiHost(h, '127.0.0.1'), false, String(h));
    assert.equal(isCommandApiHost('192.168.1.5:9000', '192.168.1.5'), true);
    assert.equal(isCommandApiHost('192.168.1.6:9000', '192.168.1.5'), false);
    assert.equal(isCommandApiHost('192.168.1.6:9000', '0.0.0.0'), true);
    assert.equal(isCommandApiHost('evil.example:9000', '0.0.0.0'), false);
  });
});

test('a key is presented as ?apikey=, Bearer, ApiKey or APIToken', () => {
  assert.equal(presentedKey({ apikey: 'k1' }, {}), 'k1');
  assert.equal(presentedKey({}, { authorization: 'Bearer k2' }), 'k2');
  assert.equal(presentedKey({}, { authorization: 'ApiKey k3' }), 'k3');
  assert.equal(presentedKey({}, { authorization: 'APIToken k4' }), 'k4');
  assert.equal(presentedKey({}, { authorization: 'Basic k5' }), undefined);
  assert.equal(presentedKey({ apikey: '' }, {}), undefined);
});

describe('key scope', () => {
  const device = { kind: 'device' } as const;
  const appA = { kind: 'app', appId: 1 } as const;

  test("an app's key covers its own app; the device key every app", () => {
    assert.equal(coversApp(appA, 1), true);
    assert.equal(coversApp(appA, 2), false);
    assert.equal(coversApp(device, 2), true);
    assert.doesNotThrow(() => assertAppAccess(appA, 1));
    assert.throws(() => assertAppAccess(appA, 2), UnauthorizedError);
    assert.throws(() => assertDeviceScope(appA, 'x'), UnauthorizedError);
    assert.doesNotThrow(() => assertDeviceScope(device, 'x'));
  });

  test("an app's force overrides its own app's lock only; the device's every app's; no force none", () => {
    assert.equal(forceFor(appA, true)(1), true);
    assert.equal(forceFor(appA, true)(2), false);
    assert.equal(forceFor(device, true)(2), true);
    assert.equal(forceFor(device, false)(2), false);
  });

  test('an override lasts until an apply that started after it converges', () => {
    const o = new LockOverride();
    o.grant(appA, 100);
    assert.equal(o.covers(1), true);
    assert.equal(o.covers(2), false);
    o.converged(99);
    assert.equal(o.covers(1), true, 'an apply that started before the grant does not spend it');
    o.grant({ kind: 'app', appId: 3 }, 200);
    o.converged(150);
    assert.equal(o.covers(1), false, "the app's override is spent");
    assert.equal(o.covers(3), true, 'one granted later is not');
    o.grant(device, 300);
    assert.equal(o.covers(2), true, "the device's covers every app");
    o.converged(250);
    assert.equal(o.covers(2), true, "the device's, granted after that apply started, is not spent");
    o.converged(300);
    assert.equal(o.covers(2), false);
    assert.equal(o.covers(3), false);
  });
});
