// A device's UniK images and instances reach the operator: the agent sends them in its state report
// when they change (src/agent/unik/unikServer.ts), the server keeps the last ones and shows them on
// the device; a report without them keeps what was reported.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backends } from './backends.js';
import { device, listen, newDevice, user } from './helpers.js';

const image = { id: 'a1b2c3', name: 'web', provider: 'docker', compiler: 'static-binary-docker', size_mb: 2, created: '2026-12-06T10:00:00.000Z' };
const instance = { id: 'd4e5f6', name: 'web-1', provider: 'docker', state: 'running', image_id: 'a1b2c3', created: '2026-12-06T10:01:00.000Z' };

for (const backend of backends()) {
  describe(`UniK state report on ${backend.name}`, () => {
    test('stored from the report, shown on the device, kept by reports without it, replaced by the next; a malformed one is a 400', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const dev = await newDevice(server);
      const link = device(base, dev.key);
      const read = async () => (await user(server)('GET', `/dongle/devices/${dev.id}/`)).body.unik;

      assert.equal(await read(), null, 'nothing before a report');
      assert.equal((await link.report({ agent_version: '1.0.0', apps: {}, unik: { images: [image], instances: [instance] } })).status, 204);
      assert.deepEqual(await read(), { images: [image], instances: [instance] });

      assert.equal((await link.report({ agent_version: '1.0.0', apps: {} })).status, 204);
      assert.deepEqual(await read(), { images: [image], instances: [instance] }, 'a report without the UniK part keeps it');

      assert.equal((await link.report({ apps: {}, unik: { images: [image], instances: [] } })).status, 204);
      assert.deepEqual(await read(), { images: [image], instances: [] });

      const bad = await link.report({ apps: {}, unik: { images: [{ ...image, secret: 'x' }], instances: [] } });
      assert.equal(bad.status, 400, bad.body);
      assert.deepEqual(await read(), { images: [image], instances: [] }, 'a refused report changes nothing');
    });
  });
}
