// Remote execution end to end on real parts: the control plane (in-process), a device agent in cloud
// mode on the test engine, a release running a service that prints. Commands go to the device over
// its link and come back as job results; a callback reaches a local receiver, signed; the device's
// own local command API (AutoPi's :9000) runs commands synchronously.
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { controlPlane, imageName, provisionedDevice, tag, type ControlPlane } from './controlPlane.js';
import { containersOf, converge, docker, freshAppId, image, service, startAgent, target, waitFor } from './harness.js';

/** A service that says something on stdout and on stderr, then idles (and stops at once on SIGTERM). */
const printer = ['sh', '-c', "trap 'exit 0' TERM; echo hello from web; echo warming up >&2; while true; do sleep 1; done"];

/** Runs a command on the device through the API and polls its result until it is done. */
async function run(cp: ControlPlane, deviceId: string, body: Record<string, unknown>, raw = false) {
  const queued = await cp.call('POST', `/dongle/devices/${deviceId}/${raw ? 'execute_raw' : 'execute'}/`, body);
  assert.equal(queued.status, 200, JSON.stringify(queued.body));
  return waitFor(`the result of ${JSON.stringify(body)}`, async () => {
    const job = await cp.call('GET', `/dongle/devices/${deviceId}/command_result/${queued.body.jid}/`);
    assert.equal(job.status, 200, JSON.stringify(job.body));
    return job.body.state === 'pending' ? undefined : job.body;
  });
}

