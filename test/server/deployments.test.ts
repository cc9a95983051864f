// Deployments as the device's reports move them, on each storage backend: an applied release is a
// success only once its services settled (a crash loop is a failure with its reason, and drops out
// of successful_deployments and docker_releases); a release the device moved on from is superseded,
// and so is one a newer release replaced in its target while it was offline.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backends } from './backends.js';
import { device, listen, newDevice, newProject, user } from './helpers.js';

const web = (tag: string) => ({ name: 'web', image: 'example/web', tag });

for (const backend of backends()) {
  describe(`deployments on ${backend.name}`, () => {
    async function setup(t: Parameters<typeof backend.start>[0]) {
      const server = await backend.start(t);
      const base = await listen(server);
      const dev = await newDevice(server);
      const project = await newProject(server, [dev.id]);
      const call = user(server);
      const release = async (version: string) => {
        const r = await call('POST', `/docker/projects/${project}/releases/`, { version, containers: [web(version)] });
        assert.equal(r.status, 201, JSON.stringify(r.body));
        return Number(r.body.id);
      };
      const deploymentOf = async (release: number) => {
        const list = (await call('GET', `/docker/projects/${project}/releases/${release}/deployments/`)).body as unknown as {
          device: string;
          state: string;
          error: string | null;
          finished_at: string | null;
        }[];
        return list.find((d) => d.device === dev.id);
      };
      const report = async (app: Record<string, unknown>) =>
        assert.equal((await device(base, dev.key).report({ apps: { [String(project)]: app } })).status, 204);
      return { server, base, dev, project, call, release, deploymentOf, report };
    }

    test('an applied release succeeds once settled; a crash loop fails it with the reason (not deployed); settling after all makes it a success', async (t) => {
      const { dev, project, call, release, deploymentOf, report } = await setup(t);
      const r1 = await release('1');
      const applied = (settle: string | undefined, error: string | null = null) => ({
        releaseId: r1,
        targetReleaseId: r1,
        updateStatus: 'done',
        ...(settle ? { settle } : {}),
        services: { web: { status: error ? 'Restarting' : 'Running', downloadProgress: null, error } },
      });
      const deployed = async () => ({
        successful: (await call('GET', `/docker/projects/${project}/releases/${r1}/`)).body.successful_deployments,
        docker_releases: (await call('GET', `/dongle/devices/${dev.id}/`)).body.docker_releases,
      });

      await report(applied('settling'));
      assert.deepEqual(await deploymentOf(r1), { ...(await deploymentOf(r1))!, state: 'applying', error: null, finished_at: null });
      assert.deepEqual(await deployed(), { successful: [], docker_releases: [] });
      assert.equal(
        ((await call('GET', `/dongle/devices/${dev.id}/`)).body.state as { status?: string } | null)?.status,
        'updating',
        'settling is not idle yet',
      );

      const crash = 'exited with code 1, restarted 3 times; last lines:\nfatal: no config';
      await report(applied('failed', crash));
      const failed = await deploymentOf(r1);
      assert.equal(failed?.state, 'failed');
      assert.equal(failed?.error, `web: ${crash}`);
      assert.ok(failed?.finished_at);
      assert.deepEqual(await deployed(), { successful: [], docker_releases: [] });
      assert.equal(((await call('GET', `/dongle/devices/${dev.id}/`)).body.state as { status?: string } | null)?.status, 'error');

      await report(applied('settling'));
      assert.equal((await deploymentOf(r1))?.state, 'failed', 'running again (not yet for the settle period) does not hide the failure');
      await report(applied('settled'));
      assert.equal((await deploymentOf(r1))?.state, 'succeeded');
      assert.equal((await deploymentOf(r1))?.error, null);
      assert.deepEqual(await deployed(), { successful: [dev.id], docker_releases: [r1] });
      await report(applied('failed', 'exited with code 1'));
      assert.equal((await deploymentOf(r1))?.state, 'succeeded', 'a success is final');
    });

    // a newer release the device has not fetched, a failed one and other projects are left alone
    test('a release the device moved on from is superseded (finished); nothing else is', async (t) => {
      const { server, base, dev, release, deploymentOf, report } = await setup(t);
      const r1 = await release('1');
      await report({ releaseId: null, targetReleaseId: r1, updateStatus: 'applying changes', services: {} });
      assert.equal((await deploymentOf(r1))?.state, 'applying');
      // another project's release under way on the same device
      const other = await newProject(server, [dev.id], 'other-app');
      const o1 = await user(server)('POST', `/docker/projects/${other}/releases/`, { version: '1', containers: [web('1')] });
      await device(base, dev.key).report({
        apps: { [String(other)]: { releaseId: null, targetReleaseId: Number(o1.body.id), updateStatus: 'downloading', services: {} } },
      });

      const r2 = await release('2');
      const r3 = await release('3');
      // the device took release 2 (release 3 is on the server, not fetched yet)
      await report({ releaseId: null, targetReleaseId: r2, updateStatus: 'downloading', services: {} });
      const superseded = await deploymentOf(r1);
      assert.equal(superseded?.state, 'superseded');
      assert.ok(superseded?.finished_at, 'a superseded deployment has finished');
      assert.equal((await deploymentOf(r2))?.state, 'downloading');
      assert.equal((await deploymentOf(r3))?.state, 'pending', 'a newer release is not superseded by an older one');
      const otherDeployment = await server.db.selectFrom('deployment').select('state').where('release_id', '=', Number(o1.body.id)).executeTakeFirst();
      assert.equal(otherDeployment?.state, 'downloading', "another project's deployment is not touched");

      // release 2 fails; then the device moves to release 3: the failure stays, the record of what happened
      await report({
        releaseId: null,
        targetReleaseId: r2,
        updateStatus: 'aborted',
        services: { web: { status: 'Aborted', downloadProgress: null, error: 'manifest unknown' } },
      });
      assert.equal((await deploymentOf(r2))?.state, 'failed');
      await report({ releaseId: null, targetReleaseId: r3, updateStatus: 'applying changes', settle: null, services: {} });
      await report({
        releaseId: r3,
        targetReleaseId: r3,
        updateStatus: 'done',
        settle: 'settled',
        services: { web: { status: 'Running', downloadProgress: null, error: null } },
      });
      assert.equal((await deploymentOf(r2))?.state, 'failed');
      assert.equal((await deploymentOf(r2))?.error, 'web: manifest unknown');
      assert.equal((await deploymentOf(r3))?.state, 'succeeded');
      assert.equal((await deploymentOf(r1))?.state, 'superseded');
    });

    test('an offline device: a newer release in its target supersedes the older one at once; the older one in its target again is pending again', async (t) => {
      const { server, dev, project, call, release, deploymentOf, report } = await setup(t);
      const r1 = await release('1');
      assert.equal((await deploymentOf(r1))?.state, 'pending');
      const r2 = await release('2');
      const superseded = await deploymentOf(r1);
      assert.equal(superseded?.state, 'superseded', 'the device will never run release 1: its target is release 2');
      assert.ok(superseded?.finished_at);
      assert.equal((await deploymentOf(r2))?.state, 'pending');

      // release 2 no longer lists the device: its target is release 1 again
      assert.equal((await call('PATCH', `/docker/projects/${project}/releases/${r2}/`, { devices: [] })).status, 200);
      assert.deepEqual(await deploymentOf(r1), { ...(await deploymentOf(r1))!, state: 'pending', error: null, finished_at: null });
      // a deployment just made of a release older than the target's: superseded, though no target changed
      assert.equal((await call('PATCH', `/docker/projects/${project}/releases/${r2}/`, { devices: [dev.id] })).status, 200);
      assert.equal((await deploymentOf(r1))?.state, 'superseded');
      assert.equal((await call('PATCH', `/docker/projects/${project}/releases/${r1}/`, { devices: [dev.id] })).status, 200);
      assert.equal((await deploymentOf(r1))?.state, 'superseded', 'only its target release is pending');
      assert.equal((await deploymentOf(r2))?.state, 'pending');

      // a finished deployment stays as it was; a device that reports on a superseded release moves it on
      await report({ releaseId: r2, targetReleaseId: r2, updateStatus: 'done', settle: 'settled', services: {} });
      await release('3');
      assert.equal((await deploymentOf(r2))?.state, 'succeeded');
      await report({ releaseId: r2, targetReleaseId: r1, updateStatus: 'downloading', services: {} });
      assert.equal((await deploymentOf(r1))?.state, 'downloading');
      // the superseding is per device and project: another project's deployment on the device is not touched
      const other = await newProject(server, [dev.id], 'other-app');
      const o1 = await call('POST', `/docker/projects/${other}/releases/`, { version: '1', containers: [web('1')] });
      const otherState = () => server.db.selectFrom('deployment').select('state').where('release_id', '=', Number(o1.body.id)).executeTakeFirst();
      await release('4');
      assert.equal((await otherState())?.state, 'pending');
    });
  });
}
