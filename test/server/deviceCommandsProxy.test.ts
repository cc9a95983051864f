// The supervisor proxy over the device link's command channel, on each storage backend (and across two
// PostgreSQL nodes): a fake device long-polls its commands and posts the answers, which the proxy
// returns; a whole project's devices at once (207), silent devices end in 504; bad calls are a 400.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DeviceCommands } from '../../src/server/commands/deviceCommands.js';
import { devicePath } from '../../src/server/routes/supervisorProxy.js';
import type { Server } from '../../src/server/server.js';
import { backends, nodes } from './backends.js';
import { device, listen, newDevice, newProject, until, user, waiting } from './helpers.js';
import { fakeAgent, deviceApi, commandRows, median } from './deviceCommandsFixture.js';

for (const backend of backends()) {
  describe(`device commands and the supervisor proxy on ${backend.name}`, () => {
    test('by uuid and by deviceId: the call reaches the device as a command and its answer comes back (status, body, content type)', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const dev = await newDevice(server);
      const agent = fakeAgent(t, base, dev.key, deviceApi(dev.uuid));
      const call = user(server);

      const ping = await call('POST', '/supervisor/ping', { uuid: dev.uuid, method: 'GET' });
      assert.equal(ping.status, 200);
      assert.equal(ping.text, 'OK');
      assert.match(ping.type!, /^text\/plain/);
      assert.deepEqual(agent.seen[0], { id: agent.seen[0]!.id, kind: 'supervisor', payload: { method: 'GET', path: '/ping' } });

      const info = await call('POST', '/supervisor/v1/device', { deviceId: dev.id, method: 'get' });
      assert.equal(info.status, 200);
      assert.match(info.type!, /^application\/json/);
      assert.deepEqual(info.body, { uuid: dev.uuid, status: 'Idle', update_pending: false });

      // POST is the default method; `data` travels as the body
      const restart = await call('POST', '/supervisor/v1/restart', { uuid: dev.uuid.toUpperCase(), data: { appId: 12 } });
      assert.equal(restart.status, 200);
      assert.equal(restart.text, 'OK');
      assert.deepEqual(agent.seen.at(-1)!.payload, { method: 'POST', path: '/v1/restart', body: { appId: 12 } });
      assert.equal((await call('POST', '/supervisor/v1/restart', { uuid: dev.uuid })).status, 400, "the device's 400 is passed on");
      const locked = await call('POST', '/supervisor/v1/reboot', { uuid: dev.uuid });
      assert.equal(locked.status, 423);
      assert.deepEqual(locked.body, { Data: '', Error: 'Updates are locked' });
      const blink = await call('POST', '/supervisor/v1/blink/', { uuid: dev.uuid });
      assert.equal(blink.status, 200);
      assert.equal(blink.text, '');
      const query = await call('POST', '/supervisor/v2/applications/state?verbose=1', { uuid: dev.uuid, method: 'GET' });
      assert.equal(query.status, 404);
      assert.equal(agent.seen.at(-1)!.payload.path, '/v2/applications/state?verbose=1', 'the query string goes along');
      const failed = await call('POST', '/supervisor/v1/explode', { uuid: dev.uuid });
      assert.equal(failed.status, 502);
      assert.match(String(failed.body.detail), /could not run the call: the device API is not running/);

      const rows = await commandRows(server, dev.id);
      assert.ok(rows.every((r) => (r.state === 'done' || r.state === 'failed') && r.delivered_at && r.finished_at));
      assert.deepEqual(JSON.parse(rows[0]!.result!), { status: 200, body: 'OK', headers: { 'content-type': 'text/plain' } });

      // round trip: proxy call → device poll answered → result posted → proxy answers
      const ms: number[] = [];
      for (let i = 0; i < 20; i++) ms.push((await call('POST', '/supervisor/ping', { uuid: dev.uuid, method: 'GET' })).ms);
      t.diagnostic(
        `${backend.name}: proxy round trip through a long-polling device: median ${median(ms).toFixed(1)} ms, max ${Math.max(...ms).toFixed(1)} ms (20 calls)`,
      );
      assert.ok(median(ms) < 250);
    });

    test('appId: 207 with one entry per device of the project, asked in parallel; a silent device has a 504 entry and its command expires', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const project = await newProject(server);
      const talker = await newDevice(server, project);
      const silent = await newDevice(server, project);
      await newDevice(server); // not in the project
      fakeAgent(t, base, talker.key, deviceApi(talker.uuid));
      const quiet = fakeAgent(t, base, silent.key, () => null); // takes commands, never answers

      const res = await user(server)('POST', '/supervisor/v1/device', { appId: project, method: 'GET', timeout: 0.5 });
      assert.equal(res.status, 207);
      assert.ok(res.ms >= 450 && res.ms < 2000, `took ${res.ms.toFixed(0)} ms`);
      assert.deepEqual(res.body, [
        { deviceId: talker.id, uuid: talker.uuid, status: 200, body: { uuid: talker.uuid, status: 'Idle', update_pending: false } },
        { deviceId: silent.id, uuid: silent.uuid, status: 504, body: { detail: `device ${silent.uuid} took the call but did not answer within 0.5 s` } },
      ]);
      assert.equal(quiet.seen.length, 1);
      assert.deepEqual(
        (await commandRows(server, silent.id)).map((r) => r.state),
        ['expired'],
      );
      // too late now: nobody waits for it
      const late = await device(base, silent.key).result(quiet.seen[0]!.id, { status: 200, body: 'late' });
      assert.equal(late.status, 404);
      assert.match(String(late.body.detail), /expired/);

      // text bodies stay text; an appId as a numeric string works too; a project without devices is an empty 207
      const ping = await user(server)('POST', '/supervisor/ping', { appId: String(project), method: 'GET', timeout: 0.3 });
      assert.equal(ping.status, 207);
      assert.deepEqual((ping.body as unknown as { body: unknown }[]).map((e) => e.body)[0], 'OK');
      const empty = await user(server)('POST', '/supervisor/ping', { appId: await newProject(server), method: 'GET' });
      assert.equal(empty.status, 207);
      assert.deepEqual(empty.body, []);
      assert.equal((await user(server)('POST', '/supervisor/ping', { appId: 99999 })).status, 404);
    });

    test('an offline device: 504 once the wait is over, and the command expires (a device coming back later does not run it)', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const dev = await newDevice(server);
      const res = await user(server)('POST', '/supervisor/v1/reboot', { uuid: dev.uuid, timeout: 0.3 });
      assert.equal(res.status, 504);
      assert.ok(res.ms >= 280 && res.ms < 1500, `took ${res.ms.toFixed(0)} ms`);
      assert.equal(res.body.detail, `device ${dev.uuid} did not take the call within 0.3 s (it is offline, or not polling for commands)`);
      t.diagnostic(`${backend.name}: offline device, timeout 0.3 s → 504 after ${res.ms.toFixed(0)} ms`);
      const rows = await commandRows(server, dev.id);
      assert.deepEqual(
        rows.map((r) => [r.state, r.delivered_at]),
        [['expired', null]],
      );
      assert.equal((await device(base, dev.key).commands(0)).status, 204, 'the expired command is never delivered');
      assert.equal(waiting(server), 0, 'no waiter is left behind');
    });

    // one target, a known method, a device API path, known fields (400 naming the field)
    test('validation: 400 naming the field; unknown targets 404; a token is needed', async (t) => {
      const server = await backend.start(t);
      const dev = await newDevice(server);
      const call = user(server);
      const cases: [string, unknown, string][] = [
        ['/supervisor/ping', {}, '/uuid'],
        ['/supervisor/ping', undefined, '/uuid'],
        ['/supervisor/ping', { uuid: dev.uuid, deviceId: dev.id }, '/deviceId'],
        ['/supervisor/ping', { deviceId: dev.id, appId: 1 }, '/appId'],
        ['/supervisor/ping', { uuid: dev.uuid, method: 'HEAD' }, '/method'],
        ['/supervisor/ping', { uuid: dev.uuid, method: 7 }, '/method'],
        ['/supervisor/ping', { uuid: dev.uuid, nope: 1 }, '/nope'],
        ['/supervisor/ping', { uuid: dev.uuid, timeout: 0 }, '/timeout'],
        ['/supervisor/ping', { uuid: dev.uuid, timeout: 301 }, '/timeout'],
        ['/supervisor/ping', { deviceId: 5 }, '/deviceId'],
        ['/supervisor/ping', { appId: 'x' }, '/appId'],
        ['/supervisor/v3/thing', { uuid: dev.uuid }, 'url'],
        ['/supervisor/v1', { uuid: dev.uuid }, 'url'],
        ['/supervisor/etc/passwd', { uuid: dev.uuid }, 'url'],
        ['/supervisor/v1/%2e%2e/x', { uuid: dev.uuid }, 'url'],
        ['/supervisor/v1/a%2Fb', { uuid: dev.uuid }, 'url'],
      ];
      for (const [url, body, field] of cases) {
        const res = await call('POST', url, body);
        assert.equal(res.status, 400, `${url} ${JSON.stringify(body)}: ${res.text}`);
        assert.equal(res.body.field, field, `${url} ${JSON.stringify(body)}: ${res.text}`);
      }
      // dot segments are resolved before routing: this one is not the proxy's
      assert.equal((await call('POST', '/supervisor/v1/../../etc', { uuid: dev.uuid })).status, 404);
      assert.equal((await call('POST', '/supervisor/', { uuid: dev.uuid })).status, 404);
      assert.equal((await call('POST', '/supervisor/ping', { uuid: 'deadbeef00' })).status, 404);
      assert.equal((await call('POST', '/supervisor/ping', { deviceId: 'nope' })).status, 404);
      assert.equal((await call('POST', '/supervisor/ping', { appId: 4242 })).status, 404);
      assert.equal((await call('POST', '/supervisor/ping', { uuid: dev.uuid }, '')).status, 401);
      assert.equal((await call('POST', '/supervisor/ping', { uuid: dev.uuid }, 'APIToken wrong')).status, 401);
      assert.deepEqual(await commandRows(server, dev.id), [], 'nothing was queued');

      assert.equal(devicePath('/supervisor/v2/applications/12/restart-service'), '/v2/applications/12/restart-service');
      assert.equal(devicePath('/supervisor/v1/apps/12/stop?force=true'), '/v1/apps/12/stop?force=true');
      assert.equal(devicePath('/supervisor/ping/'), '/ping');
    });
  });
}

