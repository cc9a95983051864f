// The operator sees a device's UniK images and instances: the agent's state report carries them
// when they change, and the control plane shows them on the device. A real control plane, an agent
// in cloud mode, the real engine.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { controlPlane, provisionedDevice } from './controlPlane.js';
import { waitFor } from './harness.js';
import { tarOf, UnikGoClient } from './unikGoClient.js';

test("UniK images and instances reach the device's view on the control plane as they change", async (t) => {
  const cp = await controlPlane(t);
  const { agent, deviceId: registered } = await provisionedDevice(t, cp, 'unik', {}, { unikPort: 0 });
  const deviceId = await registered();
  const c = new UnikGoClient(`127.0.0.1:${agent.unikPort()}`);
  const unik = async () =>
    (await cp.call('GET', `/dongle/devices/${deviceId}/`)).body.unik as {
      images: { name: string; id: string }[];
      instances: { name: string; state: string }[];
    } | null;

  const name = `cloud${process.pid}`;
  const tar = await tarOf([{ name: 'busybox', body: fs.readFileSync('/bin/busybox'), mode: 0o755 }]);
  const image = await c.build(name, tar, 'static', 'binary', 'docker', 'sh -c "while true; do sleep 1; done"', []);
  try {
    await waitFor('the image on the control plane', async () => (await unik())?.images.some((i) => i.id === image.Id && i.name === name));
    const inst = await c.run(`${name}-i`, name, null, null);
    await waitFor('the instance on the control plane', async () => (await unik())?.instances.some((i) => i.name === inst.Name && i.state === 'running'));
    await c.deleteInstance(inst.Id, true);
    await c.deleteImage(image.Id);
    await waitFor('both gone from the control plane', async () => {
      const u = await unik();
      return u && !u.images.some((i) => i.id === image.Id) && !u.instances.some((i) => i.name === inst.Name);
    });
  } finally {
    await c.deleteImage(image.Id, true).catch(() => undefined);
  }
  assert.ok(await unik());
});
