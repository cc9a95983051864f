// The operator's side of dependent apps and devices, on each storage backend: every route with its
// status codes, 400s naming the field, 404s and 409s, release commits (a version hash, a digest tag,
// or the digest the registry gives), the devices' filters, pins and deletion, and the OpenAPI text.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { backends } from './backends.js';
import { DIGEST, fleet } from './dependentFixtures.js';
import { user } from './helpers.js';

/**
 * A registry that knows one tag of one repository (the Registry API's manifest HEAD), behind Basic auth,
 * or behind a Bearer token its token endpoint gives for Basic credentials (as Docker Hub's and GitLab's).
 */
async function registry(t: TestContext, digest: string, auth: 'basic' | 'bearer' = 'basic'): Promise<{ url: string; heads: string[] }> {
  const heads: string[] = [];
  const basic = `Basic ${Buffer.from('ci:secret').toString('base64')}`;
  const srv = http.createServer((req, res) => {
    heads.push(`${req.method} ${req.url}`);
    if (req.url === '/token?service=test&scope=repository%3Aacme%2Ffirmware%3Apull' && req.headers.authorization === basic) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 'tok' }));
    } else if (req.headers.authorization !== (auth === 'basic' ? basic : 'Bearer tok')) {
      const { port } = srv.address() as AddressInfo;
      const challenge =
        auth === 'basic' ? 'Basic realm="test"' : `Bearer realm="http://127.0.0.1:${port}/token",service="test",scope="repository:acme/firmware:pull"`;
      res.writeHead(401, { 'www-authenticate': challenge }).end();
    } else if (req.method === 'HEAD' && req.url === '/v2/acme/firmware/manifests/2.0') {
      res.writeHead(200, { 'docker-content-digest': digest }).end();
    } else res.writeHead(404).end();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => srv.close(r)));
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, heads };
}

