// The device link on each storage backend: provisioning keys, registration, the target state with
// ETags and long polls (woken by a change on this node or, on PostgreSQL, on another node), the
// device's reports moving deployments along, and the devices resource.
import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import { sql } from 'kysely';
import { nowIso } from '../../src/server/db/database.js';
import type { Server } from '../../src/server/server.js';
import { payloadChunks, type PgNotifier } from '../../src/server/wakeups/pgNotifier.js';
import { backends, nodes } from './backends.js';
import { device, hex, listen, newDevice, newProject, provisioningKey, register, sleep, until, user, waiting } from './helpers.js';

/** A release row for these devices, as the releases resource would store it (no target refresh). */
async function insertRelease(server: Server, project: number, devices: string[], image = 'example/web'): Promise<number> {
  const { id } = await server.db
    .insertInto('release')
    .values({ project_id: project, version: '1.0.0', version_hash: hex(4), remove_containers: '[]', created_at: nowIso() })
    .returning('id')
    .executeTakeFirstOrThrow();
  await server.db
    .insertInto('release_container')
    .values({ release_id: id, position: 0, name: 'web', image, tag: 'v1', required_tags: '[]', startup_parameters: '{}', purge_data: 0, registry_id: null })
    .execute();
  if (devices.length)
    await server.db
      .insertInto('release_device')
      .values(devices.map((device_id) => ({ release_id: id, device_id })))
      .execute();
  return id;
}

async function deployment(server: Server, release: number, deviceId: string) {
  return server.db.selectFrom('deployment').selectAll().where('release_id', '=', release).where('device_id', '=', deviceId).executeTakeFirst();
}

