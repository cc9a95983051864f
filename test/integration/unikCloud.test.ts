// The operator sees a device's UniK images and instances: the agent's state report carries them
// when they change, and the control plane shows them on the device. A real control plane, an agent
// in cloud mode, the real engine.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { EventLog } from '../../src/agent/eventLog.js';
import { objectLabels } from '../../src/agent/unik/docker/dockerLabels.js';
import { qemuStoreRoot } from '../../src/agent/unik/qemu/store.js';
import { Unik } from '../../src/agent/unik/unikServer.js';
import { controlPlane, provisionedDevice } from './controlPlane.js';
import { docker, ENGINE_SCOPE, image, waitFor } from './harness.js';
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

// The report loads the providers only once there is something to list (BENCHMARKS.md §3): what an
// earlier run left, with no UniK call since, is found all the same.
test('the UniK part of the state report lists what an earlier run left: a qemu image record, a docker instance', async (t) => {
  const dataDir = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `bosun-unik-${name}-`));
  const dirs = [dataDir('none'), dataDir('qemu')];
  t.after(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });
  const unik = (dir: string) => new Unik({ docker, scope: ENGINE_SCOPE, dataDir: dir, log: new EventLog('silent'), onChange: () => {} });
  assert.deepEqual(await unik(dirs[0]!).report(), { images: [], instances: [] });

  const created = new Date().toISOString();
  const id = `left${process.pid}`;
  const record = { Id: id, Name: id, SizeMb: 1, Infrastructure: 'qemu', Created: created, StageSpec: {}, RunSpec: { Compiler: 'static-binary-qemu' } };
  fs.mkdirSync(path.join(qemuStoreRoot(dirs[1]!), 'images', id), { recursive: true });
  fs.writeFileSync(path.join(qemuStoreRoot(dirs[1]!), 'images', id, 'image.json'), JSON.stringify({ image: record, app: 'app', args: [], mounts: [] }));
  assert.deepEqual((await unik(dirs[1]!).report()).images, [{ id, name: id, provider: 'qemu', compiler: 'static-binary-qemu', size_mb: 1, created }]);

  const container = await docker.createContainer({ Image: image('v1'), Labels: objectLabels(ENGINE_SCOPE, id, id, created) });
  t.after(() => container.remove({ force: true }));
  assert.deepEqual((await unik(dirs[0]!).report()).instances, [{ id, name: id, provider: 'docker', state: 'stopped', image_id: '', created }]);
});
