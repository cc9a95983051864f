// The device API's routes against a fake device (helpers/fakeDevice.ts) with fastify's inject():
// authentication, the key-scope table of the README (Security, "Device API keys") row by row, and
// the status codes of errors. The same rows on a real agent and engine: deviceApiScope.test.ts,
// deviceApiAuth.test.ts, deviceApiLocks.test.ts, balenaLocalMode.test.ts.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, beforeEach, describe, test } from 'node:test';
import type { Api } from '../../src/agent/api/apiRequest.js';
import { buildDeviceApi } from '../../src/agent/api/deviceApi.js';
import { ConflictError, UpdatesLockedError } from '../../src/shared/errors.js';
import { APP_KEYS, DEVICE_KEY, FakeDevice } from './helpers/fakeDevice.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

let device: FakeDevice;
let api: Api;
const built: Api[] = [];

beforeEach(async () => {
  device = new FakeDevice();
  api = await buildDeviceApi(device);
  built.push(api);
});
after(() => Promise.all(built.map((a) => a.close())));

const APP1 = APP_KEYS[1]!;

async function call(method: string, url: string, opts: { key?: string; json?: unknown; headers?: Record<string, string>; payload?: string } = {}) {
  const res = await api.inject({
    method: method as 'GET',
    url,
    headers: {
      host: 'device.example',
      ...(opts.key ? { authorization: `Bearer ${opts.key}` } : {}),
      ...(opts.json !== undefined || opts.payload !== undefined ? { 'content-type': 'application/json' } : {}),
      ...opts.headers,
    },
    ...(opts.json !== undefined ? { payload: JSON.stringify(opts.json) } : opts.payload !== undefined ? { payload: opts.payload } : {}),
  });
  let body: Json;
  try {
    body = JSON.parse(res.body);
  } catch {
    body = undefined;
  }
  return { status: res.statusCode, text: res.body, body };
}

