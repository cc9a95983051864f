// The device link on each storage backend: the device's state reports, validated, merged into its
// state and moving deployments along; and a release created through the API reaching a device.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Server } from '../../src/server/server.js';
import { backends } from './backends.js';
import { device, listen, newDevice, newProject, until, user, waiting } from './helpers.js';
import { insertRelease } from './deviceLinkFixture.js';

async function deployment(server: Server, release: number, deviceId: string) {
  return server.db.selectFrom('deployment').selectAll().where('release_id', '=', release).where('device_id', '=', deviceId).executeTakeFirst();
}

for (const backend of backends()) {
  describe(`device link on ${backend.name}`, () => {
    test('reports: merged into the device state; deployments move to downloading, applying, succeeded or failed; docker_releases', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const dev = await newDevice(server);
      const call = user(server);
      const link = device(base, dev.key);
      const project = await newProject(server, [dev.id]);
      const r1 = await insertRelease(server, project, [dev.id]);
      await server.targets.refresh([dev.id]);
      const app = (over: Record<string, unknown> = {}) => ({
        [String(project)]: {
          releaseId: null,
          targetReleaseId: r1,
          updateStatus: 'downloading',
          services: { web: { status: 'Downloading', downloadProgress: 40, error: null } },
          ...over,
        },
      });

      assert.equal((await link.report({ agent_version: '0.1.0', apps: app() })).status, 204);
      assert.equal((await deployment(server, r1, dev.id))?.state, 'downloading');
      let read = await call('GET', `/dongle/devices/${dev.id}/`);
      assert.equal(read.body.agent_version, '0.1.0');
      assert.deepEqual(read.body.state, {
        reported_at: (read.body.state as { reported_at: string }).reported_at,
        status: 'updating',
        apps: {
          [String(project)]: {
            release: null,
            target_release: r1,
            update_status: 'downloading',
            services: { web: { status: 'Downloading', download_progress: 40, error: null } },
          },
        },
      });
      assert.equal(
        (
          await link.report({
            apps: app({ updateStatus: 'applying changes', services: { web: { status: 'Installing', downloadProgress: null, error: null } } }),
          })
        ).status,
        204,
      );
      assert.equal((await deployment(server, r1, dev.id))?.state, 'applying');
      assert.equal(
        (
          await link.report({
            apps: app({ releaseId: r1, updateStatus: 'done', services: { web: { status: 'Running', downloadProgress: null, error: null } } }),
          })
        ).status,
        204,
      );
      const done = await deployment(server, r1, dev.id);
      assert.equal(done?.state, 'succeeded');
      assert.ok(done?.finished_at);
      read = await call('GET', `/dongle/devices/${dev.id}/`);
      assert.deepEqual(read.body.docker_releases, [r1]);
      assert.equal((read.body.state as { status: string }).status, 'idle');
      assert.equal(read.body.online, true);

      // a partial report (only updateStatus) keeps the rest of the app's last report
      assert.equal((await link.report({ apps: { [String(project)]: { updateStatus: 'done' } } })).status, 204);
      read = await call('GET', `/dongle/devices/${dev.id}/`);
      assert.equal(
        (read.body.state as { apps: Record<string, { services: Record<string, { status: string }> }> }).apps[String(project)]!.services.web!.status,
        'Running',
      );

      // the next release fails (its image is missing): failed with the error; the first stays deployed
      const r2 = await insertRelease(server, project, [dev.id], 'example/missing');
      await server.targets.refresh([dev.id]);
      const pullError = 'pull access denied for example/missing';
      assert.equal(
        (
          await link.report({
            apps: app({
              releaseId: r1,
              targetReleaseId: r2,
              updateStatus: 'aborted',
              services: { web: { status: 'Aborted', downloadProgress: null, error: pullError } },
            }),
          })
        ).status,
        204,
      );
      const failed = await deployment(server, r2, dev.id);
      assert.equal(failed?.state, 'failed');
      assert.equal(failed?.error, `web: ${pullError}`);
      assert.ok(failed?.finished_at);
      assert.equal((await deployment(server, r1, dev.id))?.state, 'succeeded', 'a success is final');
      read = await call('GET', `/dongle/devices/${dev.id}/`);
      assert.deepEqual(read.body.docker_releases, [r1]);
      assert.equal((read.body.state as { status: string }).status, 'error');
      // a retry in progress does not hide the failure; a later success does
      await link.report({
        apps: app({
          releaseId: r1,
          targetReleaseId: r2,
          updateStatus: 'downloading',
          services: { web: { status: 'Downloading', downloadProgress: 5, error: null } },
        }),
      });
      assert.equal((await deployment(server, r2, dev.id))?.state, 'failed');
      await link.report({
        apps: app({ releaseId: r2, targetReleaseId: r2, updateStatus: 'done', services: { web: { status: 'Running', downloadProgress: null, error: null } } }),
      });
      assert.equal((await deployment(server, r2, dev.id))?.state, 'succeeded');
      assert.deepEqual((await call('GET', `/dongle/devices/${dev.id}/`)).body.docker_releases, [r1, r2]);

      // without targetReleaseId, the target is the one the server gives the device
      const r3 = await insertRelease(server, project, [dev.id]);
      await server.targets.refresh([dev.id]);
      await link.report({ apps: { [String(project)]: { releaseId: r2, targetReleaseId: null, updateStatus: 'applying changes', services: {} } } });
      assert.equal((await deployment(server, r3, dev.id))?.state, 'applying');
      // an app id or release the server does not know moves nothing
      await link.report({ apps: { '999': { releaseId: r3, updateStatus: 'done' } } });
      assert.equal((await deployment(server, r3, dev.id))?.state, 'applying');
      // null removes an app from the device's state
      await link.report({ apps: { '999': null } });
      read = await call('GET', `/dongle/devices/${dev.id}/`);
      assert.deepEqual(Object.keys((read.body.state as { apps: object }).apps), [String(project)]);
    });

    test('reports are validated: a 400 names the field; a wrong device key is a 401', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const dev = await newDevice(server);
      const link = device(base, dev.key);
      const cases: [unknown, string][] = [
        [{ apps: { '1': { updateStatus: 'finished' } } }, '/apps/1/updateStatus'],
        [{ apps: { abc: {} } }, '/apps/abc'],
        [{ apps: { '1': { services: { web: { status: 'Running', colour: 'red' } } } } }, '/apps/1/services/web/colour'],
        [{ apps: { '1': { services: { web: { downloadProgress: 140 } } } } }, '/apps/1/services/web/downloadProgress'],
        [{ agent_version: 7 }, '/agent_version'],
        [{ surprise: true }, '/surprise'],
      ];
      for (const [body, field] of cases) {
        const res = await link.report(body);
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.equal((JSON.parse(res.body) as { field: string }).field, field);
      }
      const stored = await server.db.selectFrom('device').select('state_json').where('id', '=', dev.id).executeTakeFirstOrThrow();
      assert.equal(stored.state_json, null, 'a refused report stores nothing');
      assert.equal((await device(base, 'bsd_wrong').report({ apps: { abc: 1 } })).status, 401, 'the key is checked before the body');
      assert.equal((await link.report({})).status, 204);
    });

    test('through the API: a release created for a device reaches its long poll; its report shows in successful_deployments and docker_releases', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const call = user(server);
      const dev = await newDevice(server);
      const link = device(base, dev.key);
      const project = await newProject(server, [dev.id]);
      const polling = link.state({ etag: (await link.state()).etag!, wait: 30 });
      await until('the poll to wait', () => waiting(server) === 1);
      const started = performance.now();
      const created = await call('POST', `/docker/projects/${project}/releases/`, {
        version: '1.0.0',
        containers: [{ name: 'web', image: 'example/web', tag: 'v1' }],
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const release = Number(created.body.id);
      const answer = await polling;
      const latency = performance.now() - started;
      assert.equal(answer.status, 200);
      assert.equal(answer.body!.apps[String(project)]!.release.id, release);
      assert.ok(latency < 1000);
      t.diagnostic(`${backend.name}, one node: POST release → waiting device answered ${latency.toFixed(1)} ms after the request was sent`);

      await link.report({
        apps: {
          [String(project)]: {
            releaseId: release,
            targetReleaseId: release,
            updateStatus: 'done',
            services: { web: { status: 'Running', downloadProgress: null, error: null } },
          },
        },
      });
      assert.deepEqual((await call('GET', `/docker/projects/${project}/releases/${release}/`)).body.successful_deployments, [dev.id]);
      const deployments = await call('GET', `/docker/projects/${project}/releases/${release}/deployments/`);
      assert.deepEqual(
        deployments.body.map((d) => [d.device, d.state]),
        [[dev.id, 'succeeded']],
      );
      assert.deepEqual((await call('GET', `/dongle/devices/${dev.id}/`)).body.docker_releases, [release]);
    });
  });
}
