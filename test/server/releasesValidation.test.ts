// Releases on each storage backend: bad input is a 400 naming the field (nothing stored), unknown ids
// a 404, an empty release needs allow_empty, and a version taken in the project is a 409.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backends } from './backends.js';
import { fixture } from './releasesFixture.js';

for (const backend of backends()) {
  describe(`releases on ${backend.name}`, () => {
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
  });
}
