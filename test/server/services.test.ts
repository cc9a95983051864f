// The services (src/server/services) without HTTP: each write that changes what a device's target
// is built from refreshes that target in the same call (TargetWrites), and a write refused or
// failed leaves the target as it was.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ConflictError, NotFoundError, UnauthorizedError, ValidationError } from '../../src/shared/errors.js';
import { nowIso } from '../../src/server/db/database.js';
import { openServer, type Server } from '../../src/server/server.js';
import { backends } from './backends.js';

/** A device registered through the service, in `project` when given. */
async function register(server: Server, project: number | null, name = 'edge-1', provisioning: { key: number; uuid: string } | null = null): Promise<string> {
  const id = randomUUID();
  const unit_id = provisioning?.uuid ?? randomUUID();
  const row = { id, unit_id, device_type: 'generic-amd64', name, device_key_hash: 'x', created_at: nowIso(), last_seen_at: null };
  await server.services.devices.register(
    { ...row, agent_version: null, state_json: null, provisioning_key_id: provisioning?.key ?? null, key_used_at: null },
    project,
  );
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

    test('provisioning keys: created into a project, authenticated, revoked; a registration is repeated only by its key, before the key is used', async (t) => {
      const server = await backend.start(t);
      const { devices, projects, provisioningKeys } = server.services;
      const project = (await projects.create({ name: 'fleet-app' })).id;
      await assert.rejects(provisioningKeys.create('k', project + 1), ValidationError);
      const made = await provisioningKeys.create('k', project);
      const other = await provisioningKeys.create('other', null);
      assert.deepEqual(await provisioningKeys.list(), [
        { id: made.id, name: 'k', project, created_at: made.created_at },
        { id: other.id, name: 'other', project: null, created_at: other.created_at },
      ]);
      const grant = await provisioningKeys.authenticate(made.key);
      assert.deepEqual(grant, { id: made.id, project_id: project });
      await assert.rejects(provisioningKeys.authenticate('bsp_nope'), UnauthorizedError);

      const uuid = randomUUID();
      const id = await register(server, grant.project_id, 'edge-1', { key: grant.id, uuid });
      assert.deepEqual((await devices.get(id)).projects, [project]);
      assert.equal(await devices.rekey(randomUUID(), grant.id, 'h'), undefined, 'an unknown uuid');
      assert.equal(await devices.rekey(uuid, other.id, 'h'), null, 'another key');
      assert.equal(await devices.rekey(uuid, grant.id, 'h2'), id);
      await server.db.updateTable('device').set({ key_used_at: nowIso() }).where('id', '=', id).execute();
      assert.equal(await devices.rekey(uuid, grant.id, 'h3'), null, 'the device has used its key');

      await provisioningKeys.revoke(other.id);
      await assert.rejects(provisioningKeys.revoke(other.id), NotFoundError);
      await assert.rejects(provisioningKeys.authenticate(other.key), UnauthorizedError);
      await projects.remove(project);
      await assert.rejects(provisioningKeys.authenticate(made.key), /no longer exists/);
    });
  });
}

test('presence: one per server, marks devices holding a poll seen every minute, stopped when the server closes', async (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] });
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-server-'));
  t.after(() => fs.rm(dataDir, { recursive: true, force: true }));
  const server = await openServer({ dataDir });
  let closed = false;
  t.after(() => (closed ? undefined : server.close()));
  const id = await register(server, null);
  const { presence } = server.services;
  presence.hold(id);
  t.mock.timers.tick(60_000);
  let seen: string | null = null;
  for (let i = 0; i < 100 && seen === null; i++) {
    await new Promise((r) => setImmediate(r));
    seen = (await server.db.selectFrom('device').select('last_seen_at').where('id', '=', id).executeTakeFirstOrThrow()).last_seen_at;
  }
  assert.notEqual(seen, null, 'marked seen while it holds a poll');
  const stop = t.mock.method(presence, 'stop');
  await server.close();
  closed = true;
  assert.equal(stop.mock.callCount(), 1, 'the server stops it as it closes');
});
