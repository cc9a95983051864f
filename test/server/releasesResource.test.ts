// Releases on each storage backend, as an AutoPi API client sees them: the documented payload,
// generated fields, active/, PUT/PATCH/DELETE, deployments, version hashes, the OpenAPI document.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { versionHashes } from '../../src/server/routes/releases.js';
import { backends } from './backends.js';
import { fixture, documented } from './releasesFixture.js';

for (const backend of backends()) {
  describe(`releases on ${backend.name}`, () => {
    test('the documented payload: the entity, generated fields, list, active/, pending deployments', async (t) => {
      const server = await backend.start(t);
      const { call, registry, releases } = await fixture(server);
      const created = await call('POST', `${releases}/`, documented(registry));
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const id = Number(created.body.id);
      const hash = String(created.body.version_hash);
      assert.match(hash, /^[0-9a-f]{8}$/);
      assert.notEqual(hash, '96a7191f', 'the version hash sent is ignored: it is generated');
      const payload = documented(registry);
      assert.deepEqual(created.body, {
        id,
        version: '1.0.0',
        version_hash: hash,
        devices: ['dev-a', 'dev-b'], // none given: the project's devices
        containers: payload.containers.map((c) => ({ ...c, fully_qualified_name: `deployment-${c.name}-${id}` })),
        remove_containers: ['curveball-old'],
        successful_deployments: [], // read-only: what was sent is ignored
        created_at: created.body.created_at,
      });
      assert.ok(!Number.isNaN(Date.parse(String(created.body.created_at))));

      assert.deepEqual((await call('GET', `${releases}/${id}/`)).body, created.body);
      assert.deepEqual((await call('GET', `${releases}/${id}`)).body, created.body, 'the trailing slash is optional');
      assert.deepEqual((await call('GET', `${releases}/`)).body, [created.body]);
      assert.deepEqual((await call('GET', `${releases}/active/`)).body, created.body);

      const deployments = await call('GET', `${releases}/${id}/deployments/`);
      assert.equal(deployments.status, 200);
      assert.deepEqual(
        deployments.body.map((d) => [d.device, d.state, d.error, d.finished_at]),
        [
          ['dev-a', 'pending', null, null],
          ['dev-b', 'pending', null, null],
        ],
      );
      assert.ok(deployments.body.every((d) => typeof d.created_at === 'string' && typeof d.updated_at === 'string'));

      // a release is its own hash: a second one gets another
      const second = await call('POST', `${releases}/`, { version: '1.0.1', containers: [], allow_empty: true });
      assert.equal(second.status, 201);
      assert.notEqual(second.body.version_hash, hash);
      assert.deepEqual(second.body.containers, []);
      assert.equal((await call('GET', `${releases}/active/`)).body.id, second.body.id, 'active/ is the newest release');
    });

    test('PUT and PATCH: read-only fields sent back are ignored; deployments follow the devices and the content', async (t) => {
      const server = await backend.start(t);
      const { call, registry, project, releases } = await fixture(server);
      const created = await call('POST', `${releases}/`, { ...documented(registry), devices: ['dev-a'] });
      const id = Number(created.body.id);
      const url = `${releases}/${id}/`;
      const succeed = async (device: string) =>
        server.db
          .updateTable('deployment')
          .set({ state: 'succeeded', finished_at: new Date().toISOString() })
          .where('release_id', '=', id)
          .where('device_id', '=', device)
          .execute();

      // what a client GETs it may PUT back unchanged
      const roundTrip = await call('PUT', url, created.body);
      assert.equal(roundTrip.status, 200, JSON.stringify(roundTrip.body));
      assert.deepEqual(roundTrip.body, created.body);

      await succeed('dev-a');
      assert.deepEqual((await call('GET', url)).body.successful_deployments, ['dev-a']);
      // a new version label and a new device: dev-a keeps its success, dev-b is pending
      const more = await call('PATCH', url, { version: '1.0.0-b', devices: ['dev-a', 'dev-b'] });
      assert.equal(more.status, 200);
      assert.equal(more.body.version, '1.0.0-b');
      assert.deepEqual(more.body.devices, ['dev-a', 'dev-b']);
      assert.deepEqual(more.body.successful_deployments, ['dev-a']);
      assert.equal(more.body.version_hash, created.body.version_hash, 'the version hash never changes');
      assert.deepEqual(more.body.containers, created.body.containers, 'PATCH leaves out what it does not give');
      const states = async () => (await call('GET', `${url}deployments/`)).body.map((d) => `${String(d.device)}:${String(d.state)}`);
      assert.deepEqual(await states(), ['dev-a:succeeded', 'dev-b:pending']);

      // new content: every device must deploy it again
      const changed = await call('PATCH', url, { containers: [{ name: 'curveball', image: 'curveball', tag: 'delta-base-r0.0.0.2', registry }] });
      assert.equal(changed.status, 200);
      assert.deepEqual(changed.body.containers, [
        {
          name: 'curveball',
          image: 'curveball',
          tag: 'delta-base-r0.0.0.2',
          required_tags: [],
          startup_parameters: {},
          purge_data: false,
          registry,
          fully_qualified_name: `deployment-curveball-${id}`,
        },
      ]);
      assert.deepEqual(changed.body.successful_deployments, []);
      assert.deepEqual(await states(), ['dev-a:pending', 'dev-b:pending']);
      const image = (await server.targets.get('dev-b'))!.target.apps[String(project)]!.release.services.curveball!.image;
      assert.equal(image, 'registry.example.com:5000/curveball:delta-base-r0.0.0.2');

      // PUT replaces: devices left out are the project's, other fields their defaults
      await succeed('dev-b');
      const put = await call('PUT', url, { version: '3', containers: [{ name: 'solo', image: 'solo' }] });
      assert.equal(put.status, 200, JSON.stringify(put.body));
      assert.deepEqual(
        { ...put.body, created_at: null },
        {
          id,
          version: '3',
          version_hash: created.body.version_hash,
          devices: ['dev-a', 'dev-b'],
          containers: [
            {
              name: 'solo',
              image: 'solo',
              tag: 'latest',
              required_tags: [],
              startup_parameters: {},
              purge_data: false,
              registry: null,
              fully_qualified_name: `deployment-solo-${id}`,
            },
          ],
          remove_containers: [],
          successful_deployments: [],
          created_at: null,
        },
      );
      assert.equal(put.body.created_at, created.body.created_at);
      assert.equal((await call('PUT', url, { version: '4' })).status, 400, 'PUT needs the whole entity');

      // a device taken off the release loses its deployment record
      assert.equal((await call('PATCH', url, { devices: ['dev-b'] })).status, 200);
      assert.deepEqual(await states(), ['dev-b:pending']);

      assert.equal((await call('DELETE', url)).status, 204);
      assert.equal((await call('GET', url)).status, 404);
      assert.equal((await call('DELETE', url)).status, 404);
      assert.equal((await call('GET', `${url}deployments/`)).status, 404);
      assert.deepEqual(await server.db.selectFrom('deployment').selectAll().execute(), [], 'its deployments went with it');
    });

    test('version hashes are unique: a generated hash already taken is drawn again', async (t) => {
      const server = await backend.start(t);
      const { call, releases } = await fixture(server);
      const first = await call('POST', `${releases}/`, { version: '1', containers: [{ name: 'app', image: 'acme/app' }] });
      const taken = String(first.body.version_hash);
      const draws = [taken, taken, '0badc0de'];
      const original = versionHashes.next;
      versionHashes.next = () => draws.shift() ?? original();
      t.after(() => {
        versionHashes.next = original;
      });
      const second = await call('POST', `${releases}/`, { version: '2', containers: [{ name: 'app', image: 'acme/app' }] });
      assert.equal(second.status, 201);
      assert.equal(second.body.version_hash, '0badc0de');
      assert.equal(draws.length, 0);
    });

    test('the OpenAPI document describes the release endpoints', async (t) => {
      const server = await backend.start(t);
      const doc = JSON.parse((await server.app.inject({ method: 'GET', url: '/openapi.json' })).body) as { paths: Record<string, unknown> };
      for (const p of [
        '/docker/projects/{project_pk}/releases/',
        '/docker/projects/{project_pk}/releases/active/',
        '/docker/projects/{project_pk}/releases/{id}/',
        '/docker/projects/{project_pk}/releases/{id}/deployments/',
      ]) {
        assert.ok(doc.paths[p], `${p} is documented`);
      }
      assert.match(JSON.stringify(doc.paths['/docker/projects/{project_pk}/releases/']), /"readOnly":true/);
    });
  });
}