describe('authentication', () => {
  test('/ping and /v1/healthy need no key; every other route does', async () => {
    assert.deepEqual(await call('GET', '/ping').then((r) => [r.status, r.text]), [200, 'OK']);
    assert.equal((await call('GET', '/v1/healthy')).status, 200);
    for (const [method, url] of [
      ['GET', '/v1/device'],
      ['POST', '/v1/blink'],
      ['GET', '/v2/version'],
      ['GET', '/v2/local/target-state'],
    ] as const) {
      const res = await call(method, url);
      assert.equal(res.status, 401, `${method} ${url}`);
      assert.match(res.body.message, /an API key is required/);
    }
    assert.deepEqual(device.calls, [], 'nothing was done');
  });

  test('a wrong key is refused; a right one is taken from the header or ?apikey=', async () => {
    const wrong = await call('GET', '/v2/version', { key: 'not-a-key' });
    assert.deepEqual([wrong.status, wrong.body], [401, { status: 'failed', message: 'invalid API key' }]);
    assert.equal((await call('GET', '/v2/version', { key: APP1 })).status, 200);
    assert.equal((await call('GET', `/v2/version?apikey=${APP1}`)).status, 200);
  });

  test('an unhealthy device answers 500 with the problems, as text', async () => {
    device.problems = ['the engine does not answer'];
    const res = await call('GET', '/v1/healthy');
    assert.deepEqual([res.status, res.text], [500, 'Unhealthy: the engine does not answer']);
  });

  test('local mode waives the key for requests to the device by LAN name or address only', async () => {
    device.local = true;
    for (const host of ['192.168.1.20:48484', 'localhost', 'mydevice.local']) {
      assert.equal((await call('GET', '/v2/local/target-state', { headers: { host } })).status, 200, host);
    }
    const rebound = await call('GET', '/v2/local/target-state', { headers: { host: 'attacker.example' } });
    assert.equal(rebound.status, 401);
    assert.match(rebound.body.message, /local mode waives it only for requests to the device's IP address/);
  });

  test('a request from another origin is refused (403) before any key is checked', async () => {
    for (const headers of [{ origin: 'http://evil.example' }, { origin: 'null' }, { 'sec-fetch-site': 'cross-site' }] as Record<string, string>[]) {
      assert.equal((await call('POST', '/v1/blink', { headers })).status, 403, JSON.stringify(headers));
      assert.equal((await call('POST', '/v1/blink', { key: DEVICE_KEY, headers })).status, 403, JSON.stringify(headers));
    }
    assert.deepEqual(device.calls, []);
  });
});

describe("key scope (README, Security: an app's key)", () => {
  test('POST /v1/blink: any key', async () => {
    assert.equal((await call('POST', '/v1/blink', { key: APP1 })).status, 200);
    assert.deepEqual(device.callsOf('blink'), [[]]);
  });

  test("POST /v1/update {force}: an app's force covers its own app", async () => {
    assert.equal((await call('POST', '/v1/update', { key: APP1, json: { force: true } })).status, 204);
    assert.equal((await call('POST', '/v1/update', { key: DEVICE_KEY })).status, 204);
    assert.deepEqual(device.callsOf('requestUpdate'), [
      [true, { kind: 'app', appId: 1 }],
      [false, { kind: 'device' }],
    ]);
  });

  test("POST /v1/reboot, /v1/shutdown {force}: an app's force overrides its own app's lock only; a held lock is 423", async () => {
    const res = await call('POST', '/v1/reboot', { key: APP1, json: { force: true } });
    assert.deepEqual([res.status, res.body], [202, { Data: 'OK', Error: '' }]);
    const [[action, force]] = device.callsOf('power') as [[string, (appId: number) => boolean]];
    assert.equal(action, 'reboot');
    assert.deepEqual([force(1), force(2)], [true, false]);
    await call('POST', '/v1/shutdown', { key: DEVICE_KEY, json: { force: true } });
    const deviceForce = device.callsOf('power')[1]![1] as (appId: number) => boolean;
    assert.deepEqual([deviceForce(1), deviceForce(2)], [true, true]);

    device.failure = new UpdatesLockedError(2, '/tmp/balena/updates.lock');
    const locked = await call('POST', '/v1/shutdown', { key: APP1 });
    assert.equal(locked.status, 423);
    assert.match(locked.body.Error, /updates are locked for app 2/);
  });

  test('POST /v1/regenerate-api-key: its own key only', async () => {
    const res = await call('POST', '/v1/regenerate-api-key', { key: APP1 });
    assert.deepEqual([res.status, res.text], [200, 'new-key']);
    assert.deepEqual(device.callsOf('regenerateApiKey'), [[{ kind: 'app', appId: 1 }]]);
  });

  test("GET /v1/device: an app's key sees its own app's commit", async () => {
    assert.equal((await call('GET', '/v1/device', { key: APP_KEYS[2] })).body.commit, 'commit-2');
    assert.equal((await call('GET', '/v1/device', { key: APP1 })).body.commit, 'commit-1');
  });

  test('GET /v1/device/host-config: any key; the proxy password is never returned', async () => {
    for (const key of [APP1, DEVICE_KEY]) {
      const res = await call('GET', '/v1/device/host-config', { key });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body.network.proxy, { type: 'socks5', ip: '10.0.0.1', port: 1080, login: 'me' });
      assert.doesNotMatch(res.text, /secret/);
    }
  });

  test('PATCH /v1/device/host-config: any key; a bad patch is 400 and changes nothing', async () => {
    assert.equal((await call('PATCH', '/v1/device/host-config', { key: APP1, json: { network: { hostname: 'plant-7' } } })).status, 200);
    assert.deepEqual(device.callsOf('applyConfig'), [[{ network: { hostname: 'plant-7' } }]]);
    const bad = await call('PATCH', '/v1/device/host-config', { key: APP1, json: { network: { hostname: 'no spaces' } } });
    assert.equal(bad.status, 400);
    assert.equal(device.callsOf('applyConfig').length, 1);
  });

  test("v1 app routes: its own app; another app's id is 401 and nothing is done", async () => {
    for (const [method, url, json] of [
      ['POST', '/v1/purge', { appId: 2 }],
      ['POST', '/v1/restart', { appId: '2' }],
      ['GET', '/v1/apps/2', undefined],
      ['POST', '/v1/apps/2/stop', {}],
      ['POST', '/v1/apps/2/start', {}],
    ] as const) {
      const res = await call(method, url, { key: APP1, ...(json ? { json } : {}) });
      assert.equal(res.status, 401, `${method} ${url}`);
      assert.match(res.body.message, /not allowed to act on app 2/);
    }
    assert.deepEqual(device.calls, []);
    assert.deepEqual((await call('POST', '/v1/purge', { key: APP1, json: { appId: 1 } })).body, { Data: 'OK', Error: '' });
    assert.equal((await call('POST', '/v1/restart', { key: APP1, json: { appId: 1, force: true } })).text, 'OK');
    assert.deepEqual((await call('POST', '/v1/apps/1/stop', { key: APP1 })).body, { containerId: 'web-container' });
    assert.deepEqual(device.calls, [
      ['purgeApp', 1, false],
      ['restartApp', 1, true],
      ['stopService', 1, 'web', false],
    ]);
  });

  test('v2 app routes: its own app; another is 401 and nothing is done', async () => {
    for (const verb of ['restart-service', 'stop-service', 'start-service', 'restart', 'purge']) {
      const res = await call('POST', `/v2/applications/2/${verb}`, { key: APP1, json: { serviceName: 'db' } });
      assert.equal(res.status, 401, verb);
    }
    assert.equal((await call('GET', '/v2/applications/2/state', { key: APP1 })).status, 401);
    assert.deepEqual(device.calls, []);
    assert.equal((await call('POST', '/v2/applications/2/restart-service', { key: DEVICE_KEY, json: { serviceName: 'db', force: true } })).text, 'OK');
    assert.equal((await call('POST', '/v2/applications/1/stop-service', { key: APP1, json: { serviceName: 'web' } })).text, 'OK');
    assert.deepEqual(device.calls, [
      ['restartService', 2, 'db', true],
      ['stopService', 1, 'web', false],
    ]);
  });

  test('GET /v2/applications/state, /v2/state/status, /v2/containerId: its own app only', async () => {
    assert.deepEqual(Object.keys((await call('GET', '/v2/applications/state', { key: APP1 })).body), ['app1']);
    assert.deepEqual(Object.keys((await call('GET', '/v2/applications/state', { key: DEVICE_KEY })).body), ['app1', 'app2']);
    const status = (await call('GET', '/v2/state/status', { key: APP_KEYS[2] })).body;
    assert.deepEqual(
      status.containers.map((c: Json) => [c.appId, c.serviceName]),
      [
        [2, 'db'],
        [2, 'worker'],
      ],
    );
    assert.deepEqual((await call('GET', '/v2/containerId', { key: APP1 })).body, { status: 'success', services: { web: 'web-container' } });
    const other = await call('GET', '/v2/containerId?serviceName=db', { key: APP1 });
    assert.deepEqual([other.status, other.body.message], [503, 'Could not find service with that name']);
    assert.equal((await call('GET', '/v2/containerId?serviceName=db', { key: DEVICE_KEY })).body.containerId, 'db-container');
  });

  test('device facts: any key', async () => {
    assert.deepEqual((await call('GET', '/v2/device/name', { key: APP1 })).body, { status: 'success', deviceName: 'fake-device' });
    assert.equal((await call('GET', '/v2/device/vpn', { key: APP1 })).status, 200);
    assert.equal((await call('GET', '/v2/version', { key: APP1 })).body.status, 'success');
    assert.deepEqual((await call('GET', '/v2/local/device-info', { key: APP1 })).body, {
      status: 'success',
      info: { arch: 'amd64', deviceType: 'generic-amd64' },
    });
  });

  test('POST /v2/telemetry: any key records points; a bad one is 400 naming it and nothing is recorded', async () => {
    const point = { field: 'obd.bat.voltage', type: 'float', value: 13.5 };
    const res = await call('POST', '/v2/telemetry', { key: APP1, json: [point, point] });
    assert.deepEqual([res.status, res.body], [202, { status: 'success', accepted: 2 }]);
    const bad = await call('POST', '/v2/telemetry', { key: APP1, json: [point, { ...point, value: 'high' }] });
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /\/1\/value/);
    assert.equal(device.callsOf('recordTelemetry').length, 1);
  });

  test("GET /v2/cleanup-volumes: an app's key its own app's volumes; the device key every app's", async () => {
    assert.deepEqual((await call('GET', '/v2/cleanup-volumes', { key: APP1 })).body, { status: 'success', removed: ['1_data'] });
    assert.deepEqual((await call('GET', '/v2/cleanup-volumes', { key: DEVICE_KEY })).body, { status: 'success', removed: ['1_data', '2_data'] });
  });

  test("GET /v2/local/logs: an app's key its own services' lines only; the device key everything", async () => {
    device.logLines = [
      { message: 'agent says', timestamp: 1, isSystem: true },
      { message: 'web says', timestamp: 2, isSystem: false, appId: 1, serviceName: 'web' },
      { message: 'db says', timestamp: 3, isSystem: false, appId: 2, serviceName: 'db' },
      { message: 'web ends', timestamp: 4, isSystem: false, appId: 1, serviceName: 'web' },
    ];
    await api.listen({ port: 0, host: '127.0.0.1' });
    const { port } = api.server.address() as { port: number };
    const messages = (key: string) =>
      new Promise<string[]>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/v2/local/logs', headers: { authorization: `Bearer ${key}` } }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => {
            text += c.toString();
            // the fake's lines come at once; both keys see the last one
            if (text.includes('web ends')) {
              req.destroy();
              resolve(
                text
                  .trim()
                  .split('\n')
                  .map((l) => JSON.parse(l).message as string),
              );
            }
          });
        });
        req.on('error', reject);
      });
    assert.deepEqual(await messages(DEVICE_KEY), ['Streaming logs', 'agent says', 'web says', 'db says', 'web ends']);
    assert.deepEqual(await messages(APP1), ['Streaming logs', 'web says', 'web ends']);
  });

  test('GET and POST /v2/local/target-state: the device key (or local mode) only; POST only in local mode', async () => {
    device.target = { name: 'fake', apps: {}, config: { SOME: 'secret env' } } as never;
    const get = await call('GET', '/v2/local/target-state', { key: APP1 });
    assert.equal(get.status, 401);
    assert.doesNotMatch(get.text, /secret env/);
    assert.equal((await call('POST', '/v2/local/target-state', { key: APP1, json: { local: { apps: {} } } })).status, 401);
    assert.deepEqual((await call('GET', '/v2/local/target-state', { key: DEVICE_KEY })).body.state.local.config, { SOME: 'secret env' });
    const notLocal = await call('POST', '/v2/local/target-state', { key: DEVICE_KEY, json: { local: { apps: {} } } });
    assert.equal(notLocal.status, 400);
    assert.match(notLocal.body.message, /Target state can only set when device is in local mode/);
    assert.deepEqual(device.calls, []);
    device.local = true;
    const badForce = await call('POST', '/v2/local/target-state', { key: DEVICE_KEY, json: { local: { apps: {} }, force: 'yes' } });
    assert.equal(badForce.status, 400);
    assert.equal((await call('POST', '/v2/local/target-state', { key: DEVICE_KEY, json: { local: { apps: {} }, force: true } })).status, 200);
    const [[, force]] = device.callsOf('setLocalTarget');
    assert.equal(force, true);
  });
});