if (process.env.BOSUN_TEST_DATABASE_URL) {
  describe('supervisor proxy across two PostgreSQL nodes', () => {
    test('the proxy call on node A reaches a device polling node B, and its answer comes back to A', async (t) => {
      const [a, b] = (await nodes(t, 'postgres', 2)) as [Server, Server];
      const baseB = await listen(b);
      const dev = await newDevice(a);
      const project = await newProject(a, [dev.id]);
      const agent = fakeAgent(t, baseB, dev.key, deviceApi(dev.uuid));
      await until('the device to poll B', () => waiting(b, 'cmds:') === 1);

      const info = await user(a)('POST', '/supervisor/v1/device', { uuid: dev.uuid, method: 'GET' });
      assert.equal(info.status, 200);
      assert.deepEqual(info.body, { uuid: dev.uuid, status: 'Idle', update_pending: false });
      const restart = await user(a)('POST', '/supervisor/v1/restart', { deviceId: dev.id, data: { appId: project } });
      assert.equal(restart.status, 200);
      assert.equal(restart.text, 'OK');
      const fleet = await user(a)('POST', '/supervisor/ping', { appId: project, method: 'GET' });
      assert.equal(fleet.status, 207);
      assert.deepEqual(fleet.body, [{ deviceId: dev.id, uuid: dev.uuid, status: 200, body: 'OK' }]);
      assert.equal(agent.seen.length, 3);

      const ms: number[] = [];
      for (let i = 0; i < 20; i++) {
        await until('the device to poll B', () => waiting(b, 'cmds:') === 1);
        ms.push((await user(a)('POST', '/supervisor/ping', { uuid: dev.uuid, method: 'GET' })).ms);
      }
      t.diagnostic(
        'postgres, two nodes: proxy call on A → device polling B → answer on A: ' +
          `median ${median(ms).toFixed(1)} ms, max ${Math.max(...ms).toFixed(1)} ms (20 calls)`,
      );
      assert.ok(median(ms) < 500);

      // two polls of one device on two nodes, one command: delivered once
      const commands = new DeviceCommands(a.db, a.notifier);
      const baseA = await listen(a);
      const other = await newDevice(a);
      const polls = [device(baseA, other.key).commands(2), device(baseB, other.key).commands(2)];
      await until('a poll on each node', () => waiting(a, 'cmds:') === 1 && waiting(b, 'cmds:') === 2);
      const id = await commands.queue(other.id, 'supervisor', { method: 'GET', path: '/ping' }, 10_000);
      const answers = await Promise.all(polls);
      assert.deepEqual(answers.map((x) => x.status).sort(), [200, 204]);
      assert.deepEqual(
        answers.flatMap((x) => x.commands.map((c) => c.id)),
        [id],
      );
    });
  });
}
