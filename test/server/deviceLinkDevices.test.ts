// The device link on each storage backend, a device's life on the server: provisioning keys,
// registration, and the devices resource (list, read, rename, delete, last_seen).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backends } from './backends.js';
import { device, hex, listen, newDevice, newProject, provisioningKey, register, sleep, until, user, waiting } from './helpers.js';

for (const backend of backends()) {
  describe(`device link on ${backend.name}`, () => {
    test('provisioning keys: created (shown once, stored as a digest), listed, revoked; a project that does not exist is a 400', async (t) => {
      const server = await backend.start(t);
      const call = user(server);
      const project = await newProject(server);
      const created = await call('POST', '/provisioning-keys/', { name: 'line 3', project });
      assert.equal(created.status, 201);
      const key = String(created.body.key);
      assert.match(key, /^bsp_[A-Za-z0-9_-]{43}$/);
      assert.deepEqual(
        { ...created.body, key: undefined, created_at: undefined },
        { id: created.body.id, name: 'line 3', project, key: undefined, created_at: undefined },
      );
      const fleet = await call('POST', '/provisioning-keys/', { name: 'fleet-wide' });
      assert.equal(fleet.body.project, null);
      const listed = await call('GET', '/provisioning-keys/');
      assert.deepEqual(
        listed.body.map((k) => [k.name, k.project]),
        [
          ['line 3', project],
          ['fleet-wide', null],
        ],
      );
      assert.ok(!JSON.stringify(listed.body).includes(key), 'a key is never shown again');
      const stored = await server.db.selectFrom('provisioning_key').select('key_hash').execute();
      assert.ok(!JSON.stringify(stored).includes(key), 'only a digest is stored');

      const noProject = await call('POST', '/provisioning-keys/', { name: 'x', project: 4242 });
      assert.equal(noProject.status, 400);
      assert.equal(noProject.body.field, '/project');
      assert.equal((await call('POST', '/provisioning-keys/', { name: 'x' }, '')).status, 401, 'the user API needs a token');

      assert.equal((await call('DELETE', `/provisioning-keys/${String(created.body.id)}/`)).status, 204);
      assert.equal((await register(server, key)).status, 401, 'a revoked key registers nothing');
      assert.equal((await call('DELETE', `/provisioning-keys/${String(created.body.id)}/`)).status, 404);
      assert.deepEqual(
        (await call('GET', '/provisioning-keys/')).body.map((k) => k.name),
        ['fleet-wide'],
      );
    });

    // the same uuid again, once the device used its key, is a 409; a bad key is a 401; a project key adds the device to its project
    test('register: 201 with the device id and its key; 409, 401; a project key adds the device to its project', async (t) => {
      const server = await backend.start(t);
      const project = await newProject(server);
      const key = await provisioningKey(server, project);
      const id = hex();
      const first = await register(server, key, { uuid: id, device_type: 'raspberrypi4-64', name: 'truck-7' });
      assert.equal(first.status, 201);
      assert.deepEqual(Object.keys(first.body).sort(), ['device_key', 'id', 'uuid']);
      assert.match(first.body.id, /^[0-9a-f-]{36}$/);
      assert.equal(first.body.uuid, id);
      assert.match(first.body.device_key, /^bsd_[A-Za-z0-9_-]{43}$/);
      const row = await server.db.selectFrom('device').selectAll().where('id', '=', first.body.id).executeTakeFirstOrThrow();
      assert.ok(!JSON.stringify(row).includes(first.body.device_key), 'the device key is stored as a digest');

      const base = await listen(server);
      assert.equal((await device(base, first.body.device_key).state()).status, 200);
      const again = await register(server, key, { uuid: id.toUpperCase(), device_type: 'raspberrypi4-64' });
      assert.equal(again.status, 409);
      assert.match(String(again.body.detail), /already registered/);
      assert.equal((await register(server, 'bsp_wrong')).status, 401);
      assert.equal((await server.app.inject({ method: 'POST', url: '/device/register', payload: { uuid: hex(), device_type: 'x' } })).statusCode, 401);
      assert.equal((await register(server, server.firstAdminToken!)).status, 401, 'a user token is not a provisioning key');
      const badUuid = await register(server, key, { uuid: 'not-hex!', device_type: 'x' });
      assert.equal(badUuid.status, 400);
      assert.equal(badUuid.body.field, '/uuid');
      assert.equal((await register(server, key, { uuid: 'abc12', device_type: 'x' })).status, 400, 'at least 7 hex digits');

      const read = await user(server)('GET', `/dongle/devices/${first.body.id}/`);
      assert.equal(read.status, 200);
      assert.deepEqual(read.body.projects, [project]);
      assert.equal(read.body.unit_id, id);
      assert.equal(read.body.name, 'truck-7');
      assert.equal(read.body.device_type, 'raspberrypi4-64');
      assert.deepEqual((await user(server)('GET', `/docker/projects/${project}/`)).body.devices, [first.body.id]);
      const unnamed = await register(server, await provisioningKey(server));
      assert.equal((await user(server)('GET', `/dongle/devices/${unnamed.body.id}/`)).body.name, unnamed.body.uuid.slice(0, 7));
      assert.deepEqual((await user(server)('GET', `/dongle/devices/${unnamed.body.id}/`)).body.projects, [], 'a fleet-wide key adds to no project');
    });

    test('devices: list, read, rename, delete (its key stops working); last_seen is recorded, throttled', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const call = user(server);
      const a = await newDevice(server);
      const b = await newDevice(server);
      const listed = await call('GET', '/dongle/devices/');
      assert.equal(listed.status, 200);
      assert.deepEqual(listed.body.map((d) => d.id).sort(), [a.id, b.id].sort());
      assert.deepEqual(Object.keys(listed.body[0]!).sort(), [
        'agent_version',
        'device_type',
        'docker_releases',
        'id',
        'last_seen',
        'name',
        'online',
        'projects',
        'state',
        'target_error',
        'unik',
        'unit_id',
      ]);
      assert.equal(listed.body[0]!.target_error, null);
      assert.equal(listed.body[0]!.state, null);
      assert.equal(listed.body[0]!.online, true, 'registering is being seen');

      // seen: an old last_seen is refreshed by a call, a recent one is not rewritten
      const old = new Date(Date.now() - 5 * 60_000).toISOString();
      await server.db.updateTable('device').set({ last_seen_at: old }).where('id', '=', a.id).execute();
      assert.equal((await call('GET', `/dongle/devices/${a.id}/`)).body.online, false);
      const { etag } = await device(base, a.key).state();
      const seen = String((await call('GET', `/dongle/devices/${a.id}/`)).body.last_seen);
      assert.ok(seen > old);
      assert.equal((await call('GET', `/dongle/devices/${a.id}/`)).body.online, true);
      await sleep(20);
      await device(base, a.key).state({ etag: etag! });
      assert.equal((await call('GET', `/dongle/devices/${a.id}/`)).body.last_seen, seen, 'at most one write per 10 s');

      const patched = await call('PATCH', `/dongle/devices/${a.id}/`, { name: 'forklift' });
      assert.equal(patched.status, 200);
      assert.equal(patched.body.name, 'forklift');
      assert.equal((await server.targets.get(a.id))!.target.name, 'forklift');
      assert.equal((await call('PATCH', `/dongle/devices/${a.id}/`, { name: '' })).body.field, '/name');
      assert.equal((await call('PATCH', `/dongle/devices/${a.id}/`, { unit_id: 'x' })).status, 400);
      assert.equal((await call('GET', '/dongle/devices/nope/')).status, 404);
      assert.equal((await call('PATCH', '/dongle/devices/nope/', { name: 'x' })).status, 404);
      assert.equal((await call('GET', '/dongle/devices/', undefined, '')).status, 401);

      // deleting a device ends the poll it holds and its key
      const held = device(base, a.key).state({ etag: (await device(base, a.key).state()).etag!, wait: 30 });
      await until('the poll to wait', () => waiting(server) === 1);
      assert.equal((await call('DELETE', `/dongle/devices/${a.id}/`)).status, 204);
      const ended = await held;
      assert.equal(ended.status, 401);
      assert.ok(ended.ms < 1000);
      assert.equal((await call('GET', `/dongle/devices/${a.id}/`)).status, 404);
      assert.equal((await call('DELETE', `/dongle/devices/${a.id}/`)).status, 404);
      assert.equal((await device(base, a.key).state()).status, 401);
      assert.deepEqual(
        (await call('GET', '/dongle/devices/')).body.map((d) => d.id),
        [b.id],
      );
    });
  });
}
