// A registry url is checked when it is written (400 naming /url, nothing stored); a bad one already
// in a database (stored by an earlier version) holds back only the devices whose releases pull
// through it: they keep their last target and say why, the others get theirs, and no route answers
// an error for a change it committed.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SecretBox } from '../../src/server/auth/secretBox.js';
import { DeviceTargets } from '../../src/server/targets/deviceTargets.js';
import { LocalNotifier } from '../../src/server/wakeups/localNotifier.js';
import { backends } from './backends.js';
import { device, listen, newDevice, provisioningKey, register, user } from './helpers.js';

for (const backend of backends()) {
  describe(`registry urls on ${backend.name}`, () => {
    test('POST, PUT and PATCH refuse a url the targets could not use (400 naming /url); good forms are kept as given', async (t) => {
      const server = await backend.start(t);
      const call = user(server);
      for (const url of ['not a host', 'https://', 'user:secret@registry.example.com', 'registry.example.com:5000/UPPER', 'registry..example.com']) {
        const res = await call('POST', '/docker/registries/', { url, username: 'u', password: 'p' });
        assert.equal(res.status, 400, url);
        assert.equal(res.body.field, '/url', url);
        assert.ok(!String(res.body.detail).includes('secret'), 'the url is not echoed');
      }
      assert.deepEqual((await call('GET', '/docker/registries/')).body, [], 'nothing stored');
      for (const url of ['registry.example.com:5000', 'https://registry.example.com/v2/', 'localhost:5123', 'r.example.com/team', '[::1]:5000']) {
        const res = await call('POST', '/docker/registries/', { url, username: 'u', password: 'p' });
        assert.equal(res.status, 201, url);
        assert.equal(res.body.url, url);
      }
      const id = Number((await call('GET', '/docker/registries/')).body[0]!.id);
      const patched = await call('PATCH', `/docker/registries/${id}/`, { url: 'bad url', username: 'changed' });
      assert.equal(patched.status, 400);
      assert.equal(patched.body.field, '/url');
      const put = await call('PUT', `/docker/registries/${id}/`, { url: 'ftp://', username: 'changed' });
      assert.equal(put.status, 400);
      assert.deepEqual(
        (await call('GET', `/docker/registries/${id}/`)).body,
        { id, url: 'registry.example.com:5000', username: 'u' },
        'a refused change changes nothing',
      );
    });

    // (they keep their target and say why; no route answers an error after its commit)
    test('a bad url already stored holds back only the devices that pull through it', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const call = user(server);
      const good = Number((await call('POST', '/docker/registries/', { url: 'good.example.com', username: 'u', password: 'p' })).body.id);
      const legacy = Number((await call('POST', '/docker/registries/', { url: 'legacy.example.com', username: 'u', password: 'p' })).body.id);
      const projectA = Number((await call('POST', '/docker/projects/', { name: 'a', default_registry: good })).body.id);
      const projectB = Number((await call('POST', '/docker/projects/', { name: 'b', default_registry: legacy })).body.id);
      const a = await newDevice(server, projectA);
      const b = await newDevice(server, projectB);
      const release = (project: number, version: string) =>
        call('POST', `/docker/projects/${project}/releases/`, { version, containers: [{ name: 'web', image: 'acme/web', tag: version }] });
      assert.equal((await release(projectA, '1')).status, 201);
      assert.equal((await release(projectB, '1')).status, 201);
      const before = await device(base, b.key).state();
      assert.equal(before.status, 200);
      // as an earlier version could store it
      await server.db.updateTable('registry').set({ url: 'not a registry!' }).where('id', '=', legacy).execute();

      // changes that refresh every device's target: each answers as committed
      const patched = await call('PATCH', `/docker/registries/${good}/`, { password: 'new' });
      assert.equal(patched.status, 200, JSON.stringify(patched.body));
      assert.equal((await call('PATCH', `/docker/projects/${projectA}/`, { description: 'trucks' })).status, 200);
      const next = await release(projectA, '2');
      assert.equal(next.status, 201);
      const targetA = await device(base, a.key).state();
      assert.equal(targetA.body!.apps[String(projectA)]!.release.id, next.body.id, "the other devices' targets go on");
      assert.equal(targetA.body!.registries![`registry-${good}`]!.password, 'new');
      assert.equal((await device(base, b.key).state({ etag: before.etag! })).status, 304, 'the held-back device keeps its target');
      const shownB = await call('GET', `/dongle/devices/${b.id}/`);
      assert.match(String(shownB.body.target_error), new RegExp(`release \\d+: .*registry ${legacy} has no usable address`));
      assert.ok(!String(shownB.body.target_error).includes('not a registry!'), 'the url is not echoed (it may hold credentials)');
      assert.equal((await call('GET', `/dongle/devices/${a.id}/`)).body.target_error, null);

      // a device new to that project: no target to keep, so it is told to come back
      const c = await register(server, await provisioningKey(server, projectB));
      assert.equal(c.status, 201);
      const waiting = await device(base, c.body.device_key).state();
      assert.equal(waiting.status, 503);

      // the url is corrected: the held-back devices get their targets, the errors go
      assert.equal((await call('PATCH', `/docker/registries/${legacy}/`, { url: 'fixed.example.com' })).status, 200);
      assert.equal((await device(base, b.key).state({ etag: before.etag! })).status, 200);
      assert.equal((await device(base, c.body.device_key).state()).status, 200);
      assert.equal((await call('GET', `/dongle/devices/${b.id}/`)).body.target_error, null);
    });

    test('a target that cannot be built is logged, once per refresh and reason, naming the devices', async (t) => {
      const server = await backend.start(t);
      const call = user(server);
      const legacy = Number((await call('POST', '/docker/registries/', { url: 'legacy.example.com', username: 'u', password: 'p' })).body.id);
      const project = Number((await call('POST', '/docker/projects/', { name: 'b', default_registry: legacy })).body.id);
      const devices = [await newDevice(server, project), await newDevice(server, project)];
      await call('POST', `/docker/projects/${project}/releases/`, { version: '1', containers: [{ name: 'web', image: 'acme/web', tag: '1' }] });
      await server.db.updateTable('registry').set({ url: 'https://' }).where('id', '=', legacy).execute();
      const logged: string[] = [];
      const targets = new DeviceTargets(server.db, await SecretBox.load('', Buffer.alloc(32).toString('base64')), new LocalNotifier(), (m) => logged.push(m));
      assert.deepEqual(await targets.refresh(), []);
      assert.equal(logged.length, 1);
      for (const d of devices) assert.ok(logged[0]!.includes(d.id));
      assert.match(logged[0]!, /could not be built \(they keep their last target\): release \d+: .*no usable address/);
    });
  });
}
