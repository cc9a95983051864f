// A registration the agent did not save (it crashed, or the answer was lost, after the server
// committed it) is repeated: the same uuid and provisioning key get a new key for the same device,
// until the device has used its key; another provisioning key, or a device that has used its key,
// is refused (409). The agent's own registration call recovers that way.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { registerDevice } from '../../src/agent/cloud/registration.js';
import { backends } from './backends.js';
import { device, hex, listen, newProject, provisioningKey, register, user } from './helpers.js';

for (const backend of backends()) {
  describe(`repeated registration on ${backend.name}`, () => {
    // (200: the same device, a new key; the first key stops working)
    test('the same uuid and provisioning key, before the key was used: 200, a new key; after its first use: 409', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const project = await newProject(server);
      const key = await provisioningKey(server, project);
      const uuid = hex();
      const first = await register(server, key, { uuid, device_type: 'raspberrypi4-64', name: 'truck-7' });
      assert.equal(first.status, 201);

      // the answer never reached the agent: it asks again
      const again = await register(server, key, { uuid: uuid.toUpperCase(), device_type: 'raspberrypi4-64', name: 'truck-7' });
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.equal(again.body.id, first.body.id, 'the same device');
      assert.equal(again.body.uuid, uuid);
      assert.notEqual(again.body.device_key, first.body.device_key);
      assert.equal((await device(base, first.body.device_key).state()).status, 401, 'the key of the lost answer no longer works');
      assert.equal((await device(base, again.body.device_key).state()).status, 200);
      const devices = await user(server)('GET', '/dongle/devices/');
      assert.deepEqual(
        devices.body.map((d) => d.id),
        [first.body.id],
        'no second device',
      );
      assert.deepEqual(devices.body[0]!.projects, [project]);

      // it has used its key: the registration is settled
      const late = await register(server, key, { uuid, device_type: 'raspberrypi4-64' });
      assert.equal(late.status, 409);
      assert.match(String(late.body.detail), /already registered/);
      assert.equal((await device(base, again.body.device_key).state()).status, 200, 'its key still works');
    });

    test('another provisioning key, a revoked one, or a device registered before repeats existed: no new key', async (t) => {
      const server = await backend.start(t);
      const project = await newProject(server);
      const created = await user(server)('POST', '/provisioning-keys/', { name: 'line 1', project });
      const key = String(created.body.key);
      const other = await provisioningKey(server, project);
      const uuid = hex();
      const first = await register(server, key, { uuid, device_type: 'x' });
      assert.equal(first.status, 201);
      const stranger = await register(server, other, { uuid, device_type: 'x' });
      assert.equal(stranger.status, 409, 'a provisioning key repeats only its own registrations');

      assert.equal((await user(server)('DELETE', `/provisioning-keys/${String(created.body.id)}/`)).status, 204);
      assert.equal((await register(server, key, { uuid, device_type: 'x' })).status, 401, 'a revoked key registers nothing');

      const older = hex();
      const key2 = await provisioningKey(server, project);
      assert.equal((await register(server, key2, { uuid: older, device_type: 'x' })).status, 201);
      await server.db.updateTable('device').set({ provisioning_key_id: null }).where('unit_id', '=', older).execute();
      assert.equal((await register(server, key2, { uuid: older, device_type: 'x' })).status, 409, 'no provisioning key recorded: no repeat');
    });

    test("the agent's registration, after a crash before it saved its key, gets a working key for the same device", async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const key = await provisioningKey(server, await newProject(server));
      const uuid = hex();
      // the run that crashed: the server committed, the agent never saved the answer
      const lost = await register(server, key, { uuid, device_type: 'generic-amd64', name: uuid.slice(0, 7) });
      assert.equal(lost.status, 201);
      // the next run: config.json still has the uuid and the provisioning key
      const saved = await registerDevice(base, key, { uuid, type: 'generic-amd64', name: uuid.slice(0, 7) });
      assert.equal(saved.deviceId, lost.body.id);
      assert.equal((await device(base, saved.deviceKey).state()).status, 200);
      // a device that has used its key and lost it is not taken over
      await assert.rejects(registerDevice(base, key, { uuid, type: 'generic-amd64', name: uuid.slice(0, 7) }), /already registered/);
    });
  });
}