for (const backend of backends()) {
  describe(`device link on ${backend.name}`, () => {
    test('provisioning keys: created (shown once, stored as a digest), listed, revoked; a project that does not exist is a 400', async (t) => {
      const server = await backend.start(t);
      const call = user(server);
      const project = await newProject(server);
      const created = await call('POST', '/provisioning-keys/', { name: 'line 3', project });
      assert.equal(created.status, 201);
      const key = String(created.body.key);
      assert.match(key, /^bsp_[A-Za-z0-9_-]{43}$/);
      assert.deepEqual(
        { ...created.body, key: undefined, created_at: undefined },
        { id: created.body.id, name: 'line 3', project, key: undefined, created_at: undefined },
      );
      const fleet = await call('POST', '/provisioning-keys/', { name: 'fleet-wide' });
      assert.equal(fleet.body.project, null);
      const listed = await call('GET', '/provisioning-keys/');
      assert.deepEqual(
        listed.body.map((k) => [k.name, k.project]),
        [
          ['line 3', project],
          ['fleet-wide', null],
        ],
      );
      assert.ok(!JSON.stringify(listed.body).includes(key), 'a key is never shown again');
      const stored = await server.db.selectFrom('provisioning_key').select('key_hash').execute();
      assert.ok(!JSON.stringify(stored).includes(key), 'only a digest is stored');

      const noProject = await call('POST', '/provisioning-keys/', { name: 'x', project: 4242 });
      assert.equal(noProject.status, 400);
      assert.equal(noProject.body.field, '/project');
      assert.equal((await call('POST', '/provisioning-keys/', { name: 'x' }, '')).status, 401, 'the user API needs a token');

      assert.equal((await call('DELETE', `/provisioning-keys/${String(created.body.id)}/`)).status, 204);
      assert.equal((await register(server, key)).status, 401, 'a revoked key registers nothing');
      assert.equal((await call('DELETE', `/provisioning-keys/${String(created.body.id)}/`)).status, 404);
      assert.deepEqual(
        (await call('GET', '/provisioning-keys/')).body.map((k) => k.name),
        ['fleet-wide'],
      );
    });

    // the same uuid again, once the device used its key, is a 409; a bad key is a 401; a project key adds the device to its project
    test('register: 201 with the device id and its key; 409, 401; a project key adds the device to its project', async (t) => {
      const server = await backend.start(t);
      const project = await newProject(server);
      const key = await provisioningKey(server, project);
      const id = hex();
      const first = await register(server, key, { uuid: id, device_type: 'raspberrypi4-64', name: 'truck-7' });
      assert.equal(first.status, 201);
      assert.deepEqual(Object.keys(first.body).sort(), ['device_key', 'id', 'uuid']);
      assert.match(first.body.id, /^[0-9a-f-]{36}$/);
      assert.equal(first.body.uuid, id);
      assert.match(first.body.device_key, /^bsd_[A-Za-z0-9_-]{43}$/);
      const row = await server.db.selectFrom('device').selectAll().where('id', '=', first.body.id).executeTakeFirstOrThrow();
      assert.ok(!JSON.stringify(row).includes(first.body.device_key), 'the device key is stored as a digest');

      const base = await listen(server);
      assert.equal((await device(base, first.body.device_key).state()).status, 200);
      const again = await register(server, key, { uuid: id.toUpperCase(), device_type: 'raspberrypi4-64' });
      assert.equal(again.status, 409);
      assert.match(String(again.body.detail), /already registered/);
      assert.equal((await register(server, 'bsp_wrong')).status, 401);
      assert.equal((await server.app.inject({ method: 'POST', url: '/device/register', payload: { uuid: hex(), device_type: 'x' } })).statusCode, 401);
      assert.equal((await register(server, server.firstAdminToken!)).status, 401, 'a user token is not a provisioning key');
      const badUuid = await register(server, key, { uuid: 'not-hex!', device_type: 'x' });
      assert.equal(badUuid.status, 400);
      assert.equal(badUuid.body.field, '/uuid');
      assert.equal((await register(server, key, { uuid: 'abc12', device_type: 'x' })).status, 400, 'at least 7 hex digits');

      const read = await user(server)('GET', `/dongle/devices/${first.body.id}/`);
      assert.equal(read.status, 200);
      assert.deepEqual(read.body.projects, [project]);
      assert.equal(read.body.unit_id, id);
      assert.equal(read.body.name, 'truck-7');
      assert.equal(read.body.device_type, 'raspberrypi4-64');
      assert.deepEqual((await user(server)('GET', `/docker/projects/${project}/`)).body.devices, [first.body.id]);
      const unnamed = await register(server, await provisioningKey(server));
      assert.equal((await user(server)('GET', `/dongle/devices/${unnamed.body.id}/`)).body.name, unnamed.body.uuid.slice(0, 7));
      assert.deepEqual((await user(server)('GET', `/dongle/devices/${unnamed.body.id}/`)).body.projects, [], 'a fleet-wide key adds to no project');
    });

    test('target state: 200 with the target and its ETag, 304 for If-None-Match, 401 for a wrong device key; a wait with no change ends in 304', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const dev = await newDevice(server);
      const link = device(base, dev.key);
      const first = await link.state();
      assert.equal(first.status, 200);
      assert.match(first.etag!, /^"[0-9a-f]{32}"$/);
      assert.deepEqual(first.body, (await server.targets.get(dev.id))!.target);
      assert.equal(`"${(await server.targets.get(dev.id))!.etag}"`, first.etag);
      const cached = await link.state({ etag: first.etag! });
      assert.equal(cached.status, 304);
      assert.equal(cached.etag, first.etag);
      assert.equal((await link.state({ etag: `W/${first.etag!}` })).status, 304, 'a weak tag matches too');
      assert.equal((await link.state({ etag: '"other"' })).status, 200);

      assert.equal((await device(base, 'bsd_wrong').state()).status, 401);
      assert.equal((await device(base, server.firstAdminToken!).state()).status, 401, 'a user token is not a device key');
      assert.equal((await fetch(`${base}/device/v1/state`)).status, 401);
      assert.equal((await link.state({ wait: 301 })).status, 400, 'wait is 0–300 s');

      const waited = await link.state({ etag: first.etag!, wait: 1 });
      assert.equal(waited.status, 304);
      assert.ok(waited.ms >= 950 && waited.ms < 3000, `a wait of 1 s took ${Math.round(waited.ms)} ms`);
      assert.equal(waiting(server), 0, 'no waiter is left behind');
      const noEtag = await link.state({ wait: 30 });
      assert.equal(noEtag.status, 200, 'without If-None-Match a wait answers at once');
      assert.ok(noEtag.ms < 1000);
    });

    test('a long poll answers as soon as the target changes (well under a second)', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const dev = await newDevice(server);
      const other = await newDevice(server);
      const link = device(base, dev.key);
      const { etag } = await link.state();
      const project = await newProject(server, [dev.id]);

      const polling = link.state({ etag: etag!, wait: 30 });
      const otherPolling = device(base, other.key).state({ etag: (await device(base, other.key).state()).etag!, wait: 2 });
      await until('the poll to wait', () => waiting(server) === 2);
      await sleep(100);
      // the release, as the releases resource does it: commit, then refresh the targets of its devices
      const release = await insertRelease(server, project, [dev.id]);
      const changed = performance.now();
      assert.deepEqual(await server.targets.refresh([dev.id, other.id]), [dev.id]);
      const answer = await polling;
      const latency = performance.now() - changed;
      t.diagnostic(`${backend.name}, one node: release → waiting device answered in ${latency.toFixed(1)} ms`);
      assert.equal(answer.status, 200);
      assert.notEqual(answer.etag, etag);
      assert.equal(answer.body!.apps[String(project)]!.release.id, release);
      assert.equal(answer.body!.apps[String(project)]!.release.services.web!.image, 'example/web:v1');
      assert.ok(latency < 1000, `answered ${latency} ms after the change`);
      assert.equal((await otherPolling).status, 304, 'a device whose target did not change keeps waiting');

      // a wake-up whose ETag did not really change keeps the poll waiting until its deadline
      const again = link.state({ etag: answer.etag!, wait: 1 });
      await until('the poll to wait', () => waiting(server) === 1);
      await server.notifier.notify([dev.id]);
      const unchanged = await again;
      assert.equal(unchanged.status, 304);
      assert.ok(unchanged.ms >= 950, `a spurious wake-up ended the wait after ${Math.round(unchanged.ms)} ms`);

      // renaming the device changes its target
      const renamed = link.state({ etag: answer.etag!, wait: 30 });
      await until('the poll to wait', () => waiting(server) === 1);
      assert.equal((await user(server)('PATCH', `/dongle/devices/${dev.id}/`, { name: 'renamed' })).status, 200);
      const r = await renamed;
      assert.equal(r.status, 200);
      assert.equal(r.body!.name, 'renamed');
      assert.ok(r.ms < 1000);
    });

    test('a device hanging up ends its wait: no waiter is left behind', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const dev = await newDevice(server);
      const { etag } = await device(base, dev.key).state();
      const req = http.get(`${base}/device/v1/state?wait=30`, { headers: { authorization: `Bearer ${dev.key}`, 'if-none-match': etag! } });
      req.on('error', () => {});
      await until('the poll to wait', () => waiting(server) === 1);
      req.destroy();
      await until('the waiter to go', () => waiting(server) === 0, 2000);
      // the server still answers (nothing broke on the closed connection)
      assert.equal((await device(base, dev.key).state({ etag: etag! })).status, 304);
    });

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

    test('devices: list, read, rename, delete (its key stops working); last_seen is recorded, throttled', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const call = user(server);
      const a = await newDevice(server);
      const b = await newDevice(server);
      const listed = await call('GET', '/dongle/devices/');
      assert.equal(listed.status, 200);
      assert.deepEqual(listed.body.map((d) => d.id).sort(), [a.id, b.id].sort());
      assert.deepEqual(Object.keys(listed.body[0]!).sort(), [
        'agent_version',
        'device_type',
        'docker_releases',
        'id',
        'last_seen',
        'name',
        'online',
        'projects',
        'state',
        'target_error',
        'unit_id',
      ]);
      assert.equal(listed.body[0]!.target_error, null);
      assert.equal(listed.body[0]!.state, null);
      assert.equal(listed.body[0]!.online, true, 'registering is being seen');

      // seen: an old last_seen is refreshed by a call, a recent one is not rewritten
      const old = new Date(Date.now() - 5 * 60_000).toISOString();
      await server.db.updateTable('device').set({ last_seen_at: old }).where('id', '=', a.id).execute();
      assert.equal((await call('GET', `/dongle/devices/${a.id}/`)).body.online, false);
      const { etag } = await device(base, a.key).state();
      const seen = String((await call('GET', `/dongle/devices/${a.id}/`)).body.last_seen);
      assert.ok(seen > old);
      assert.equal((await call('GET', `/dongle/devices/${a.id}/`)).body.online, true);
      await sleep(20);
      await device(base, a.key).state({ etag: etag! });
      assert.equal((await call('GET', `/dongle/devices/${a.id}/`)).body.last_seen, seen, 'at most one write per 10 s');

      const patched = await call('PATCH', `/dongle/devices/${a.id}/`, { name: 'forklift' });
      assert.equal(patched.status, 200);
      assert.equal(patched.body.name, 'forklift');
      assert.equal((await server.targets.get(a.id))!.target.name, 'forklift');
      assert.equal((await call('PATCH', `/dongle/devices/${a.id}/`, { name: '' })).body.field, '/name');
      assert.equal((await call('PATCH', `/dongle/devices/${a.id}/`, { unit_id: 'x' })).status, 400);
      assert.equal((await call('GET', '/dongle/devices/nope/')).status, 404);
      assert.equal((await call('PATCH', '/dongle/devices/nope/', { name: 'x' })).status, 404);
      assert.equal((await call('GET', '/dongle/devices/', undefined, '')).status, 401);

      // deleting a device ends the poll it holds and its key
      const held = device(base, a.key).state({ etag: (await device(base, a.key).state()).etag!, wait: 30 });
      await until('the poll to wait', () => waiting(server) === 1);
      assert.equal((await call('DELETE', `/dongle/devices/${a.id}/`)).status, 204);
      const ended = await held;
      assert.equal(ended.status, 401);
      assert.ok(ended.ms < 1000);
      assert.equal((await call('GET', `/dongle/devices/${a.id}/`)).status, 404);
      assert.equal((await call('DELETE', `/dongle/devices/${a.id}/`)).status, 404);
      assert.equal((await device(base, a.key).state()).status, 401);
      assert.deepEqual(
        (await call('GET', '/dongle/devices/')).body.map((d) => d.id),
        [b.id],
      );
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

    test('closing the server answers the polls it holds at once', async (t) => {
      const servers = await nodes(t, backend.name, 1);
      const server = servers[0]!;
      const base = await listen(server);
      const dev = await newDevice(server);
      const { etag } = await device(base, dev.key).state();
      const held = device(base, dev.key).state({ etag: etag!, wait: 60 });
      await until('the poll to wait', () => waiting(server) === 1);
      const started = performance.now();
      await server.close();
      assert.equal((await held).status, 304);
      assert.ok(performance.now() - started < 2000, 'close does not wait for the poll deadline');
    });
  });
}

