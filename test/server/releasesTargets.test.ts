// Releases on each storage backend: the device targets a release produces (what a device's agent
// is given).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backends } from './backends.js';
import { fixture, documented } from './releasesFixture.js';

for (const backend of backends()) {
  describe(`releases on ${backend.name}`, () => {
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
  });
}
