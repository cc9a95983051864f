// Releases on each storage backend, as an AutoPi API client sees them: the documented payload,
// generated fields, active/, PUT/PATCH/DELETE, deployments, validation naming the field — and the
// device targets a release produces (what a device's agent is given).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { versionHashes } from '../../src/server/routes/releases.js';
import type { Server } from '../../src/server/server.js';
import { backends } from './backends.js';
import { user } from './helpers.js';

async function addDevice(server: Server, id: string): Promise<void> {
  await server.db
    .insertInto('device')
    .values({
      id,
      unit_id: `unit-${id}`,
      device_type: 'raspberrypi4-64',
      name: `truck-${id}`,
      device_key_hash: `digest-${id}`,
      created_at: new Date().toISOString(),
    })
    .execute();
}

/** A registry, a project with two devices (and a third device outside it). */
async function fixture(server: Server) {
  const call = user(server);
  const registry = Number(
    (await call('POST', '/docker/registries/', { url: 'https://registry.example.com:5000', username: 'bob', password: 'pw-used' })).body.id,
  );
  const unused = Number((await call('POST', '/docker/registries/', { url: 'other.example.org', username: 'eve', password: 'pw-unused' })).body.id);
  for (const d of ['dev-a', 'dev-b', 'dev-c']) await addDevice(server, d);
  const project = Number((await call('POST', '/docker/projects/', { name: 'trucks', devices: ['dev-a', 'dev-b'] })).body.id);
  return { call, registry, unused, project, releases: `/docker/projects/${project}/releases` };
}

