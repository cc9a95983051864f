// The services (src/server/services) without HTTP: each write that changes what a device's target
// is built from refreshes that target in the same call (TargetWrites), and a write refused or
// failed leaves the target as it was.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { ConflictError, NotFoundError } from '../../src/shared/errors.js';
import { nowIso } from '../../src/server/db/database.js';
import type { Server } from '../../src/server/server.js';
import { backends } from './backends.js';

/** A device registered through the service, in `project` when given. */
async function register(server: Server, project: number | null, name = 'edge-1'): Promise<string> {
  const id = randomUUID();
  const row = { id, unit_id: randomUUID(), device_type: 'generic-amd64', name, device_key_hash: 'x', created_at: nowIso(), last_seen_at: null };
  await server.services.devices.register({ ...row, agent_version: null, state_json: null, provisioning_key_id: null, key_used_at: null }, project);
  return id;
}

for (const backend of backends()) {
  describe(`services on ${backend.name}`, () => {
    test('registering, renaming and releasing through the services refresh the device target; unknown ids are not found', async (t) => {
      const server = await backend.start(t);
      const { devices, projects, releases } = server.services;
      const project = (await projects.create({ name: 'fleet-app' })).id;
      const id = await register(server, project);
      const first = await server.targets.get(id);
      assert.equal(first?.target.name, 'edge-1', 'built at registration');

      await devices.rename(id, 'edge-2');
      const renamed = await server.targets.get(id);
      assert.equal(renamed?.target.name, 'edge-2');
      assert.notEqual(renamed?.etag, first?.etag);

      const release = await releases.create(project, { version: '1', containers: [{ name: 'web', image: 'acme/web' }] });
      assert.deepEqual(release.devices, [id], "the project's devices by default");
      const released = await server.targets.get(id);
      assert.deepEqual(Object.keys(released?.target.apps ?? {}), [String(project)]);

      // refused: nothing stored, the target as it was
      await assert.rejects(releases.create(project, { version: '1', containers: [{ name: 'api', image: 'acme/api' }] }), ConflictError);
      assert.equal((await server.targets.get(id))?.etag, released?.etag);

      await releases.remove(project, release.id);
      assert.deepEqual((await server.targets.get(id))?.target.apps, {}, 'the release is gone from the target');

      await assert.rejects(devices.rename(randomUUID(), 'x'), NotFoundError);
      await devices.remove(id);
      await assert.rejects(devices.remove(id), NotFoundError);
    });
  });
}
