// A gateway's dependents (src/agent/dependent/dependents.ts) on a real agent database and a small
// fake control plane (no engine: its dependent apps have no release to pull): what a state report
// carries after a restart (only what changed since the last acknowledged report, and still what was
// not acknowledged before a crash), and a registration the control plane refuses for good (404, 409):
// recorded on the device, logged once, tried again only when the gateway app updates the device or
// a new target gives its app.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, mock, test } from 'node:test';
import type Docker from 'dockerode';
import type { KeyScope } from '../../src/agent/api/apiKeys.js';
import { Dependents } from '../../src/agent/dependent/dependents.js';
import { EventLog } from '../../src/agent/eventLog.js';
import type { ImagePuller } from '../../src/agent/images/imagePuller.js';
import { openAgentDb, type AgentDb } from '../../src/agent/store/database.js';
import type { DependentTarget } from '../../src/shared/dependents.js';
import type { TargetState } from '../../src/shared/targetState.js';

const DEVICE: KeyScope = { kind: 'device' };
const APP = 5;
const cleanups: (() => Promise<unknown>)[] = [];
after(() => Promise.all(cleanups.reverse().map((c) => c())));

/** The control plane's provisioning endpoint: answers `status` (and counts the calls). */
async function controlPlane() {
  const cp = { status: 201, calls: 0, endpoint: '' };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      cp.calls++;
      const { uuid, app_id } = JSON.parse(body) as { uuid: string; app_id: number };
      if (cp.status >= 300) return res.writeHead(cp.status, { 'content-type': 'application/json' }).end(JSON.stringify({ detail: `refused ${cp.status}` }));
      const device = { id: 40 + cp.calls, uuid, name: 'blue-sun', note: null, device_type: 'generic-amd64', app_id };
      res.writeHead(cp.status, { 'content-type': 'application/json' }).end(JSON.stringify(device));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => server.close(r)));
  cp.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return cp;
}

async function database(): Promise<{ db: AgentDb; dir: string }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-gateway-'));
  const db = await openAgentDb(path.join(dir, 'agent.sqlite'));
  cleanups.push(() => db.destroy().then(() => fs.rm(dir, { recursive: true, force: true })));
  return { db, dir };
}

const dependent = (config: Record<string, string> = {}): DependentTarget => ({
  apps: { [APP]: { name: 'edge', parent_app: 1, device_type: 'generic-amd64', release: null, config } },
  devices: {},
});

/** A gateway app (app 1) whose services set the hook address. */
const gatewayApp = (hooks: string) => ({
  1: { name: 'gw', release: { id: 1, services: { hooks: { image: 'hooks', environment: { BALENA_DEPENDENT_DEVICES_HOOK_ADDRESS: hooks } } } } },
});

function gateway(db: AgentDb, dir: string, endpoint: string, target: () => DependentTarget, warnings: string[] = [], hooks = 'http://0.0.0.0:1/') {
  const log = new EventLog('silent');
  const warn = log.warn.bind(log);
  log.warn = (m, f) => void (warnings.push(m), warn(m, f));
  return Dependents.open({
    db,
    docker: {} as Docker, // no release: nothing is pulled or extracted
    scope: undefined,
    dataDir: dir,
    puller: {} as ImagePuller,
    trackImage: async () => undefined,
    log,
    target: () => ({ apps: gatewayApp(hooks), dependent: target() }) as unknown as TargetState,
    link: () => ({ endpoint, deviceKey: 'k' }),
    shipLog: async () => false,
    reportChanged: () => undefined,
    imagesChanged: () => undefined,
  });
}

test('after a restart a state report carries only what changed since the last acknowledged one, and what a crash left unacknowledged', async () => {
  const cp = await controlPlane();
  const { db, dir } = await database();
  let gw = await gateway(db, dir, cp.endpoint, () => dependent());
  const { uuid } = await gw.provision(DEVICE, APP, undefined);
  await gw.update(DEVICE, uuid, { status: 'Idle', is_online: true, commit: 'c1', environment: { LED: 'on' } });
  const first = await gw.reportPatch();
  assert.deepEqual(Object.keys(first.patch[uuid]!).sort(), ['commit', 'environment', 'is_online', 'last_seen', 'status']);
  first.ack();
  await gw.stop(); // stored by then

  gw = await gateway(db, dir, cp.endpoint, () => dependent());
  assert.deepEqual((await gw.reportPatch()).patch, {}, 'nothing changed since the acknowledged report');
  await gw.update(DEVICE, uuid, { status: 'Flashing' });
  const unacked = await gw.reportPatch(); // sent, but the agent dies before the control plane acknowledges it
  assert.deepEqual(Object.keys(unacked.patch[uuid]!).sort(), ['last_seen', 'status']);
  await gw.stop();

  gw = await gateway(db, dir, cp.endpoint, () => dependent());
  const again = await gw.reportPatch();
  assert.equal(again.patch[uuid]?.status, 'Flashing', 'the unacknowledged change still goes');
  assert.deepEqual(Object.keys(again.patch[uuid]!).sort(), ['last_seen', 'status']);
  await gw.stop();
});