async function receiver(t: TestContext) {
  const got: { body: string; signature: string }[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      got.push({ body, signature: String(req.headers['x-bosun-signature']) });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`, got };
}

test('remote execution: docker.logs of a running service, a signed callback, the agent log and its other commands', async (t) => {
  const cp = await controlPlane(t);
  const { appId, deviceId: registered, logs } = await provisionedDevice(t, cp, 'execute');
  const deviceId = await registered();
  const release = await cp.call('POST', `/docker/projects/${appId}/releases/`, {
    version: '1.0.0',
    containers: [{ name: 'web', image: imageName, tag, required_tags: [], purge_data: false, startup_parameters: { command: printer } }],
  });
  assert.equal(release.status, 201, JSON.stringify(release.body));
  await waitFor('web running', async () => (await containersOf(appId)).some((c) => c.service === 'web' && c.state === 'running'), 90_000).catch(
    (err: Error) => {
      throw new Error(`${err.message}\n${logs.slice(-20).join('\n')}`);
    },
  );

  // what the container printed, stdout and stderr, read on the device
  const printed = await waitFor('both lines in the logs', async () => {
    const job = await run(cp, deviceId, { command: 'docker.logs', arg: ['web'], kwarg: { tail: 50 } });
    assert.equal(job.success, true, JSON.stringify(job));
    return /hello from web/.test(job.return) && /warming up/.test(job.return) ? job : undefined;
  });
  assert.equal(printed.retcode, 0);
  assert.ok(printed.delivered_at && printed.finished_at);
  const stamped = await run(cp, deviceId, { command: 'docker.logs web tail=1 timestamps=True' }, true);
  assert.match(stamped.return, /^\d{4}-\d\d-\d\dT[\d:.]+Z (hello from web|warming up)\n$/);

  // a callback, signed with the key the operator reads from the API
  const hook = await receiver(t);
  const key = String((await cp.call('GET', '/auth/callback-key/')).body.key);
  const queued = await cp.call('POST', `/dongle/devices/${deviceId}/execute/`, { command: 'docker.ps', callback_url: hook.url, callback_timeout: 60 });
  await waitFor('the callback', async () => hook.got.length > 0);
  const { body, signature } = hook.got[0]!;
  const expected = `sha256=${createHmac('sha256', key).update(body).digest('hex')}`;
  assert.ok(signature.length === expected.length && timingSafeEqual(Buffer.from(signature), Buffer.from(expected)), 'the callback verifies');
  const ps = JSON.parse(body) as { jid: string; state: string; success: boolean; return: Record<string, { Service: string; State: string }> };
  assert.deepEqual([ps.jid, ps.state, ps.success], [queued.body.jid, 'done', true]);
  assert.deepEqual(
    Object.values(ps.return).map((c) => [c.Service, c.State]),
    [['web', 'running']],
  );

  // the agent's own log, with AutoPi's filters
  const lastLogs = await run(cp, deviceId, { command: 'minionutil.last_logs', kwarg: { match: 'registered with', limit: 1 } });
  assert.match(lastLogs.return, /^\S+ \[INFO {4}\] Registered with http:\/\/127\.0\.0\.1:\d+ as device /);
  assert.equal((await run(cp, deviceId, { command: 'test.ping' })).return, true);
  const grains = await run(cp, deviceId, { command: 'grains.items' });
  assert.equal(grains.return.id, grains.unit_id);

  // only the agent's containers: another container of the engine is not found, nor touched
  const foreign = await docker.createContainer({ Image: image('v1'), name: `bosun-foreign-${process.pid}` });
  t.after(() => foreign.remove({ force: true }).catch(() => undefined));
  const notOurs = await run(cp, deviceId, { command: 'docker.stop', arg: [`bosun-foreign-${process.pid}`] });
  assert.deepEqual([notOurs.success, notOurs.retcode], [false, 1]);
  assert.match(notOurs.return, /no container of this device's apps is named bosun-foreign-\d+ \(its services: web\)/);

  // restart through the device API's own action: a real docker restart of the service's container
  const web = (await containersOf(appId)).find((c) => c.service === 'web')!;
  const startedAt = async () => (await docker.getContainer(web.id).inspect()).State.StartedAt;
  const before = await startedAt();
  const restarted = await run(cp, deviceId, { command: 'docker.restart', arg: ['web'] });
  assert.deepEqual(restarted.return, { result: true, state: { old: 'running', new: 'running' } }, JSON.stringify(restarted));
  assert.notEqual(await startedAt(), before);

  const unknown = await run(cp, deviceId, { command: 'foo.bar' });
  assert.deepEqual([unknown.success, unknown.retcode], [false, 1]);
  assert.match(unknown.return, /'foo\.bar' is not available; this device runs .*docker\.logs/);
  const applied = await run(cp, deviceId, { command: 'state.sls', arg: ['docker.release'] });
  assert.equal(applied.success, true, JSON.stringify(applied));
  assert.equal(applied.return.apps[String(appId)].release, release.body.id);
});

test("the local command API (AutoPi's :9000): the unit id, commands run at once, another device's unit id refused", async (t) => {
  const appId = freshAppId();
  const { agent } = await startAgent(t, [appId], { commandApiPort: 0 });
  await agent.setTarget(target({ [appId]: { services: { web: service({ command: printer }) } } }), 'file');
  await converge(agent);
  const base = `http://127.0.0.1:${agent.commandApiPort()}`;
  const uuid = agent.device.uuid;
  const post = async (unit: string, body: unknown) => {
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${agent.apiKeys.deviceKey()}` };
    const res = await fetch(`${base}/dongle/${unit}/execute/`, { method: 'POST', headers, body: JSON.stringify(body) });
    return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as any };
  };

  assert.deepEqual(await (await fetch(`${base}/`)).json(), { unit_id: uuid });
  const printed = await waitFor('the lines in the logs', async () => {
    const res = await post(uuid, { command: 'docker.logs', arg: ['web'], kwarg: { tail: 10 } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return /hello from web/.test(res.body) && /warming up/.test(res.body) ? res : undefined;
  });
  assert.match(printed.type!, /^application\/json/);
  // AutoPi writes unit ids as dashed UUIDs
  const dashed = uuid.replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5').toUpperCase();
  assert.deepEqual(await post(dashed, { command: 'test.ping' }), { status: 200, type: 'application/json; charset=utf-8', body: true });

  const elsewhere = await post('4e633880-ef6e-4c20-77ed-5761b3de5d4c', { command: 'test.ping' });
  assert.equal(elsewhere.status, 404);
  assert.match(elsewhere.body.detail, new RegExp(`this is device ${uuid}, not 4e633880`));
  for (const [body, field] of [
    [{}, '/command'],
    [{ command: 'ping' }, '/command'],
    [{ command: 'test.ping', arg: 'x' }, '/arg'],
    [{ command: 'test.ping', callback_url: 'http://example.com' }, '/callback_url'],
    [{ command: 'nope.nothing' }, '/command'],
    [{ command: 'docker.logs', kwarg: { follow: true, name: 'web' } }, '/kwarg/follow'],
  ] as const) {
    const res = await post(uuid, body);
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(res.body.field, field, JSON.stringify(res.body));
  }
  const missing = await post(uuid, { command: 'docker.logs', arg: ['db'] });
  assert.equal(missing.status, 404);
  assert.match(missing.body.detail, /no container of this device's apps is named db/);
});