for (const backend of backends()) {
  describe(`dependent apps and devices (operator API) on ${backend.name}`, () => {
    test('dependent apps: created, listed, read, changed, deleted; 404, 409 and 400s naming the field', async (t) => {
      const server = await backend.start(t);
      const f = await fleet(server);
      const listed = await f.call('GET', `/docker/projects/${f.project}/dependent-apps/`);
      assert.equal(listed.status, 200);
      assert.deepEqual(
        listed.body.map((a) => ({ ...a, created_at: undefined })),
        [{ id: f.app, project: f.project, name: 'edge', device_type: 'esp32', config: {}, commit: null, created_at: undefined }],
      );
      assert.equal((await f.call('GET', `/docker/dependent-apps/${f.app}`)).body.name, 'edge');
      const changed = await f.call('PATCH', `/docker/dependent-apps/${f.app}`, { name: 'sensors', config: { BAUD: '9600' } });
      assert.equal(changed.status, 200);
      assert.deepEqual([changed.body.name, changed.body.device_type, changed.body.config], ['sensors', 'esp32', { BAUD: '9600' }]);

      assert.equal((await f.call('POST', `/docker/projects/${f.project}/dependent-apps/`, { name: 'sensors', device_type: 'x' })).status, 409);
      assert.equal((await f.call('PATCH', `/docker/dependent-apps/${f.otherApp}`, { name: 'sensors' })).status, 200, 'names are unique per project');
      for (const [body, field] of [
        [{ name: 'x' }, '/device_type'],
        [{ name: '', device_type: 'x' }, '/name'],
        [{ name: 'x', device_type: 'x', colour: 'red' }, '/colour'],
        [{ name: 'x', device_type: 'x', config: { A: 1 } }, '/config/A'],
      ] as const) {
        const res = await f.call('POST', `/docker/projects/${f.project}/dependent-apps/`, body);
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.equal(res.body.field, field);
      }
      assert.equal((await f.call('POST', '/docker/projects/999/dependent-apps/', { name: 'x', device_type: 'x' })).status, 404);
      assert.equal((await f.call('GET', '/docker/projects/999/dependent-apps/')).status, 404);
      for (const method of ['GET', 'PATCH', 'DELETE'] as const)
        assert.equal((await f.call(method, '/docker/dependent-apps/999', method === 'PATCH' ? {} : undefined)).status, 404);
      assert.equal((await f.call('GET', '/docker/dependent-apps/0')).status, 400);

      // an app with devices is not deleted: its devices first
      const uuid = String((await f.a.provision({ app_id: f.app })).body.uuid);
      const refused = await f.call('DELETE', `/docker/dependent-apps/${f.app}`);
      assert.equal(refused.status, 409);
      assert.match(String(refused.body.detail), /1 device/);
      assert.equal((await f.call('DELETE', `/dependent-devices/${uuid}`)).status, 204);
      assert.equal((await f.call('DELETE', `/docker/dependent-apps/${f.app}`)).status, 204);
      assert.equal((await f.call('GET', `/docker/dependent-apps/${f.app}`)).status, 404);
      // a project's deletion takes its dependent apps and devices with it
      await f.c.provision({ app_id: f.otherApp });
      assert.equal((await f.call('DELETE', `/docker/projects/${f.other}/`)).status, 204);
      assert.equal((await f.call('GET', `/docker/dependent-apps/${f.otherApp}`)).status, 404);
      assert.deepEqual((await f.call('GET', '/dependent-devices/')).body, []);
    });

    test("releases: the commit is the registry's digest, a digest tag, or a version hash; the image is checked as a container's; the newest is the target", async (t) => {
      const server = await backend.start(t);
      const f = await fleet(server);
      const base = `/docker/dependent-apps/${f.app}/releases/`;
      const hashed = await f.call('POST', base, { image: 'acme/firmware', tag: '1.0' });
      assert.equal(hashed.status, 201, hashed.text);
      assert.deepEqual(
        { ...hashed.body, id: 0, created_at: '' },
        {
          id: 0,
          app: f.app,
          image: 'acme/firmware',
          tag: '1.0',
          registry: null,
          commit: hashed.body.version_hash,
          digest: false,
          version_hash: hashed.body.version_hash,
          created_at: '',
        },
      );
      const pinned = await f.call('POST', base, { image: 'acme/firmware', tag: DIGEST });
      assert.deepEqual([pinned.status, pinned.body.commit, pinned.body.digest], [201, DIGEST, true]);
      assert.equal((await f.call('POST', base, { image: 'acme/firmware', tag: DIGEST })).status, 409, 'the same image again');

      // a registry that answers the manifest's digest (with its credentials)
      const served = `sha256:${'cd'.repeat(32)}`;
      const reg = await registry(t, served);
      const r = await f.call('POST', '/docker/registries/', { url: reg.url, username: 'ci', password: 'secret' });
      assert.equal(r.status, 201, r.text);
      const resolved = await f.call('POST', base, { image: 'acme/firmware', tag: '2.0', registry: r.body.id });
      assert.deepEqual([resolved.status, resolved.body.commit, resolved.body.digest], [201, served, true]);
      assert.ok(reg.heads.includes('HEAD /v2/acme/firmware/manifests/2.0'));
      const tokenServed = `sha256:${'ef'.repeat(32)}`;
      const tokens = await registry(t, tokenServed, 'bearer');
      const r2 = await f.call('POST', '/docker/registries/', { url: tokens.url, username: 'ci', password: 'secret' });
      const viaToken = await f.call('POST', base, { image: 'acme/firmware', tag: '2.0', registry: r2.body.id });
      assert.deepEqual([viaToken.status, viaToken.body.commit], [201, tokenServed], 'a registry that wants a Bearer token');
      const unknownTag = await f.call('POST', base, { image: 'acme/firmware', tag: '3.0', registry: r.body.id });
      assert.equal(unknownTag.body.digest, false, 'a tag the registry does not have: a version hash');

      const app = await f.call('GET', `/docker/dependent-apps/${f.app}`);
      assert.equal(app.body.commit, unknownTag.body.commit, "the newest release is the app's commit");
      const target = (await f.a.link.state()).body!;
      const release = target.dependent!.apps[f.app]!.release!;
      const host = reg.url.replace('http://', '');
      assert.deepEqual(release, {
        id: unknownTag.body.id,
        commit: unknownTag.body.commit,
        image: `${host}/acme/firmware:3.0`,
        registry: `registry-${r.body.id}`,
      });
      assert.deepEqual(
        target.registries![`registry-${r.body.id}`],
        { url: reg.url, username: 'ci', password: 'secret' },
        "the gateway gets the registry's credentials",
      );

      const list = await f.call('GET', base);
      assert.deepEqual(
        list.body.map((x) => x.commit),
        [hashed.body.commit, DIGEST, served, tokenServed, unknownTag.body.commit],
      );
      for (const [body, field] of [
        [{ image: 'Bad Image' }, '/image'],
        [{ image: 'acme/firmware:1.0' }, '/image'],
        [{ image: 'acme/firmware', tag: 'no spaces' }, '/tag'],
        [{ image: 'acme/firmware', registry: 999 }, '/registry'],
        [{ tag: '1' }, '/image'],
        [{ image: 'acme/firmware', extra: 1 }, '/extra'],
      ] as const) {
        const res = await f.call('POST', base, body);
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.equal(res.body.field, field, JSON.stringify(res.body));
      }
      assert.equal((await f.call('POST', '/docker/dependent-apps/999/releases/', { image: 'acme/firmware' })).status, 404);
      assert.equal((await f.call('GET', '/docker/dependent-apps/999/releases/')).status, 404);
    });

    test('dependent devices: listed with filters, read, pinned (only to a commit of its app), renamed, noted, deleted', async (t) => {
      const server = await backend.start(t);
      const f = await fleet(server);
      const first = await f.call('POST', `/docker/dependent-apps/${f.app}/releases/`, { image: 'acme/firmware', tag: '1.0' });
      const second = await f.call('POST', `/docker/dependent-apps/${f.app}/releases/`, { image: 'acme/firmware', tag: '2.0' });
      const other = await f.call('POST', `/docker/dependent-apps/${f.otherApp}/releases/`, { image: 'acme/firmware', tag: '1.0' });
      const onA = String((await f.a.provision({ app_id: f.app, name: 'door' })).body.uuid);
      const onB = String((await f.b.provision({ app_id: f.app })).body.uuid);
      const onC = String((await f.c.provision({ app_id: f.otherApp })).body.uuid);
      await f.a.link.report({ dependent_devices: { [onA]: { is_online: true, commit: String(first.body.commit) } } });
      await f.b.link.report({ dependent_devices: { [onB]: { is_online: false } } });

      const uuids = async (query: string) => (await f.call('GET', `/dependent-devices/${query}`)).body.map((d) => d.uuid);
      assert.deepEqual(await uuids(''), [onA, onB, onC]);
      assert.deepEqual(await uuids(`?app=${f.app}`), [onA, onB]);
      assert.deepEqual(await uuids(`?gateway=${f.b.id}`), [onB]);
      assert.deepEqual(await uuids('?online=true'), [onA]);
      assert.deepEqual(await uuids('?online=false'), [onB, onC]);
      assert.equal((await f.call('GET', '/dependent-devices/?online=maybe')).body.field, '/online');

      const shown = (await f.call('GET', `/dependent-devices/${onA}`)).body;
      assert.deepEqual(
        { ...shown, id: 0, created_at: '', last_seen: '' },
        {
          id: 0,
          uuid: onA,
          name: 'door',
          note: null,
          device_type: 'esp32',
          app: f.app,
          gateway: f.a.id,
          commit: first.body.commit,
          target_commit: second.body.commit,
          pinned: false,
          status: null,
          is_online: true,
          last_seen: '',
          download_progress: null,
          environment: null,
          target_environment: {},
          config: null,
          target_config: {},
          created_at: '',
        },
      );
      const pin = await f.call('PATCH', `/dependent-devices/${onA}`, { target_commit: first.body.commit, name: 'front door', note: 'by the gate' });
      assert.equal(pin.status, 200);
      assert.deepEqual([pin.body.target_commit, pin.body.pinned, pin.body.name, pin.body.note], [first.body.commit, true, 'front door', 'by the gate']);
      const foreign = await f.call('PATCH', `/dependent-devices/${onA}`, { target_commit: other.body.commit });
      assert.deepEqual([foreign.status, foreign.body.field], [400, '/target_commit'], "a commit of another app's release");
      for (const [body, field] of [
        [{ environment: { A: 1 } }, '/environment/A'],
        [{ name: '' }, '/name'],
        [{ gateway: 'x' }, '/gateway'],
      ] as const) {
        const res = await f.call('PATCH', `/dependent-devices/${onA}`, body);
        assert.deepEqual([res.status, res.body.field], [400, field]);
      }
      const unpinned = await f.call('PATCH', `/dependent-devices/${onA}`, { target_commit: null });
      assert.deepEqual([unpinned.body.target_commit, unpinned.body.pinned], [second.body.commit, false]);

      const missing = 'ee'.repeat(16);
      for (const method of ['GET', 'PATCH', 'DELETE'] as const)
        assert.equal((await f.call(method, `/dependent-devices/${missing}`, method === 'PATCH' ? {} : undefined)).status, 404, method);
      assert.equal((await f.call('GET', `/dependent-devices/${missing}/logs/`)).status, 404);
      assert.equal((await f.call('GET', '/dependent-devices/NOT-A-UUID')).body.field, '/uuid');
      assert.equal((await f.call('DELETE', `/dependent-devices/${onB}`)).status, 204);
      assert.equal((await f.call('GET', `/dependent-devices/${onB}`)).status, 404);
      // a gateway's deletion takes its dependent devices with it
      assert.equal((await f.call('DELETE', `/dongle/devices/${f.c.id}/`)).status, 204);
      assert.deepEqual(await uuids(''), [onA]);
    });

    test('every route needs an API token (a device key is not one) and is described in /openapi.json', async (t) => {
      const server = await backend.start(t);
      const f = await fleet(server);
      const uuid = String((await f.a.provision({ app_id: f.app })).body.uuid);
      const routes: [string, string][] = [
        ['GET', `/docker/projects/${f.project}/dependent-apps/`],
        ['POST', `/docker/projects/${f.project}/dependent-apps/`],
        ['GET', `/docker/dependent-apps/${f.app}`],
        ['PATCH', `/docker/dependent-apps/${f.app}`],
        ['DELETE', `/docker/dependent-apps/${f.app}`],
        ['GET', `/docker/dependent-apps/${f.app}/releases/`],
        ['POST', `/docker/dependent-apps/${f.app}/releases/`],
        ['GET', '/dependent-devices/'],
        ['GET', `/dependent-devices/${uuid}`],
        ['PATCH', `/dependent-devices/${uuid}`],
        ['DELETE', `/dependent-devices/${uuid}`],
        ['GET', `/dependent-devices/${uuid}/logs/`],
        ['GET', `/dependent-devices/${uuid}/logs/tail/`],
      ];
      const anon = user(server);
      for (const [method, url] of routes) {
        for (const auth of ['', `Bearer ${f.a.key}`]) assert.equal((await anon(method as 'GET', url, undefined, auth)).status, 401, `${method} ${url}`);
      }
      assert.equal((await f.call('GET', `/dependent-devices/${uuid}`)).status, 200, 'nothing was changed');
      const spec = (await f.call('GET', '/openapi.json')).body as unknown as {
        paths: Record<string, Record<string, { summary?: string; description?: string }>>;
      };
      const described = [...routes.map(([m, u]) => [m, u.replace(/\/\d+(\/|$)/, '/{id}$1').replace(uuid, '{uuid}')]), ['POST', '/device/v1/dependent-devices']];
      for (const [method, path] of described) {
        const op = spec.paths[path!]?.[method!.toLowerCase()];
        assert.ok(op?.summary && op.description, `${method} ${path} has a summary and a description`);
      }
    });
  });
}