for (const status of [409, 404])
  test(`a registration refused with ${status} is recorded on the device, logged once and not retried until something changes`, async () => {
    const cp = await controlPlane();
    cp.status = status;
    const { db, dir } = await database();
    let target = dependent();
    const warnings: string[] = [];
    let gw = await gateway(db, dir, cp.endpoint, () => target, warnings);
    const { uuid } = await gw.provision(DEVICE, APP, undefined);
    // another pass (the same target again, a restart): not asked again (stop() waits for a registration under way)
    await gw.applyTarget();
    const marked = await gw.device(DEVICE, uuid);
    await gw.stop();
    assert.equal(cp.calls, 1, 'not retried with the same target');
    assert.equal(marked.deviceId, null);
    assert.match(marked.error ?? '', new RegExp(`refused.*${status}`));
    gw = await gateway(db, dir, cp.endpoint, () => target, warnings);
    await gw.applyTarget();
    await gw.stop();
    assert.equal(cp.calls, 1, 'not retried after a restart');
    assert.equal(warnings.filter((w) => w.includes(uuid)).length, 1, 'logged once');
    gw = await gateway(db, dir, cp.endpoint, () => target, warnings);

    cp.status = 201;
    if (status === 404) {
      // a new target that gives the app: tried again
      target = dependent({ MODE: 'x' });
      await gw.applyTarget();
    } else {
      // the gateway app posts the device again: tried again
      await gw.update(DEVICE, uuid, { status: 'Idle' });
    }
    for (let i = 0; i < 100 && (await gw.device(DEVICE, uuid)).deviceId === null; i++) await new Promise((r) => setTimeout(r, 20));
    const registered = await gw.device(DEVICE, uuid);
    assert.equal(cp.calls, 2);
    assert.equal(registered.deviceId, '42');
    assert.equal(registered.error, null);
    await gw.stop();
  });

test('an update hook is queued and sent in the same turn as the target is stored: no timer or poll between them', { timeout: 30_000 }, async () => {
  const cp = await controlPlane();
  const { db, dir } = await database();
  const A = 'a'.repeat(32);
  // the gateway app's hook server: what it got, and whether the hook was on disk (queued) by then
  let arrived!: (call: { call: string; queued: number }) => void;
  const hook = new Promise<{ call: string; queued: number }>((r) => (arrived = r));
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', async () => {
      const queued = (await db.selectFrom('dependent_hook').select('uuid').where('uuid', '=', A).execute()).length;
      res.writeHead(200).end();
      arrived({ call: `${req.method} ${req.url} ${body}`, queued });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => server.close(r)));
  let target = dependent();
  const gw = await gateway(db, dir, cp.endpoint, () => target, [], `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/devices/`);
  // the clock stops: a timer (a backoff, a poll, a debounce) between the target and its hook would never fire
  mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  try {
    const device = { id: 7, app_id: APP, name: 'blue-sun', device_type: 'generic-amd64', commit: 'c1', environment: { LED: 'on' }, config: {} };
    target = { ...dependent(), devices: { [A]: device } };
    await gw.applyTarget();
    const got = await hook;
    assert.equal(got.call, `PUT /v1/devices/${A} ${JSON.stringify({ commit: 'c1', environment: { LED: 'on' } })}`);
    assert.equal(got.queued, 1, 'queued on disk before it was sent');
  } finally {
    mock.timers.reset();
  }
  await gw.stop();
});

test('a device provisioned online and deleted before any target listed it: the DELETE hook, when the target says it was deleted', {
  timeout: 30_000,
}, async () => {
  const cp = await controlPlane();
  const { db, dir } = await database();
  const calls: string[] = [];
  let arrived!: () => void;
  const deleteHook = new Promise<void>((r) => (arrived = r));
  const server = http.createServer((req, res) => {
    calls.push(`${req.method} ${req.url}`);
    res.writeHead(200).end();
    if (req.method === 'DELETE') arrived();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => server.close(r)));
  let target = dependent();
  const gw = await gateway(db, dir, cp.endpoint, () => target, [], `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/devices/`);
  const { uuid } = await gw.provision(DEVICE, APP, undefined);
  assert.equal((await gw.device(DEVICE, uuid)).deviceId, '41', 'registered');
  target = { ...dependent(), deleted: [uuid] };
  await gw.applyTarget();
  await deleteHook;
  assert.deepEqual(calls, [`DELETE /v1/devices/${uuid}`]);
  await assert.rejects(gw.device(DEVICE, uuid), /no dependent device/);
  await gw.stop();
});
