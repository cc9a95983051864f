// A device's state report speaks only for the device, of the apps of its own target and of its own
// releases: device A cannot mark another project's release, or a release meant for device B, as
// succeeded or failed, nor store apps it makes up; oversized reports are refused naming the bound.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Server } from '../../src/server/server.js';
import { backends } from './backends.js';
import { device, listen, newDevice, user } from './helpers.js';

async function release(server: Server, project: number, devices: string[], version = '1'): Promise<number> {
  const res = await user(server)('POST', `/docker/projects/${project}/releases/`, {
    version,
    devices,
    containers: [{ name: 'web', image: 'acme/web', tag: version }],
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return Number(res.body.id);
}

/** The apps of a device's stored state, as the devices resource shows them. */
async function shownApps(server: Server, id: string): Promise<Record<string, { release: number | null }>> {
  return ((await user(server)('GET', `/dongle/devices/${id}/`)).body.state as { apps: Record<string, { release: number | null }> }).apps;
}

const deployments = async (server: Server, id: number) =>
  server.db.selectFrom('deployment').select(['device_id', 'state']).where('release_id', '=', id).orderBy('device_id').execute();

for (const backend of backends()) {
  describe(`state reports are scoped to the device on ${backend.name}`, () => {
    test("device A cannot move another project's deployments, nor those of a release meant for device B of its own project", async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const call = user(server);
      const a = await newDevice(server);
      const b = await newDevice(server);
      const mine = Number((await call('POST', '/docker/projects/', { name: 'mine', devices: [a.id, b.id] })).body.id);
      const theirs = Number((await call('POST', '/docker/projects/', { name: 'theirs', devices: [b.id] })).body.id);
      const rA = await release(server, mine, [a.id, b.id], '1');
      const rTheirs = await release(server, theirs, [b.id], '1');
      const linkA = device(base, a.key);
      await linkA.state();

      // another project's release, which A does not run
      assert.equal((await linkA.report({ apps: { [String(theirs)]: { releaseId: rTheirs, targetReleaseId: rTheirs, updateStatus: 'done' } } })).status, 204);
      assert.deepEqual(await deployments(server, rTheirs), [{ device_id: b.id, state: 'pending' }], "B's deployment untouched, none made for A");
      assert.deepEqual((await call('GET', `/dongle/devices/${a.id}/`)).body.docker_releases, []);
      assert.equal((await shownApps(server, a.id))[String(theirs)], undefined, 'an app not in its target is not stored');

      // a release of its own project that is meant for B only (newer than A's: its target stays rA)
      const rB = await release(server, mine, [b.id], '2');
      assert.equal((await linkA.state()).body!.apps[String(mine)]!.release.id, rA);
      await linkA.report({
        apps: { [String(mine)]: { releaseId: rA, targetReleaseId: rB, updateStatus: 'aborted', services: { web: { status: 'Aborted', error: 'made up' } } } },
      });
      await linkA.report({ apps: { [String(mine)]: { releaseId: rB, targetReleaseId: null, updateStatus: 'done', services: {} } } });
      assert.deepEqual(await deployments(server, rB), [{ device_id: b.id, state: 'pending' }], 'neither failed nor succeeded on its word');
      assert.deepEqual((await call('GET', `/docker/projects/${mine}/releases/${rB}/`)).body.successful_deployments, []);
      assert.equal((await shownApps(server, a.id))[String(mine)]!.release, null, 'a running release that is not its own is unknown to the server');

      // its own release moves as before (B's was superseded when rB became B's target, not by A)
      await linkA.report({ apps: { [String(mine)]: { releaseId: rA, targetReleaseId: rA, updateStatus: 'done', services: { web: { status: 'Running' } } } } });
      assert.deepEqual(
        await deployments(server, rA),
        [
          { device_id: a.id, state: 'succeeded' },
          { device_id: b.id, state: 'superseded' },
        ].sort((x, y) => x.device_id.localeCompare(y.device_id)),
      );
      assert.deepEqual((await call('GET', `/dongle/devices/${a.id}/`)).body.docker_releases, [rA]);
    });

    test('made-up apps are not kept; an app that left the target leaves the stored state', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const call = user(server);
      const a = await newDevice(server);
      const project = Number((await call('POST', '/docker/projects/', { name: 'p', devices: [a.id] })).body.id);
      const r = await release(server, project, [a.id]);
      const link = device(base, a.key);
      const apps = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [String(100_000 + i), { appName: 'x'.repeat(200), updateStatus: 'done' }]));
      assert.equal((await link.report({ apps: { ...apps, [String(project)]: { releaseId: r, updateStatus: 'done' } } })).status, 204);
      const row = await server.db.selectFrom('device').select('state_json').where('id', '=', a.id).executeTakeFirstOrThrow();
      assert.deepEqual(Object.keys(JSON.parse(row.state_json!).apps), [String(project)]);
      assert.ok(row.state_json!.length < 1000, `${row.state_json!.length} characters stored`);

      // the project goes: the next report leaves only what the target holds
      assert.equal((await call('DELETE', `/docker/projects/${project}/`)).status, 204);
      await link.report({ apps: {} });
      assert.deepEqual(await shownApps(server, a.id), {});
    });

    test('oversized reports are refused naming the bound: too many apps or services (400), too large a body or stored state (413)', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const call = user(server);
      const a = await newDevice(server);
      const link = device(base, a.key);
      const many = (n: number, value: unknown) => Object.fromEntries(Array.from({ length: n }, (_, i) => [String(i + 1), value]));

      const apps = await link.report({ apps: many(257, {}) });
      assert.equal(apps.status, 400);
      assert.equal(JSON.parse(apps.body).field, '/apps');
      const services = await link.report({
        apps: { '1': { services: Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`s${i}`, { status: 'Running' }])) } },
      });
      assert.equal(services.status, 400);
      assert.equal(JSON.parse(services.body).field, '/apps/1/services');
      const long = await link.report({ apps: { '1': { services: { web: { error: 'e'.repeat(4001) } } } } });
      assert.equal(long.status, 400);
      assert.equal(JSON.parse(long.body).field, '/apps/1/services/web/error');
      const huge = await link.report({
        apps: { '1': { services: Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`s${i}`, { error: 'e'.repeat(4000) }])) } },
      });
      assert.equal(huge.status, 413);
      assert.match(JSON.parse(huge.body).detail, /too large/);

      // three apps of its target, each reported near the body limit: the state kept would pass 1 MiB
      const projects: number[] = [];
      for (const name of ['p1', 'p2', 'p3']) {
        const p = Number((await call('POST', '/docker/projects/', { name, devices: [a.id] })).body.id);
        await release(server, p, [a.id]);
        projects.push(p);
      }
      const big = { services: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`s${i}`, { error: 'e'.repeat(4000) }])) };
      for (const p of projects.slice(0, 2)) assert.equal((await link.report({ apps: { [String(p)]: big } })).status, 204);
      const over = await link.report({ apps: { [String(projects[2])]: big } });
      assert.equal(over.status, 413);
      assert.match(JSON.parse(over.body).detail, /state would take more than/);
      const row = await server.db.selectFrom('device').select('state_json').where('id', '=', a.id).executeTakeFirstOrThrow();
      assert.deepEqual(Object.keys(JSON.parse(row.state_json!).apps).sort(), projects.slice(0, 2).map(String).sort(), 'a refused report stores nothing');
    });
  });
}