test('NOTIFY payloads: device ids, comma-separated, each payload under 8000 bytes', () => {
  const ids = Array.from({ length: 1000 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
  const chunks = payloadChunks(ids);
  assert.equal(chunks.length, 5);
  assert.ok(chunks.every((c) => Buffer.byteLength(c) < 8000));
  assert.deepEqual(chunks.join(',').split(','), ids);
  assert.deepEqual(payloadChunks([]), []);
  assert.throws(() => payloadChunks(['a,b']), /not a device id/);
});

if (process.env.BOSUN_TEST_DATABASE_URL) {
  describe('device link on several PostgreSQL nodes', () => {
    test('a change made through node A wakes a device long-polling node B in well under a second', async (t) => {
      const servers = await nodes(t, 'postgres', 2);
      const [a, b] = servers as [Server, Server];
      const baseB = await listen(b);
      const dev = await newDevice(a);
      const link = device(baseB, dev.key);
      let { etag } = await link.state();
      const project = await newProject(a, [dev.id]);

      const latencies: number[] = [];
      for (let i = 0; i < 5; i++) {
        const polling = link.state({ etag: etag!, wait: 30 });
        await until('the poll to wait on B', () => waiting(b) === 1);
        await insertRelease(a, project, [dev.id]);
        const changed = performance.now();
        await a.targets.refresh([dev.id]);
        const answer = await polling;
        latencies.push(performance.now() - changed);
        assert.equal(answer.status, 200);
        assert.notEqual(answer.etag, etag);
        etag = answer.etag;
      }
      t.diagnostic(`postgres, two nodes: change on A → device waiting on B answered in ${latencies.map((l) => l.toFixed(1)).join(', ')} ms`);
      assert.ok(Math.max(...latencies) < 500, `latencies ${latencies.join(', ')} ms`);

      // through the user API of node A: a release, then a rename
      const viaApi = link.state({ etag: etag!, wait: 30 });
      await until('the poll to wait on B', () => waiting(b) === 1);
      const started = performance.now();
      const created = await user(a)('POST', `/docker/projects/${project}/releases/`, {
        version: '2.0.0',
        containers: [{ name: 'web', image: 'example/web', tag: 'v2' }],
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const released = await viaApi;
      const apiLatency = performance.now() - started;
      assert.equal(released.status, 200);
      assert.equal(released.body!.apps[String(project)]!.release.id, Number(created.body.id));
      t.diagnostic(`postgres, two nodes: POST release on A → device waiting on B answered ${apiLatency.toFixed(1)} ms after the request was sent`);
      assert.ok(apiLatency < 1000);
      etag = released.etag;

      const renamed = link.state({ etag: etag!, wait: 30 });
      await until('the poll to wait on B', () => waiting(b) === 1);
      assert.equal((await user(a)('PATCH', `/dongle/devices/${dev.id}/`, { name: 'via-a' })).status, 200);
      const r = await renamed;
      assert.equal(r.status, 200);
      assert.equal(r.body!.name, 'via-a');
      assert.ok(r.ms < 1000);
    });

    test('NOTIFY payloads are chunked under 8000 bytes: a change to many devices wakes them all', async (t) => {
      const servers = await nodes(t, 'postgres', 2);
      const [a, b] = servers as [Server, Server];
      // 400 device ids of 36 characters: about 15 kB of ids, two notifications at least
      const ids = Array.from({ length: 400 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
      const woken = ids.map((id) => b.notifier.waitForChange(id, 5000));
      const started = performance.now();
      await a.notifier.notify(ids);
      assert.deepEqual(new Set(await Promise.all(woken)), new Set([true]));
      t.diagnostic(`postgres: 400 waiters on B woken by one notify on A in ${(performance.now() - started).toFixed(1)} ms`);
    });

    test('the listening connection is re-established when it drops, and the waiters re-check their targets', async (t) => {
      const servers = await nodes(t, 'postgres', 2);
      const [a, b] = servers as [Server, Server];
      const notifierB = b.notifier as PgNotifier;
      const baseB = await listen(b);
      const dev = await newDevice(a);
      const link = device(baseB, dev.key);
      const { etag } = await link.state();
      const project = await newProject(a, [dev.id]);
      // Notifications of the device sent so far (its first target, built by the poll above) reach B
      // before the poll waits: a late one would wake it to find the unannounced change below.
      const heard = b.notifier.waitForChange('barrier', 10_000);
      await a.notifier.notify(['barrier']);
      assert.ok(await heard);
      // The poll counts as waiting from before its first look: the change must come after that look.
      let looks = 0;
      const stored = b.targets.stored.bind(b.targets);
      b.targets.stored = async (ids) => stored(ids).finally(() => looks++);
      const polling = link.state({ etag: etag!, wait: 30 });
      await until('the poll to wait on B', () => waiting(b) === 1 && looks > 0);

      // a change that nobody is told of (as one made while B does not listen): the poll keeps waiting
      const { target } = (await a.targets.get(dev.id))!;
      await a.db
        .updateTable('device_target')
        .set({ etag: 'f'.repeat(32), target_json: JSON.stringify({ ...target, name: 'unannounced' }) })
        .where('device_id', '=', dev.id)
        .execute();
      await sleep(200);
      assert.equal(waiting(b), 1);
      // B's listener is cut off: B reconnects, and every waiter re-checks its ETag
      const pid = notifierB.listenerPid;
      assert.ok(pid);
      const reconnected = notifierB.nextConnect();
      const cut = performance.now();
      await sql`select pg_terminate_backend(${pid}::int)`.execute(a.db);
      const answer = await polling;
      const answeredAfter = performance.now() - cut;
      await reconnected;
      assert.equal(answer.status, 200);
      assert.equal(answer.body!.name, 'unannounced');
      assert.equal(notifierB.reconnects, 1);
      assert.notEqual(notifierB.listenerPid, pid);
      t.diagnostic(`postgres: B's listener cut off → reconnected and the waiting poll answered ${answeredAfter.toFixed(0)} ms later`);

      // and B hears notifications again
      const next = link.state({ etag: answer.etag!, wait: 30 });
      await until('the poll to wait on B', () => waiting(b) === 1);
      await insertRelease(a, project, [dev.id]);
      const changed = performance.now();
      await a.targets.refresh([dev.id]);
      assert.equal((await next).status, 200);
      assert.ok(performance.now() - changed < 1000);
    });
  });
}
