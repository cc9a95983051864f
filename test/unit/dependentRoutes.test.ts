// balena's dependent-apps routes of the device API (src/agent/dependent/dependentRoutes.ts) against a
// fake gateway: the documented status codes, and bad bodies refused with 400 naming the field before
// the gateway is asked anything. What the real gateway does: test/integration/dependentDevices.test.ts.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { Api } from '../../src/agent/api/apiRequest.js';
import { buildDeviceApi } from '../../src/agent/api/deviceApi.js';
import type { DependentsApi } from '../../src/agent/dependent/dependentPort.js';
import { APP_KEYS, FakeDevice } from './helpers/fakeDevice.js';

const UUID = 'a'.repeat(32);
const asked: unknown[][] = [];
const gateway: DependentsApi = {
  apps: () => [],
  assets: async () => {
    throw new Error('not here');
  },
  devices: async () => [],
  device: async (_s, uuid) => ({ uuid }) as never,
  provision: async (_s, appId, type) => {
    asked.push(['provision', appId, type]);
    return { id: 1, uuid: UUID, name: 'blue-sun', note: null, device_type: type ?? 'generic-amd64' };
  },
  update: async (_s, uuid, u) => {
    asked.push(['update', uuid, u]);
    return { uuid } as never;
  },
  log: async (_s, uuid, message, ts) => void asked.push(['log', uuid, message, ts.toISOString()]),
  restart: async (_s, uuid) => void asked.push(['restart', uuid]),
};

const device = new FakeDevice();
device.dependents = async () => gateway as never;
let api: Api;
after(() => api?.close());

async function call(method: string, url: string, json?: unknown) {
  api ??= await buildDeviceApi(device);
  const res = await api.inject({
    method: method as 'GET',
    url,
    headers: { host: 'device.example', authorization: `Bearer ${APP_KEYS[1]}`, ...(json !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(json !== undefined ? { payload: JSON.stringify(json) } : {}),
  });
  return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined };
}

test('provisioning answers 201 with the created device; appId may be a number or digits', async () => {
  const res = await call('POST', '/v1/devices', { appId: '13015', device_type: 'edge' });
  assert.equal(res.status, 201);
  assert.deepEqual(res.body, { id: 1, uuid: UUID, name: 'blue-sun', note: null, device_type: 'edge' });
  assert.deepEqual(asked.at(-1), ['provision', 13015, 'edge']);
});

test('logs answer 202; a timestamp in seconds (as balena documents it) or milliseconds', async () => {
  assert.equal((await call('POST', `/v1/devices/${UUID}/logs`, { message: 'detected movement', timestamp: 1472142960 })).status, 202);
  assert.deepEqual(asked.at(-1), ['log', UUID, 'detected movement', '2016-08-25T16:36:00.000Z']);
  assert.equal((await call('POST', `/v1/devices/${UUID}/logs`, { message: 'm', timestamp: 1472142960123 })).status, 202);
  assert.equal((asked.at(-1) as string[])[3], '2016-08-25T16:36:00.123Z');
});

test('bad bodies: 400 naming the field, and the gateway is not asked', async () => {
  const before = asked.length;
  for (const [method, url, body, field] of [
    ['POST', '/v1/devices', {}, 'appId'],
    ['POST', '/v1/devices', { appId: 'x' }, 'appId'],
    ['POST', '/v1/devices', { appId: 1, device_type: '' }, 'device_type'],
    ['PUT', `/v1/devices/${UUID}`, { is_online: 'yes' }, 'is_online'],
    ['PUT', `/v1/devices/${UUID}`, { download_progress: 150 }, 'download_progress'],
    ['PUT', `/v1/devices/${UUID}`, { environment: { A: 1 } }, 'environment'],
    ['POST', `/v1/devices/${UUID}/logs`, {}, 'message'],
    ['POST', `/v1/devices/${UUID}/logs`, { message: 'm', timestamp: 'yesterday' }, 'timestamp'],
  ] as const) {
    const res = await call(method, url, body);
    assert.equal(res.status, 400, `${method} ${url} ${JSON.stringify(body)}`);
    assert.match(res.body.message, new RegExp(field), `${method} ${url} ${JSON.stringify(body)} names ${field}`);
  }
  assert.equal(asked.length, before);
});

test('an update passes on only the documented fields', async () => {
  assert.equal((await call('PUT', `/v1/devices/${UUID}`, { is_online: true, status: 'Idle', commit: 'c1', other: 'x' })).status, 200);
  assert.deepEqual(asked.at(-1), [
    'update',
    UUID,
    { status: 'Idle', is_online: true, commit: 'c1', download_progress: undefined, environment: undefined, config: undefined },
  ]);
});