describe('status codes', () => {
  test('an unknown route is 404 naming it', async () => {
    const res = await call('GET', '/v3/nothing?x=1', { key: APP1 });
    assert.deepEqual([res.status, res.body], [404, { status: 'failed', message: 'no such endpoint: GET /v3/nothing' }]);
  });

  test('bad input is 400 naming the problem, and nothing is done', async () => {
    const malformed = await call('POST', '/v1/restart', { key: DEVICE_KEY, payload: '{"appId": ' });
    assert.equal(malformed.status, 400);
    assert.match(malformed.body.message, /malformed JSON body/);
    for (const json of [{}, { appId: 'abc' }, { appId: 0 }, { appId: 1, force: 'yes' }]) {
      assert.equal((await call('POST', '/v1/restart', { key: DEVICE_KEY, json })).status, 400, JSON.stringify(json));
    }
    assert.equal((await call('POST', '/v2/applications/x/restart', { key: DEVICE_KEY })).status, 400);
    assert.equal((await call('POST', '/v2/applications/1/restart-service', { key: DEVICE_KEY, json: {} })).status, 400);
    assert.deepEqual(device.calls, []);
  });

  test('the documented calls with an empty JSON body or a form body work', async () => {
    assert.equal((await call('POST', '/v1/blink', { key: DEVICE_KEY, payload: '' })).status, 200);
    const form = await api.inject({
      method: 'POST',
      url: '/v1/restart',
      headers: { authorization: `Bearer ${DEVICE_KEY}`, 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'appId=1&force=true',
    });
    assert.equal(form.statusCode, 200);
    assert.deepEqual(device.callsOf('restartApp'), [[1, true]]);
  });

  test('v1 app routes: an unknown app or one with several services is 400', async () => {
    const unknown = await call('GET', '/v1/apps/7', { key: DEVICE_KEY });
    assert.equal(unknown.status, 400);
    assert.match(unknown.body.message, /Application ID does not exist: 7/);
    const multi = await call('GET', '/v1/apps/2', { key: DEVICE_KEY });
    assert.equal(multi.status, 400);
    assert.match(multi.body.message, /only supported for single-container apps/);
  });

  test('a typed error keeps its status; an engine failure is 503', async () => {
    device.failure = new ConflictError('a conflict');
    assert.equal((await call('POST', '/v2/applications/1/restart', { key: DEVICE_KEY })).status, 409);
    device.failure = new Error('connect ENOENT /var/run/docker.sock');
    const res = await call('POST', '/v2/applications/1/restart', { key: DEVICE_KEY });
    assert.deepEqual([res.status, res.body], [503, { status: 'failed', message: 'connect ENOENT /var/run/docker.sock' }]);
  });
});