/** The reference's payload: read-only fields included (ignored), both environment forms. */
const documented = (registry: number) => ({
  id: 1,
  version: '1.0.0',
  version_hash: '96a7191f',
  containers: [
    {
      name: 'curveball',
      image: 'curveball',
      tag: 'delta-base-r0.0.0.1',
      required_tags: ['base'],
      startup_parameters: {
        environment: "REQUESTS_CA_BUNDLE='/usr/local/share/ca-certificates/AdamCA.crt'",
        binds: ['/home/balenaEngine/data:/opt/RavenDB/Server/RavenData'],
        network_mode: 'host',
        restart_policy: 'always',
        privileged: true,
      },
      purge_data: false,
      registry,
      fully_qualified_name: 'deployment-curveball-1',
    },
    {
      name: 'ravendb',
      image: 'ravendb',
      tag: 'base',
      required_tags: [],
      startup_parameters: {
        environment: ['RAVEN_ARGS=--config-path /opt/RavenDB/Server/RavenData/settings.json', 'RAVEN_Setup_Mode=None'],
        binds: ['/data/ravendb:/opt/RavenDB/Server/RavenData'],
        port_bindings: { '8080/tcp': 8080, '38888/tcp': ['127.0.0.1', 38888] },
        restart_policy: 'always',
        privileged: true,
      },
      purge_data: true,
      registry,
      fully_qualified_name: 'deployment-ravendb-1',
    },
  ],
  successful_deployments: ['dev-a'],
  remove_containers: ['curveball-old'],
});

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

    test("the release reaches its devices' targets: registry-qualified images, env, binds, ports, credentials of used registries only", async (t) => {
      const server = await backend.start(t);
      const { call, registry, unused, project, releases } = await fixture(server);
      const created = await call('POST', `${releases}/`, documented(registry));
      const id = Number(created.body.id);
      const stored = await server.targets.get('dev-a');
      assert.ok(stored, 'dev-a has a target');
      const app = stored.target.apps[String(project)]!;
      assert.equal(app.name, 'trucks');
      assert.equal(app.release.id, id);
      assert.equal(app.release.commit, created.body.version_hash);
      assert.deepEqual(app.release.services, {
        curveball: {
          image: 'registry.example.com:5000/curveball:delta-base-r0.0.0.1',
          environment: { REQUESTS_CA_BUNDLE: '/usr/local/share/ca-certificates/AdamCA.crt' },
          volumes: ['/home/balenaEngine/data:/opt/RavenDB/Server/RavenData'],
          network_mode: 'host',
          restart: 'always',
          privileged: true,
          required_tags: ['base'],
          registry: `registry-${registry}`,
        },
        ravendb: {
          image: 'registry.example.com:5000/ravendb:base',
          environment: { RAVEN_ARGS: '--config-path /opt/RavenDB/Server/RavenData/settings.json', RAVEN_Setup_Mode: 'None' },
          volumes: ['/data/ravendb:/opt/RavenDB/Server/RavenData'],
          ports: ['8080:8080/tcp', '127.0.0.1:38888:38888/tcp'],
          restart: 'always',
          privileged: true,
          registry: `registry-${registry}`,
          purge_data: true,
        },
      });
      assert.deepEqual(app.release.remove_containers, ['curveball-old']);
      assert.deepEqual(stored.target.registries, {
        [`registry-${registry}`]: { url: 'https://registry.example.com:5000', username: 'bob', password: 'pw-used' },
      });
      assert.ok(!JSON.stringify(stored.target).includes('pw-unused'), `registry ${unused} is used by no release: its credentials stay off devices`);
      assert.deepEqual((await server.targets.get('dev-b'))!.target.apps[String(project)]!.release.id, id);
      assert.equal((await server.targets.get('dev-c'))?.target.apps[String(project)], undefined, 'a device outside the release gets nothing');

      // a second release replaces the first on the devices it lists
      const next = await call('POST', `${releases}/`, {
        version: '2.0.0',
        devices: ['dev-a'],
        containers: [{ name: 'web', image: 'acme/web', tag: '2', startup_parameters: { environment: { GREETING: 'hi there' }, port_bindings: ['80:8080'] } }],
      });
      assert.equal(next.status, 201, JSON.stringify(next.body));
      const a = (await server.targets.get('dev-a'))!.target;
      assert.equal(a.apps[String(project)]!.release.id, next.body.id);
      assert.deepEqual(a.apps[String(project)]!.release.services, {
        web: { image: 'acme/web:2', environment: { GREETING: 'hi there' }, ports: ['80:8080/tcp'], restart: 'no' },
      });
      assert.deepEqual(a.registries, {}, 'no release of dev-a uses a registry any more');
      assert.equal((await server.targets.get('dev-b'))!.target.apps[String(project)]!.release.id, id, 'dev-b is not in the new release');

      // taking dev-a off the newest release puts it back on the previous one
      const patched = await call('PATCH', `${releases}/${String(next.body.id)}/`, { devices: ['dev-c'] });
      assert.equal(patched.status, 200, JSON.stringify(patched.body));
      assert.equal((await server.targets.get('dev-a'))!.target.apps[String(project)]!.release.id, id);
      assert.equal((await server.targets.get('dev-c'))!.target.apps[String(project)]!.release.id, next.body.id);
      // deleting it too
      assert.equal((await call('DELETE', `${releases}/${String(next.body.id)}/`)).status, 204);
      assert.deepEqual((await server.targets.get('dev-c'))!.target.apps, {});
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

    test('bad input is a 400 naming the field, checked before anything is stored', async (t) => {
      const server = await backend.start(t);
      const { call, registry, releases } = await fixture(server);
      const ok = { name: 'app', image: 'acme/app', tag: 'v1' };
      const cases: [string, unknown, string][] = [
        ['an unknown field', { version: '1', containers: [], colour: 'red' }, '/colour'],
        ['an unknown container field', { version: '1', containers: [{ ...ok, colour: 'red' }] }, '/containers/0/colour'],
        [
          'an unknown startup parameter',
          { version: '1', containers: [{ ...ok, startup_parameters: { hostname: 'x' } }] },
          '/containers/0/startup_parameters/hostname',
        ],
        ['no version', { containers: [] }, '/version'],
        ['a duplicate container name', { version: '1', containers: [ok, ok] }, '/containers/1/name'],
        ['a bad container name', { version: '1', containers: [{ ...ok, name: 'my app' }] }, '/containers/0/name'],
        ['a tag in the image', { version: '1', containers: [{ ...ok, image: 'acme/app:v2' }] }, '/containers/0/image'],
        ['an empty image', { version: '1', containers: [{ ...ok, image: '' }] }, '/containers/0/image'],
        ['a bad tag', { version: '1', containers: [{ ...ok, tag: 'v 1' }] }, '/containers/0/tag'],
        [
          'an environment item that is not KEY=VALUE',
          { version: '1', containers: [{ ...ok, startup_parameters: { environment: ['A=1', 'B'] } }] },
          '/containers/0/startup_parameters/environment/1',
        ],
        [
          'an environment item that is not a string',
          { version: '1', containers: [{ ...ok, startup_parameters: { environment: ['A=1', 7] } }] },
          '/containers/0/startup_parameters/environment/1',
        ],
        [
          'an environment of the wrong type',
          { version: '1', containers: [{ ...ok, startup_parameters: { environment: 7 } }] },
          '/containers/0/startup_parameters/environment',
        ],
        [
          'an unterminated quote',
          { version: '1', containers: [{ ...ok, startup_parameters: { environment: "A='x" } }] },
          '/containers/0/startup_parameters/environment',
        ],
        ['a registry that does not exist', { version: '1', containers: [ok, { ...ok, name: 'b', registry: 999 }] }, '/containers/1/registry'],
        ['a device that does not exist', { version: '1', devices: ['dev-a', 'ghost'], containers: [ok] }, '/devices/1'],
        [
          'a relative bind',
          { version: '1', containers: [{ ...ok, startup_parameters: { binds: ['data/x:/x'] } }] },
          '/containers/0/startup_parameters/binds/0',
        ],
        [
          'a bad port',
          { version: '1', containers: [{ ...ok, startup_parameters: { port_bindings: { '80/tcp': 99999 } } }] },
          '/containers/0/startup_parameters/port_bindings/80~1tcp',
        ],
        [
          'a bad restart policy',
          { version: '1', containers: [{ ...ok, startup_parameters: { restart_policy: 'sometimes' } }] },
          '/containers/0/startup_parameters/restart_policy',
        ],
        [
          'a network of a container not in the release',
          { version: '1', containers: [{ ...ok, startup_parameters: { network_mode: 'container:vpn' } }] },
          '/containers/0/startup_parameters/network_mode',
        ],
        [
          'a non-boolean privileged',
          { version: '1', containers: [{ ...ok, startup_parameters: { privileged: 'yes' } }] },
          '/containers/0/startup_parameters/privileged',
        ],
        ['duplicate devices', { version: '1', devices: ['dev-a', 'dev-a'], containers: [] }, '/devices'],
        [
          'purge_data of a system folder',
          { version: '1', containers: [{ ...ok, purge_data: true, startup_parameters: { binds: ['/etc:/host-etc'] } }] },
          '/containers/0/purge_data',
        ],
        [
          'purge_data outside the data areas',
          { version: '1', containers: [{ ...ok, purge_data: true, startup_parameters: { binds: ['/var/log/app:/logs'] } }] },
          '/containers/0/purge_data',
        ],
        [
          'purge_data of a data root itself',
          { version: '1', containers: [{ ...ok, purge_data: true, startup_parameters: { binds: ['/data:/d'] } }] },
          '/containers/0/purge_data',
        ],
        [
          'purge_data escaping a data area',
          { version: '1', containers: [{ ...ok, purge_data: true, startup_parameters: { binds: ['/data/../root/app:/d'] } }] },
          '/containers/0/purge_data',
        ],
        ['a bad remove_containers name', { version: '1', containers: [], remove_containers: ['no spaces'] }, '/remove_containers/0'],
      ];
      for (const [what, body, field] of cases) {
        const res = await call('POST', `${releases}/`, body);
        assert.equal(res.status, 400, `${what}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.field, field, `${what}: ${JSON.stringify(res.body)}`);
      }
      const unknown = await call('POST', `${releases}/`, { version: '1', containers: [], colour: 'red' });
      assert.match(String(unknown.body.detail), /colour: unknown field/);
      assert.deepEqual((await call('GET', `${releases}/`)).body, [], 'nothing was stored');
      assert.deepEqual(await server.db.selectFrom('deployment').selectAll().execute(), []);

      // a refused change leaves the release as it was
      const created = await call('POST', `${releases}/`, { version: '1', containers: [{ ...ok, registry }] });
      const url = `${releases}/${String(created.body.id)}/`;
      const refused = await call('PATCH', url, { containers: [{ ...ok, startup_parameters: { binds: ['nope'] } }] });
      assert.equal(refused.status, 400);
      assert.equal(refused.body.field, '/containers/0/startup_parameters/binds/0');
      assert.equal((await call('PATCH', url, { devices: ['ghost'] })).body.field, '/devices/0');
      assert.deepEqual((await call('GET', url)).body, created.body);

      // values are taken as sent: a one-item list is not turned into a string (nor back)
      const single = await call('POST', `${releases}/`, {
        version: '2',
        containers: [{ ...ok, startup_parameters: { environment: ['A=x y'], cap_add: 'NET_ADMIN' } }],
      });
      assert.equal(single.status, 201, JSON.stringify(single.body));
      const params = (single.body.containers as unknown as { startup_parameters: unknown }[])[0]!.startup_parameters;
      assert.deepEqual(params, { environment: ['A=x y'], cap_add: 'NET_ADMIN' });
    });

    test('unknown projects and releases are 404; a malformed id is 400', async (t) => {
      const server = await backend.start(t);
      const { call, releases, project } = await fixture(server);
      assert.equal((await call('GET', `${releases}/active/`)).status, 404, 'no release yet');
      assert.equal((await call('GET', '/docker/projects/999/releases/')).status, 404);
      assert.equal((await call('POST', '/docker/projects/999/releases/', { version: '1', containers: [] })).status, 404);
      assert.equal((await call('GET', '/docker/projects/999/releases/active/')).status, 404);
      assert.equal((await call('GET', `${releases}/12345/`)).status, 404);
      assert.equal((await call('PATCH', `${releases}/12345/`, { version: '2' })).status, 404);
      assert.equal((await call('GET', `${releases}/abc/`)).status, 400);
      // a release is found only under its own project
      const other = Number((await call('POST', '/docker/projects/', { name: 'vans' })).body.id);
      const created = await call('POST', `${releases}/`, { version: '1', containers: [{ name: 'app', image: 'acme/app' }] });
      assert.equal((await call('GET', `/docker/projects/${other}/releases/${String(created.body.id)}/`)).status, 404);
      assert.equal((await call('GET', `/docker/projects/${project}/releases/${String(created.body.id)}/`)).status, 200);
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

    test('a release without containers only with allow_empty (400 naming containers); a version taken in the project is a 409 naming it', async (t) => {
      const server = await backend.start(t);
      const { call, project, releases } = await fixture(server);
      const app = { name: 'app', image: 'acme/app', tag: 'v1' };
      const first = await call('POST', `${releases}/`, { version: '1.0.0', containers: [app] });
      assert.equal(first.status, 201);
      const id = Number(first.body.id);
      const running = async () => (await server.targets.get('dev-a'))!.target.apps[String(project)]!.release;
      const before = await running();

      // an empty release would stop every service of the project on its devices
      const empty = await call('POST', `${releases}/`, { version: '2.0.0', containers: [] });
      assert.equal(empty.status, 400, JSON.stringify(empty.body));
      assert.equal(empty.body.field, '/containers');
      assert.match(String(empty.body.detail), /allow_empty/);
      for (const [method, body] of [
        ['PUT', { version: '1.0.0', containers: [] }],
        ['PATCH', { containers: [] }],
      ] as const) {
        const refused = await call(method, `${releases}/${id}/`, body);
        assert.equal(refused.status, 400, `${method}: ${JSON.stringify(refused.body)}`);
        assert.equal(refused.body.field, '/containers');
      }
      assert.deepEqual(
        (await call('GET', `${releases}/`)).body.map((r) => r.id),
        [id],
        'nothing was stored',
      );
      assert.deepEqual(await running(), before, 'the devices keep their release');

      // …unless the request says it means it
      const meant = await call('POST', `${releases}/`, { version: '2.0.0', containers: [], allow_empty: true });
      assert.equal(meant.status, 201, JSON.stringify(meant.body));
      assert.deepEqual(meant.body.containers, []);
      assert.equal('allow_empty' in meant.body, false, 'a flag of the request, not stored');
      assert.deepEqual((await running()).services, {});
      assert.equal(
        (await call('PATCH', `${releases}/${String(meant.body.id)}/`, { devices: ['dev-a'] })).status,
        200,
        'a change that leaves its containers alone needs no flag',
      );
      assert.equal((await call('PATCH', `${releases}/${id}/`, { containers: [], allow_empty: true })).status, 200);

      // versions are unique in a project: a second 1.0.0 is refused, naming the release that has it
      const again = await call('POST', `${releases}/`, { version: '1.0.0', containers: [{ ...app, tag: 'v2' }] });
      assert.equal(again.status, 409, JSON.stringify(again.body));
      assert.match(String(again.body.detail), new RegExp(`^version: release ${id} .*"1\\.0\\.0"`));
      const renamed = await call('PATCH', `${releases}/${String(meant.body.id)}/`, { version: '1.0.0' });
      assert.equal(renamed.status, 409);
      assert.equal((await call('PUT', `${releases}/${String(meant.body.id)}/`, { version: '1.0.0', containers: [app] })).status, 409);
      assert.equal((await call('PATCH', `${releases}/${id}/`, { version: '1.0.0', containers: [app] })).status, 200, 'a release keeps its own version');
      assert.deepEqual(
        (await call('GET', `${releases}/`)).body.map((r) => [r.id, r.version]),
        [
          [id, '1.0.0'],
          [meant.body.id, '2.0.0'],
        ],
      );
      const elsewhere = Number((await call('POST', '/docker/projects/', { name: 'vans' })).body.id);
      assert.equal(
        (await call('POST', `/docker/projects/${elsewhere}/releases/`, { version: '1.0.0', containers: [app] })).status,
        201,
        'another project may use it',
      );

      // at once (on PostgreSQL, from any number of connections): one wins
      const racing = await Promise.all(Array.from({ length: 5 }, () => call('POST', `${releases}/`, { version: '3.0.0', containers: [app] })));
      assert.deepEqual(racing.map((r) => r.status).sort(), [201, 409, 409, 409, 409]);
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
